"""The compaction cleaner: what it keeps, when it runs, and that it never loses the newest record."""

from __future__ import annotations

import asyncio
import os

import pytest

from kavka.log.cleaner import ENTRY_COST, is_cleanable, measure
from kavka.log.partition import Partition
from kavka.protocol import records
from cleaner_helpers import Env, is_subsequence, latest, read_all, read_batches


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path / "data")
    yield e
    e.close()


def fill(env, rounds: int, keys: int = 4, size: int = 20):
    """``rounds`` batches each updating every key; value = round number."""
    for r in range(rounds):
        env.write(*[(b"k%d" % k, b"%d:" % r + bytes(size)) for k in range(keys)])


def test_keeps_exactly_the_newest_record_per_key_in_closed_segments(env):
    fill(env, 12)
    before = read_all(env.log)
    leo, active = env.log.log_end_offset, env.log.segments[-1]
    assert len(env.log.segments) > 3
    result = env.cleaner.clean_once()
    assert result is not None and result.records_kept < result.records_read
    after = read_all(env.log)
    assert env.log.log_end_offset == leo and env.log.log_start_offset == 0
    assert env.log.segments[-1] is active                       # the active segment is untouched
    assert latest(after) == latest(before)
    assert is_subsequence(after, before)                         # originals at their offsets
    newest_closed = {k: o for o, k, _ in before if o < active.base_offset}
    expected = [e for e in before if e[0] >= active.base_offset or newest_closed[e[1]] == e[0]]
    assert after == expected                                     # one record per key below the active
    assert env.cleaner.clean_once() is None                      # nothing dirty any more


def test_batches_keep_base_offsets_and_spans(env):
    fill(env, 12)
    spans = {h.base_offset: h.last_offset_delta for h in read_batches(env.log)}
    env.cleaner.clean_once()
    for header in read_batches(env.log):
        assert spans[header.base_offset] == header.last_offset_delta
        assert header.records_count <= header.last_offset_delta + 1


def test_cleaned_log_reopens_with_the_same_records_and_checkpoint(env):
    fill(env, 12)
    env.cleaner.clean_once()
    after = read_all(env.log)
    checkpoint = (env.log.path / "cleaner-offset-checkpoint").read_text()
    env.reopen()
    assert read_all(env.log) == after
    assert (env.log.path / "cleaner-offset-checkpoint").read_text() == checkpoint
    assert env.cleaner.clean_once() is None
    names = os.listdir(env.log.path)
    assert not [n for n in names if n.endswith((".cleaned", ".swap", ".deleted"))]


@pytest.mark.parametrize("codec", [1, 2, 3, 4])
def test_rewritten_batches_keep_their_codec(env, codec):
    for r in range(10):
        env.write((b"a", b"a%d" % r), (b"b%d" % r, b"b"), codec=codec)
    env.cleaner.clean_once()
    closed = [h for h in read_batches(env.log) if h.base_offset < env.log.segments[-1].base_offset]
    rewritten = [h for h in closed if h.records_count < h.last_offset_delta + 1]
    assert rewritten and all(h.compression == codec for h in closed)
    assert latest(read_all(env.log))[b"a"] == b"a9"


def test_tombstones_stay_for_delete_retention_ms_then_go(env):
    fill(env, 3)
    env.write((b"k1", None))
    fill(env, 6, keys=1)       # more k0 traffic so the tombstone lands in a closed segment
    env.log.roll()
    env.cleaner.clean_once()
    tombstones = [e for e in read_all(env.log) if e[2] is None]
    assert [k for _, k, _ in tombstones] == [b"k1"]
    stamped = [h for h in read_batches(env.log) if h.attributes & records.ATTR_DELETE_HORIZON]
    assert len(stamped) == 1 and stamped[0].base_timestamp == env.clock.now_ms() + 1000
    env.clock.advance(999)
    assert env.cleaner.clean_once() is None
    fill(env, 2, keys=1)
    env.log.roll()
    assert env.cleaner.clean_once() is not None      # a cleaning just before the horizon keeps it
    assert [k for _, k, v in read_all(env.log) if v is None] == [b"k1"]
    env.clock.advance(1)
    assert env.cleaner.clean_once() is not None      # the horizon passed: cleanable again
    assert all(v is not None for _, _, v in read_all(env.log))
    assert b"k1" not in latest(read_all(env.log))
    assert env.cleaner.clean_once() is None


def test_a_tombstone_keeps_record_timestamps(env):
    env.write((b"x", b"1"))
    env.clock.advance(5)
    env.write((b"y", None), (b"z", b"2"))
    stamps = {r.offset: r.timestamp for r in __import__("cleaner_helpers").read_records(env.log)}
    env.log.roll()
    env.cleaner.clean_once()
    assert {r.offset: r.timestamp for r in __import__("cleaner_helpers").read_records(env.log)} == stamps


def test_the_last_batch_of_a_producer_survives_empty(env):
    pid = 7000
    env.write((b"a", b"1"), producer=(pid, 0, 0))
    env.write((b"a", b"2"), producer=(pid, 0, 1))
    fill(env, 8, keys=1)  # key k0 only; a's newest is pid's second batch
    env.write((b"a", b"3"))  # supersedes both of pid's records
    env.log.roll()
    env.cleaner.clean_once()
    pid_batches = [h for h in read_batches(env.log) if h.producer_id == pid]
    assert [(h.base_sequence, h.records_count) for h in pid_batches] == [(1, 0)]
    env.reopen()
    producers = Partition.open("t", 0, env.log).producers.producers
    assert producers[pid].last_seq == 1
    assert env.write((b"a", b"4"), producer=(pid, 0, 2)).duplicate is False


