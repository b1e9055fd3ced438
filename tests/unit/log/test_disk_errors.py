"""Disk errors on the write path: every failed append is undone, refused with a
StorageError, logged once; a full disk recovers by itself, a failed one goes offline.

Faults are injected by wrapping ``os.write`` / ``os.open`` / ``os.fsync`` for the
partition's files only (the real-filesystem versions are tests/faults/test_disk_full.py).
"""

from __future__ import annotations

import errno
import logging
import os

import pytest

from kavka.clock import ManualClock
from kavka.config import BrokerConfig
from kavka.log.errors import LogDirOffline, StorageError, StorageFull
from kavka.log.log_manager import LogManager
from kavka.protocol.record_codec import encode_batch, iter_records

NOW = 1_700_000_000_000
V = 9
REAL_WRITE, REAL_OPEN, REAL_FSYNC = os.write, os.open, os.fsync


def batch(n: int = 1, value: bytes = b"v" * 100) -> bytearray:
    return bytearray(encode_batch([(b"k", value + b"%d" % i, NOW, ()) for i in range(n)]))


class Faults:
    """Fail writes (after letting ``partial`` bytes through), opens or fsyncs of files whose
    path (or fd's path) contains ``where``, with ``err``, while ``active``."""

    def __init__(self, monkeypatch, where: str) -> None:
        self.where, self.active, self.err, self.partial, self.hits = where, False, errno.ENOSPC, 0, 0
        self.kinds: set[str] = set()
        monkeypatch.setattr(os, "write", self._write)
        monkeypatch.setattr(os, "open", self._open)
        monkeypatch.setattr(os, "fsync", self._fsync)

    def fail(self, err: int, *kinds: str, partial: int = 0) -> None:
        self.active, self.err, self.kinds, self.partial = True, err, set(kinds), partial

    def heal(self) -> None:
        self.active = False

    def _mine(self, fd: int, suffix: str | None = None) -> bool:
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return False
        return self.where in path and (suffix is None or path.endswith(suffix))

    def _raise(self):
        self.hits += 1
        raise OSError(self.err, os.strerror(self.err))

    def _write(self, fd, data):
        for kind, suffix in (("log", ".log"), ("index", ".index"), ("timeindex", ".timeindex"), ("tmp", ".tmp")):
            if self.active and kind in self.kinds and self._mine(fd, suffix):
                if self.partial:
                    n, self.partial = self.partial, 0
                    return REAL_WRITE(fd, bytes(data[:n]))
                self._raise()
        return REAL_WRITE(fd, data)

    def _open(self, path, flags, *args, **kwargs):
        if self.active and "open" in self.kinds and self.where in str(path) and flags & os.O_CREAT:
            self._raise()
        return REAL_OPEN(path, flags, *args, **kwargs)

    def _fsync(self, fd):
        if self.active and "fsync" in self.kinds and self._mine(fd):
            self._raise()
        return REAL_FSYNC(fd)


@pytest.fixture
def manager(tmp_path):
    m = LogManager(tmp_path / "data", BrokerConfig.from_strings({"log.index.interval.bytes": "1"}), ManualClock(NOW))
    m.load()
    m.create_topic("t", 1, {"segment.bytes": "4096"})
    yield m
    m.close()


@pytest.fixture
def faults(monkeypatch):
    return Faults(monkeypatch, "/t-0/")


def offsets(partition) -> list[int]:
    result = partition.log.read(partition.log.log_start_offset, 1 << 24)
    return [r.offset for s in result.slices for r in iter_records(s.read())]


def files_consistent(partition) -> None:
    """Every segment's file size is what the log thinks, and a fresh open agrees."""
    for segment in partition.log.segments:
        assert os.fstat(segment.fd).st_size == segment.size
        assert os.fstat(segment.offset_index._fd).st_size == 8 * len(segment.offset_index)


@pytest.mark.parametrize("kind,partial", [("log", 0), ("log", 37), ("index", 0), ("index", 3), ("timeindex", 0)])
def test_a_full_disk_refuses_the_append_and_leaves_nothing_behind(manager, faults, kind, partial, caplog):
    p = manager.partition("t", 0)
    p.append_records(batch(2), V, NOW)
    faults.fail(errno.ENOSPC, kind, partial=partial)
    with caplog.at_level(logging.WARNING, "kavka.log"):
        for _ in range(5):
            with pytest.raises(StorageFull):
                p.append_records(batch(3), V, NOW)
    assert p.log.log_end_offset == 2 and offsets(p) == [0, 1]
    files_consistent(p)
    assert manager.health.full_reason and not manager.health.offline
    assert len([r for r in caplog.records if "refusing writes" in r.getMessage()]) == 1  # once, not per attempt
    faults.heal()
    with caplog.at_level(logging.WARNING, "kavka.log"):
        info = p.append_records(batch(3), V, NOW)  # recovers by itself
    assert info.base_offset == 2 and offsets(p) == [0, 1, 2, 3, 4]
    assert manager.health.full_reason is None
    assert any("succeed again (5 refused" in r.getMessage() for r in caplog.records)
    files_consistent(p)


