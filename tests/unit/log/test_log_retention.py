"""Retention: which segments go (pure rules), deleting them, and crashes in the middle."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from kavka.clock import ManualClock
from kavka.config import BrokerConfig
from kavka.log.errors import OffsetOutOfRange
from kavka.log.log_manager import LogManager
from kavka.log.partition_log import PartitionLog
from kavka.log.retention import deletable_segments
from kavka.protocol import records
from log_helpers import T0, make_batch, topic_config

SMALL = dict(segment_bytes=600, index_interval_bytes=100)
HOUR = 3_600_000


# -- the rules, on fake segments ----------------------------------------------------------

def fake(*specs):
    """Segments from (base offset, size, largest timestamp) triples."""
    return [SimpleNamespace(base_offset=b, size=s, largest_timestamp_ms=t) for b, s, t in specs]


def decide(segments, hw=10**9, log_start=0, now=T0, **config):
    return deletable_segments(segments, topic_config(**config), now, hw, log_start)


def test_by_time_uses_the_largest_timestamp_and_stops_at_the_first_young_segment():
    segs = fake((0, 100, T0 - 3 * HOUR), (10, 100, T0 - 1), (20, 100, T0 - 3 * HOUR), (30, 100, T0 - 5 * HOUR))
    decision = decide(segs, retention_ms=HOUR)
    assert decision.count == 1 and decision.reasons == (("retention.ms", 1),)
    # exactly retention.ms old is kept (strictly older goes)
    assert decide(fake((0, 1, T0 - HOUR), (1, 1, T0)), retention_ms=HOUR).count == 0
    assert decide(fake((0, 1, T0 - HOUR - 1), (1, 1, T0)), retention_ms=HOUR).count == 1


def test_the_active_segment_is_never_deleted_even_when_everything_expired():
    segs = fake((0, 100, T0 - 9 * HOUR), (10, 100, T0 - 9 * HOUR), (20, 100, T0 - 9 * HOUR))
    assert decide(segs, retention_ms=HOUR).count == 2
    assert decide(segs, retention_bytes=0).count == 2
    assert decide(fake((0, 100, T0 - 9 * HOUR)), retention_ms=HOUR, retention_bytes=0).count == 0


def test_by_bytes_deletes_a_segment_only_if_the_rest_still_reaches_the_limit():
    segs = fake((0, 100, T0), (10, 200, T0), (20, 300, T0), (30, 50, T0))  # 650 bytes
    assert decide(segs, retention_bytes=650).count == 0
    assert decide(segs, retention_bytes=550).count == 1   # 650-100 = 550 >= 550
    assert decide(segs, retention_bytes=551).count == 0   # would leave 550 < 551
    assert decide(segs, retention_bytes=350).count == 2   # 650-100-200 = 350
    assert decide(segs, retention_bytes=349).count == 2   # the 300-byte one would leave 50
    assert decide(segs, retention_bytes=0).count == 3     # never the active one
    assert decide(segs, retention_bytes=-1).count == 0


def test_time_then_size_then_log_start_offset():
    segs = fake((0, 100, T0 - 9 * HOUR), (10, 100, T0), (20, 100, T0), (30, 100, T0), (40, 100, T0))
    decision = decide(segs, retention_ms=HOUR, retention_bytes=250)
    assert decision.count == 2 and decision.reasons == (("retention.ms", 1), ("retention.bytes", 1))
    decision = decide(segs, log_start=31, retention_ms=-1)
    assert decision.count == 3 and decision.reasons == (("log start offset", 3),)


def test_nothing_at_or_above_the_high_watermark_is_deleted():
    segs = fake((0, 100, T0 - 9 * HOUR), (10, 100, T0 - 9 * HOUR), (20, 100, T0 - 9 * HOUR))
    assert decide(segs, hw=9, retention_ms=HOUR).count == 0
    assert decide(segs, hw=10, retention_ms=HOUR).count == 1
    assert decide(segs, hw=19, retention_bytes=0).count == 1


def test_compact_only_topics_ignore_time_and_size_but_not_the_log_start_offset():
    segs = fake((0, 100, T0 - 9 * HOUR), (10, 100, T0 - 9 * HOUR), (20, 100, T0))
    assert decide(segs, cleanup_policy="compact", retention_ms=1, retention_bytes=0).count == 0
    assert decide(segs, log_start=15, cleanup_policy="compact").count == 1
    assert decide(segs, cleanup_policy="compact,delete", retention_ms=HOUR).count == 2


# -- on a real partition log --------------------------------------------------------------

def open_log(path, clock, recover=False, **config):
    return PartitionLog.open(path / "t-0", "t", 0, topic_config(**{**SMALL, **config}), clock, recover)


def fill(plog, n, first_ts=T0):
    """n batches of 3 records; batch i has timestamps first_ts + i .. + 2."""
    return [plog.append(make_batch(3, first_ts + i, 30)) for i in range(n)]


def offsets(plog) -> list[int]:
    data = b"".join(s.read() for s in plog.read(plog.log_start_offset, 10**7).slices)
    return [h.base_offset for _, h in records.iter_batches(data)]


def test_retention_ms_deletes_old_segments_moves_and_persists_the_start(tmp_path, clock):
    plog = open_log(tmp_path, clock, retention_ms=HOUR)
    fill(plog, 20, first_ts=T0)                 # old records...
    fill(plog, 20, first_ts=T0 + 10 * HOUR)     # ...then new ones
    bases = [s.base_offset for s in plog.segments]
    expected = next(i for i, s in enumerate(plog.segments) if s.max_timestamp >= T0 + HOUR)
    assert expected > 2
    assert plog.apply_retention(T0 + HOUR).count == 0
    decision = plog.apply_retention(T0 + 2 * HOUR)
    first_kept = plog.segments[0]
    assert decision.count == expected and decision.reasons == (("retention.ms", expected),)
    assert plog.log_start_offset == first_kept.base_offset == bases[decision.count]
    with pytest.raises(OffsetOutOfRange):
        plog.read(plog.log_start_offset - 1, 100)
    assert offsets(plog)[0] == plog.log_start_offset
    names = os.listdir(tmp_path / "t-0")
    assert not any(n.endswith(".deleted") for n in names)
    assert f"{bases[0]:020d}.log" not in names
    start, leo = plog.log_start_offset, plog.log_end_offset
    plog.close()
    again = open_log(tmp_path, clock, recover=True, retention_ms=HOUR)
    assert (again.log_start_offset, again.log_end_offset) == (start, leo)
    assert (tmp_path / "t-0" / "log-start-offset").read_text() == f"{start}\n"
    again.close()


def test_retention_bytes_keeps_the_partition_at_or_above_the_limit(tmp_path, clock):
    plog = open_log(tmp_path, clock, retention_bytes=2000)
    fill(plog, 60)
    sizes = [s.size for s in plog.segments]
    before = plog.size_bytes
    decision = plog.apply_retention(T0)
    assert decision.count > 0
    assert 2000 <= plog.size_bytes < 2000 + plog.segments[0].size
    assert before - plog.size_bytes == sum(sizes[:decision.count])
    assert before - sum(sizes[:decision.count + 1]) < 2000  # one more would undershoot
    assert plog.apply_retention(T0).count == 0  # stable
    plog.close()


def test_never_the_active_segment_even_if_it_expired(tmp_path, clock):
    plog = open_log(tmp_path, clock, retention_ms=1, segment_bytes=10**6)
    fill(plog, 5)
    assert len(plog.segments) == 1
    assert plog.apply_retention(T0 + 100 * HOUR).count == 0
    assert (plog.log_start_offset, offsets(plog)) == (0, [0, 3, 6, 9, 12])
    plog.close()


def test_segments_without_timestamps_age_by_file_mtime(tmp_path, clock):
    plog = open_log(tmp_path, clock, retention_ms=HOUR)
    for _ in range(12):
        plog.append(make_batch(3, value_size=30, timestamps=[-1, -1, -1]))
    assert len(plog.segments) > 2
    first = plog.segments[0]
    mtime_ms = os.stat(first.log_path).st_mtime_ns // 1_000_000
    assert first.largest_timestamp_ms == mtime_ms
    closed = len(plog.segments) - 1
    assert plog.apply_retention(first.largest_timestamp_ms - 1 + HOUR).count == 0
    assert plog.apply_retention(mtime_ms + 2 * HOUR + 1000).count == closed
    plog.close()


def test_a_fetch_holding_a_slice_of_a_deleted_segment_still_reads_it(tmp_path, clock):
    plog = open_log(tmp_path, clock, retention_ms=HOUR)
    fill(plog, 20)
    piece = plog.read(0, 10**6).slices[0]
    expected = piece.read()
    assert plog.apply_retention(T0 + 3 * HOUR).count > 0
    assert not (tmp_path / "t-0" / f"{0:020d}.log").exists()
    assert piece.read() == expected  # the fd stays open while the slice lives
    del piece
    plog.close()


# -- crashes in the middle of a deletion --------------------------------------------------

@pytest.fixture
def abandoned(tmp_path, clock):
    """A log of 40 batches in many segments, abandoned without close (kill -9)."""
    plog = open_log(tmp_path, clock)
    fill(plog, 40)
    bases = [s.base_offset for s in plog.segments]
    everything = offsets(plog)
    for segment in plog.segments:
        segment.close()
    return tmp_path / "t-0", bases, everything


def test_crash_after_the_rename_before_the_unlink(abandoned, clock):
    directory, bases, everything = abandoned
    (directory / "log-start-offset").write_text(f"{bases[2]}\n")
    for base in bases[:2]:
        for suffix in (".log", ".index", ".timeindex"):
            os.rename(directory / f"{base:020d}{suffix}", directory / f"{base:020d}{suffix}.deleted")
    plog = open_log(directory.parent, clock, recover=True)
    assert plog.log_start_offset == bases[2]
    assert offsets(plog) == [o for o in everything if o >= bases[2]]
    assert not any(p.name.endswith(".deleted") for p in directory.iterdir())
    plog.close()


def test_crash_after_the_checkpoint_before_any_rename(abandoned, clock):
    """The segments left the in-memory list and the start moved, then the process died."""
    directory, bases, everything = abandoned
    (directory / "log-start-offset").write_text(f"{bases[3]}\n")
    plog = open_log(directory.parent, clock, recover=True)
    assert plog.log_start_offset == bases[3]
    assert [s.base_offset for s in plog.segments] == bases[3:]
    assert not (directory / f"{bases[0]:020d}.log").exists()  # finished at open: no resurrection
    assert offsets(plog) == [o for o in everything if o >= bases[3]]
    plog.close()


def test_crash_with_only_the_log_renamed(abandoned, clock):
    directory, bases, everything = abandoned
    (directory / "log-start-offset").write_text(f"{bases[1]}\n")
    os.rename(directory / f"{bases[0]:020d}.log", directory / f"{bases[0]:020d}.log.deleted")
    plog = open_log(directory.parent, clock, recover=True)
    assert plog.log_start_offset == bases[1] and offsets(plog)[0] == bases[1]
    assert not (directory / f"{bases[0]:020d}.index").exists()  # orphan index removed
    plog.close()


def test_crash_before_the_checkpoint_deleted_nothing(abandoned, clock):
    directory, bases, everything = abandoned
    plog = open_log(directory.parent, clock, recover=True)
    assert plog.log_start_offset == 0 and offsets(plog) == everything
    plog.close()


def test_reopening_never_lowers_the_log_start_offset(abandoned, clock):
    directory, bases, everything = abandoned
    inside = bases[2] + 1  # DeleteRecords moved the start inside a segment
    (directory / "log-start-offset").write_text(f"{inside}\n")
    plog = open_log(directory.parent, clock, recover=True)
    assert plog.log_start_offset == inside and plog.segments[0].base_offset == bases[2]
    with pytest.raises(OffsetOutOfRange):
        plog.read(inside - 1, 100)
    plog.close()


# -- the log manager ----------------------------------------------------------------------

def test_housekeeping_applies_each_topics_retention(tmp_path):
    clock = ManualClock(T0)
    manager = LogManager(tmp_path / "data", BrokerConfig.from_strings({"log.segment.bytes": "600"}), clock)
    manager.load()
    try:
        manager.create_topic("short", 1, {"retention.ms": str(HOUR)})
        manager.create_topic("forever", 1, {"retention.ms": "-1"})
        manager.create_topic("table", 1, {"cleanup.policy": "compact", "retention.ms": "1"})
        for name in ("short", "forever", "table"):
            for i in range(20):
                manager.partition(name, 0).log.append(make_batch(3, T0 + i, 30))
        assert manager.housekeeping(T0 + HOUR) == 0
        short = manager.partition("short", 0).log
        closed = len(short.segments) - 1
        assert closed > 1
        assert manager.housekeeping(T0 + 2 * HOUR) == closed
        assert short.log_start_offset > 0 and len(short.segments) == 1
        assert manager.partition("forever", 0).log.log_start_offset == 0
        assert manager.partition("table", 0).log.log_start_offset == 0
    finally:
        manager.close()
