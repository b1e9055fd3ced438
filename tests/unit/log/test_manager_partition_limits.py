"""Partition caps, all-or-nothing creation, the LRU of open segment files, bulk close (issue 9, item 3)."""

from __future__ import annotations

import json
import os

import pytest

from kavka.clock import ManualClock
from kavka.config import BrokerConfig
from kavka.log import log_manager as lm
from kavka.log.errors import InvalidConfig, PolicyViolation
from kavka.log.file_cache import FILES
from kavka.log.log_manager import LogManager
from kavka.log.partition_log import PartitionLog
from kavka.protocol.record_codec import encode_batch

NOW = 1_700_000_000_000


def batch(n: int = 1) -> bytearray:
    return bytearray(encode_batch([(b"k", b"v%03d" % i, NOW, ()) for i in range(n)]))


def open_manager(data_dir, **settings) -> LogManager:
    manager = LogManager(data_dir, BrokerConfig.from_strings(settings), ManualClock(NOW))
    manager.load()
    return manager


def snapshot(data_dir):
    return sorted((str(p.relative_to(data_dir)), p.stat().st_size if p.is_file() else -1)
                  for p in data_dir.rglob("*") if p.name != ".lock")


def test_the_broker_cap_refuses_before_anything_is_written(tmp_path):
    data_dir = tmp_path / "data"
    m = open_manager(data_dir, **{"max.partitions.per.broker": "100"})
    m.create_topic("a", 60)
    before = snapshot(data_dir)
    for validate_only in (True, False):
        with pytest.raises(PolicyViolation, match="max.partitions.per.broker=100"):
            m.create_topic("huge", 1_000_000, validate_only=validate_only)
        with pytest.raises(PolicyViolation):
            m.create_partitions("a", 101, validate_only=validate_only)
    assert snapshot(data_dir) == before and list(m.topics()) == ["a"]
    m.create_partitions("a", 100)  # exactly the cap
    m.close()


def test_segment_floors_apply_to_client_overrides_only(tmp_path):
    m = open_manager(tmp_path / "data")
    with pytest.raises(InvalidConfig, match="segment.bytes"):
        m.create_topic("t", 1, {"segment.bytes": "65536"}, client=True)
    with pytest.raises(InvalidConfig, match="segment.ms"):
        m.create_topic("t", 1, {"segment.ms": "10"}, client=True, validate_only=True)
    m.create_topic("t", 1, {"segment.bytes": "1048576", "segment.ms": "60000"}, client=True)
    with pytest.raises(InvalidConfig):
        m.alter_topic_config("t", {"segment.bytes": "100"}, client=True)
    m.create_topic("internal", 1, {"segment.bytes": "65536"})  # the broker's own topics: no floor
    m.close()
    lifted = open_manager(tmp_path / "other", **{"internal.segment.bytes.min": "14"})
    lifted.create_topic("t", 1, {"segment.bytes": "100"}, client=True)
    lifted.close()


def test_a_creation_failing_midway_leaves_nothing(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    m = open_manager(data_dir)
    m.create_topic("keep", 1)
    before = snapshot(data_dir)
    real_open = PartitionLog.open
    opened = []

    def failing_open(path, topic, index, *args, **kwargs):
        if index == 3:
            raise OSError(24, "Too many open files")
        opened.append(index)
        return real_open(path, topic, index, *args, **kwargs)

    monkeypatch.setattr(PartitionLog, "open", staticmethod(failing_open))
    with pytest.raises(OSError, match="Too many open files"):
        m.create_topic("half", 10)
    monkeypatch.undo()
    assert opened == [0, 1, 2]
    assert m.topic("half") is None and m.partition("half", 0) is None
    assert not list(data_dir.glob("half-*"))
    assert snapshot(data_dir) == before
    m.create_topic("half", 2)  # the name is free again
    m.close()
    m = open_manager(data_dir)
    assert sorted(m.topics()) == ["half", "keep"]
    m.close()


def test_a_crash_during_creation_is_rolled_back_at_start(tmp_path):
    data_dir = tmp_path / "data"
    m = open_manager(data_dir)
    m.create_topic("keep", 2)
    steps = m.create_topics_stepwise([m.check_new_topic("new", 5)], step_partitions=2)
    next(steps)  # pending in topics.json, 2 partitions opened: now "crash" (no commit, no close)
    body = json.loads((data_dir / lm.META_DIR / lm.TOPICS_FILE).read_text())
    assert {t["name"]: t.get("pending") for t in body["topics"]} == {"keep": None, "new": 5}
    assert (data_dir / "new-0").is_dir()
    m._release_lock()  # what the dying process' exit would do
    m = open_manager(data_dir)
    assert sorted(m.topics()) == ["keep"] and not list(data_dir.glob("new-*"))
    body = json.loads((data_dir / lm.META_DIR / lm.TOPICS_FILE).read_text())
    assert [t["name"] for t in body["topics"]] == ["keep"]
    m.close()


def test_open_segment_files_stay_under_the_lru_limit(tmp_path):
    def segment_fds() -> int:
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            count += target.startswith(str(tmp_path)) and target.endswith((".log", ".index", ".timeindex"))
        return count

    m = open_manager(tmp_path / "data", **{"log.max.open.files": "16"})
    try:
        assert FILES.limit == 16
        m.create_topic("many", 40, {"segment.bytes": "100", "index.interval.bytes": "50"})
        for round_ in range(6):  # 40 partitions x 6 segments x 3 files, far above the limit
            for p in range(40):
                m.partition("many", p).append_records(batch(3), 9, NOW)
            assert segment_fds() <= 16
        for p in range(40):
            plog = m.partition("many", p).log
            assert len(plog.segments) >= 5
            result = plog.read(0, 1 << 20)
            data = b"".join(s.read() for s in result.slices)
            assert data.count(b"v002") == 6
            assert segment_fds() <= 16 + len(result.slices)
            del result, data
        evictions = FILES.evictions
        assert evictions > 0
    finally:
        m.close()
    assert segment_fds() == 0
    m = open_manager(tmp_path / "data", **{"log.max.open.files": "16"})
    assert all(m.partition("many", p).log.log_end_offset == 18 for p in range(40))
    assert segment_fds() <= 16
    m.close()


def test_a_slice_in_flight_keeps_its_fd_after_eviction(tmp_path):
    m = open_manager(tmp_path / "data", **{"log.max.open.files": "16"})
    m.create_topic("t", 20)
    m.partition("t", 0).append_records(batch(2), 9, NOW)
    piece = m.partition("t", 0).log.read(0, 1 << 20).slices[0]
    expected = piece.read()
    for p in range(1, 20):  # opens enough other files to evict partition 0's .log
        m.partition("t", p).append_records(batch(1), 9, NOW)
    assert not m.partition("t", 0).log.segments[0]._file.is_open
    assert piece.read() == expected  # same fd, still valid
    m.close()
