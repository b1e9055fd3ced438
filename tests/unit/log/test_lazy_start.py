"""A start opens closed segments lazily (issue 14 item 5): what a start reads, counted with
hooks on the file system calls, not timed; recovery without the marker is unchanged."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from kavka.clock import ManualClock
from kavka.config import BrokerConfig
from kavka.log import segment as segment_module
from kavka.log.log_manager import CLEAN_SHUTDOWN_FILE, LogManager
from log_helpers import T0, all_batches, make_batch

TOPIC = "lazy"
PARTITIONS = 2
BATCHES = 40


def _manager(data_dir: Path) -> LogManager:
    manager = LogManager(data_dir, BrokerConfig(), ManualClock(T0 + 1000))
    manager.load()
    return manager


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """Two partitions of several small segments each, closed cleanly (marker written)."""
    manager = _manager(tmp_path)
    manager.create_topic(TOPIC, PARTITIONS, {"segment.bytes": "2048", "index.interval.bytes": "100"})
    for p in range(PARTITIONS):
        for i in range(BATCHES):
            manager.partition(TOPIC, p).append_records(make_batch(3, T0 + 10 * i, value_size=60), 9, T0 + 1000)
    manager.close()
    assert (tmp_path / CLEAN_SHUTDOWN_FILE).exists()
    return tmp_path


class FileCalls:
    """The paths a piece of code opens or preads (os.open, io.open, os.pread)."""

    def __init__(self, monkeypatch) -> None:
        self.paths: list[str] = []
        real_open, real_io_open, real_pread = os.open, io.open, os.pread

        def os_open(path, *args, **kwargs):
            self.paths.append(str(path))
            return real_open(path, *args, **kwargs)

        def io_open(file, *args, **kwargs):
            if not isinstance(file, int):
                self.paths.append(str(file))
            return real_io_open(file, *args, **kwargs)

        def pread(fd, *args):
            self.paths.append(os.readlink(f"/proc/self/fd/{fd}"))
            return real_pread(fd, *args)

        monkeypatch.setattr(os, "open", os_open)
        monkeypatch.setattr(io, "open", io_open)
        monkeypatch.setattr(os, "pread", pread)

    def segment_files(self, partition_dir: Path) -> set[str]:
        """Names of the segment files (.log and indexes) of ``partition_dir`` touched."""
        return {Path(p).name for p in self.paths if Path(p).parent == partition_dir
                and Path(p).suffix in (".log", ".index", ".timeindex", ".txnindex")}


def _closed_bases(partition_dir: Path) -> list[int]:
    return sorted(int(p.stem) for p in partition_dir.glob("*.log"))[:-1]


def test_a_clean_start_reads_no_closed_segment(data_dir, monkeypatch):
    directories = [data_dir / f"{TOPIC}-{p}" for p in range(PARTITIONS)]
    closed = {d: _closed_bases(d) for d in directories}
    assert all(len(bases) >= 5 for bases in closed.values()), closed
    stats_before = (segment_module.STATS.lazy, segment_module.STATS.materialized)
    calls = FileCalls(monkeypatch)
    manager = _manager(data_dir)
    try:
        for d in directories:
            touched = {int(name[:20]) for name in calls.segment_files(d)}
            assert touched.isdisjoint(closed[d]), f"{d.name}: closed segments read at start: {sorted(touched)}"
            assert touched == {sorted(int(p.stem) for p in d.glob("*.log"))[-1]}  # the active one only
        assert segment_module.STATS.lazy - stats_before[0] == sum(map(len, closed.values()))
        assert segment_module.STATS.materialized == stats_before[1]
        assert not (data_dir / CLEAN_SHUTDOWN_FILE).exists(), "the marker must go when the broker starts"
        plog = manager.partition(TOPIC, 0).log
        assert plog.log_end_offset == 3 * BATCHES
        assert not any(s.is_loaded for s in plog.segments[:-1])
        assert plog.size_bytes == sum(p.stat().st_size for p in directories[0].glob("*.log"))  # from the stat
    finally:
        manager.close()
    assert (data_dir / CLEAN_SHUTDOWN_FILE).exists()
    # Closing wrote nothing into the segments never loaded, and the next start is lazy again.
    assert all(not any(Path(p).name.startswith(f"{b:020d}") for p in calls.paths)
               for d in directories for b in closed[d][1:])


def test_old_segments_load_on_first_use(data_dir, monkeypatch):
    expected = _contents(data_dir)
    manager = _manager(data_dir)
    try:
        calls = FileCalls(monkeypatch)
        plog = manager.partition(TOPIC, 0).log
        first = plog.segments[0]
        assert not first.is_loaded
        got = plog.read(0, 10**6, max_offset=3).slices  # the first batch only
        assert [s.read() for s in got] == [expected[0]]
        assert first.is_loaded and not plog.segments[1].is_loaded
        assert {f"{first.base_offset:020d}.index", f"{first.base_offset:020d}.log"} <= \
            calls.segment_files(plog.path)
        assert all_batches(plog) == expected  # every segment, through its index
        assert plog.offset_for_timestamp(T0 + 10 * 20) == (60, T0 + 10 * 20)
        assert first.largest_timestamp_ms == max(T0 + 10 * i + 2 for i in range(first.next_offset // 3))
    finally:
        manager.close()


def test_a_lazy_segment_with_a_broken_index_rebuilds_it_on_first_use(data_dir):
    expected = _contents(data_dir)
    directory = data_dir / f"{TOPIC}-0"
    base = _closed_bases(directory)[1]
    index = directory / f"{base:020d}.index"
    index.write_bytes(index.read_bytes()[:-3])  # not a multiple of the entry size
    os.utime(directory / f"{base:020d}.log", ns=(0, 0))  # the .log itself is older than the marker
    manager = _manager(data_dir)
    try:
        plog = manager.partition(TOPIC, 0).log
        assert all_batches(plog) == expected
        assert len(index.read_bytes()) % 8 == 0 and len(plog.segments[1].offset_index) > 0
    finally:
        manager.close()


def test_a_start_without_the_marker_recovers_the_tail(data_dir):
    expected = _contents(data_dir)
    directory = data_dir / f"{TOPIC}-0"
    active = sorted(directory.glob("*.log"))[-1]
    size = active.stat().st_size
    (data_dir / CLEAN_SHUTDOWN_FILE).unlink()  # as after kill -9
    with open(active, "ab") as f:
        f.write(b"\x00\x01torn batch")
    manager = _manager(data_dir)
    try:
        plog = manager.partition(TOPIC, 0).log
        assert active.stat().st_size == size, "the torn tail must be cut"
        assert not plog.segments[0].is_loaded  # below the recovery point: trusted, lazy
        assert all_batches(plog) == expected
        assert plog.segments[0].is_loaded
    finally:
        manager.close()


def test_a_closed_segment_modified_while_stopped_is_checked_at_start(data_dir):
    directory = data_dir / f"{TOPIC}-0"
    bases = _closed_bases(directory)
    damaged = directory / f"{bases[2]:020d}.log"
    with open(damaged, "r+b") as f:  # flip a byte of its second batch's records
        f.seek(200)
        byte = f.read(1)
        f.seek(200)
        f.write(bytes([byte[0] ^ 0xFF]))
    manager = _manager(data_dir)
    try:
        plog = manager.partition(TOPIC, 0).log
        assert plog.log_end_offset <= bases[3], "the log must be cut at the damaged batch"
        assert [s.base_offset for s in plog.segments] == bases[:3]
        assert plog.segments[2].is_loaded  # (the producer-state replay then reads from 0: no snapshot left)
    finally:
        manager.close()


def _contents(data_dir: Path) -> list[bytes]:
    manager = _manager(data_dir)
    try:
        return all_batches(manager.partition(TOPIC, 0).log)
    finally:
        manager.close()