def test_a_roll_that_cannot_create_its_files_is_retried_cleanly(manager, faults):
    p = manager.partition("t", 0)
    while len(p.log.segments) == 1:
        p.append_records(batch(1), V, NOW)
    segments, leo = len(p.log.segments), p.log.log_end_offset
    while p.log.active_base_offset == p.log.segments[-1].base_offset and p.log.segments[-1].size + 200 < 4096:
        p.append_records(batch(1), V, NOW)
        leo = p.log.log_end_offset
    faults.fail(errno.ENOSPC, "open")  # the next roll cannot create its files
    before = sorted(os.listdir(p.log.path))
    with pytest.raises(StorageFull):
        for _ in range(30):
            p.append_records(batch(1), V, NOW)
            leo = p.log.log_end_offset
    assert sorted(os.listdir(p.log.path)) == before and faults.hits
    faults.heal()
    assert p.append_records(batch(1), V, NOW).base_offset == leo
    assert len(p.log.segments) == segments + 1
    assert offsets(p) == list(range(leo + 1))


def test_a_failed_fsync_takes_the_directory_offline_once(manager, faults, caplog):
    manager.create_topic("other", 1)
    p = manager.partition("t", 0)
    manager.alter_topic_config("t", {"flush.messages": "1"})
    p.append_records(batch(1), V, NOW)
    faults.fail(errno.EIO, "fsync")
    with caplog.at_level(logging.ERROR, "kavka.log"):
        with pytest.raises(LogDirOffline):
            p.append_records(batch(1), V, NOW)
        for target in (p, manager.partition("other", 0)):  # the whole directory, without touching the disk
            hits = faults.hits
            with pytest.raises(LogDirOffline):
                target.append_records(batch(1), V, NOW)
            assert faults.hits == hits
    assert manager.health.offline and p.offline
    assert p.log.log_end_offset == 1  # the unacknowledged batch was cut again
    assert len([r for r in caplog.records if "taking it offline" in r.getMessage()]) == 1
    faults.heal()
    with pytest.raises(LogDirOffline):  # offline until a restart, as Kafka
        p.append_records(batch(1), V, NOW)


def test_read_only_filesystem_goes_offline(manager, faults):
    p = manager.partition("t", 0)
    faults.fail(errno.EROFS, "log")
    with pytest.raises(LogDirOffline) as info:
        p.append_records(batch(1), V, NOW)
    assert isinstance(info.value, StorageError) and info.value.errno == errno.EROFS
    assert manager.health.offline


def test_topic_metadata_that_cannot_be_written_leaves_no_half_made_topic(manager, monkeypatch):
    faults = Faults(monkeypatch, "__kavka_meta")
    faults.fail(errno.ENOSPC, "tmp", partial=5)
    with pytest.raises(StorageFull):
        manager.create_topic("new", 2)
    assert manager.topic("new") is None
    meta = manager.data_dir / "__kavka_meta"
    assert sorted(os.listdir(meta)) == ["topics.json"]  # no temp file keeping the space
    faults.heal()
    manager.create_topic("new", 2)
    assert manager.partition("new", 1) is not None


def test_group_journal_write_failure_is_not_replayed(manager, monkeypatch):
    from kavka.group.offsets_topic import OffsetsTopic
    from kavka.group.log_format import OffsetKey, OffsetValue
    journal = OffsetsTopic(manager, 1, 1 << 20, ManualClock(NOW))
    key = OffsetKey("g", "t", 0)
    journal.append("g", [(key, OffsetValue(5, -1, "", NOW))])
    faults = Faults(monkeypatch, "__consumer_offsets-0/")
    faults.fail(errno.ENOSPC, "log")
    with pytest.raises(StorageFull):
        journal.append("g", [(key, OffsetValue(9, -1, "", NOW))])
    faults.heal()
    assert [entry.value.offset for entry in journal.read_all()] == [5]