def test_dirty_ratio_and_compaction_lags(tmp_path):
    env = Env(tmp_path / "d", {"min.cleanable.dirty.ratio": "0.9"})
    try:
        fill(env, 12)
        env.cleaner.clean_once()  # ratio 1.0 the first time
        fill(env, 2)
        env.log.roll()
        found = measure(env.partition, env.clock.now_ms())
        assert 0 < found.ratio < 0.9 and not is_cleanable(env.partition, found)
        assert env.cleaner.clean_once() is None
    finally:
        env.close()
    env = Env(tmp_path / "e", {"min.compaction.lag.ms": "10000"})
    try:
        fill(env, 12)
        assert env.cleaner.clean_once() is None          # everything is younger than the lag
        env.clock.advance(10_001)
        assert env.cleaner.clean_once() is not None
    finally:
        env.close()
    env = Env(tmp_path / "f", {"min.cleanable.dirty.ratio": "1", "max.compaction.lag.ms": "5000"})
    try:
        fill(env, 12)
        fill(env, 1)
        env.cleaner.clean_once()
        fill(env, 3)
        env.log.roll()
        assert env.cleaner.clean_once() is None
        env.clock.advance(5_001)                          # overdue: cleaned despite the ratio
        assert measure(env.partition, env.clock.now_ms()).overdue
        assert env.cleaner.clean_once() is not None
    finally:
        env.close()


def test_a_small_offset_map_cleans_in_several_passes(env):
    fill(env, 12, keys=6)
    env.log.roll()
    before = read_all(env.log)
    # a map of 8 entries, set as a dynamic broker config is: the cleaner reads it at each run
    env.broker_config.set_dynamic("broker", {"log.cleaner.dedupe.buffer.size": 8 * ENTRY_COST,
                                             "log.cleaner.io.buffer.load.factor": 1.0})
    assert env.cleaner.max_map_entries == 8
    passes = 0
    while env.cleaner.clean_once() is not None and passes < 50:
        passes += 1
    assert 2 < passes < 50
    after = read_all(env.log)
    assert latest(after) == latest(before) and len(after) == 6


def test_fetch_slices_of_replaced_segments_stay_readable(env):
    fill(env, 12)
    slices = env.log.read(0, 1 << 20).slices
    old = [s.read() for s in slices]
    env.cleaner.clean_once()
    assert [s.read() for s in slices] == old


def test_segments_deleted_meanwhile_abort_the_swap(env):
    env.manager.alter_topic_config("t", {"cleanup.policy": "compact,delete"})
    fill(env, 12)
    partition, olds, job = env.cleaner.choose(env.clock.now_ms())
    from kavka.log.compactor import compact
    result = compact(job, env.clock)
    env.log.set_log_start_offset(olds[1].base_offset)   # DeleteRecords during the copy
    before = read_all(env.log)
    assert not env.cleaner.install(partition, olds, job, result)
    assert read_all(env.log) == before
    assert not [n for n in os.listdir(env.log.path) if n.endswith((".cleaned", ".swap"))]
    assert not (env.log.path / "cleaner-offset-checkpoint").exists()
    assert env.cleaner.clean_once() is not None          # next time it works


@pytest.mark.parametrize("use_process", [True, False])
def test_async_cleaning_runs_beside_appends(env, use_process):
    env.cleaner.use_process = use_process
    fill(env, 30)

    async def main():
        task = asyncio.ensure_future(env.cleaner.run_once())
        written = 0
        while not task.done():
            env.write((b"live", b"%d" % written))
            written += 1
            await asyncio.sleep(0)
        result = await task
        await env.cleaner.close()
        return result, written

    before = read_all(env.log)
    result, written = asyncio.run(main())
    assert result is not None and written > 0
    after = read_all(env.log)
    assert latest(after) == {**latest(before), b"live": b"%d" % (written - 1)}
    assert is_subsequence([e for e in after if e[1] != b"live"], before)


@pytest.mark.parametrize("use_process", [True, False])
def test_close_aborts_a_cleaning_in_progress_and_removes_its_files(env, use_process):
    env.cleaner.use_process = use_process
    fill(env, 40)

    async def main():
        task = asyncio.ensure_future(env.cleaner.run_once())
        await asyncio.sleep(0.05 if use_process else 0)
        running = env.cleaner._child if use_process else env.cleaner._running
        assert running is not None  # under way
        task.cancel()
        await asyncio.sleep(0)
        await env.cleaner.close()
        if use_process:
            assert running._process.returncode is not None  # killed and reaped
        else:
            assert running.done()
        await asyncio.sleep(0.3)  # nothing keeps writing afterwards

    before = read_all(env.log)
    asyncio.run(main())
    assert read_all(env.log) == before
    assert not [n for n in os.listdir(env.log.path) if n.endswith(".cleaned")]


def test_a_failing_cleaner_process_changes_nothing(env, monkeypatch):
    import dataclasses

    from kavka.log import cleaner_process
    from kavka.log.cleaner_process import CleanerFailed

    real = cleaner_process.portable

    def broken(job):  # the child cannot read its sources
        job = real(job)
        bad = tuple(dataclasses.replace(s, data=dataclasses.replace(s.data, fd=987)) for s in job.segments)
        return dataclasses.replace(job, segments=bad)

    monkeypatch.setattr(cleaner_process, "portable", broken)
    fill(env, 12)
    before = read_all(env.log)
    with pytest.raises(CleanerFailed, match="exited with"):
        asyncio.run(env.cleaner.run_once())
    assert read_all(env.log) == before
    assert not [n for n in os.listdir(env.log.path) if n.endswith((".cleaned", ".swap"))]
    monkeypatch.setattr(cleaner_process, "portable", real)
    assert asyncio.run(env.cleaner.run_once()) is not None
