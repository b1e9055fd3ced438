"""PartitionLog: offsets, rolls, reads across segments, timestamps, epochs, deletion, reopen."""

from __future__ import annotations

import os
import struct

import pytest

from kavka.log.errors import OffsetOutOfRange
from kavka.log.partition_log import PartitionLog, UnexpectedAppendOffset
from kavka.protocol import records
from kavka.protocol.record_codec import decode_records, encode_batch
from log_helpers import T0, make_batch, topic_config

SMALL = dict(segment_bytes=600, index_interval_bytes=100)


def open_log(path, clock, recover=False, **config):
    return PartitionLog.open(path / "t-0", "t", 0, topic_config(**(config or SMALL)), clock, recover)


def batches_of(result) -> list[tuple[int, int]]:
    data = b"".join(s.read() for s in result.slices)
    return [(h.base_offset, h.last_offset) for _, h in records.iter_batches(data)]


@pytest.fixture
def log(tmp_path, clock):
    plog = open_log(tmp_path, clock)
    yield plog
    plog.close()


def fill(plog, n, count=3, value_size=30):
    return [plog.append(make_batch(count, T0 + i, value_size)) for i in range(n)]


def test_append_assigns_offsets_and_moves_hw_with_leo(log):
    infos = fill(log, 5)
    assert [(i.base_offset, i.last_offset) for i in infos] == [(0, 2), (3, 5), (6, 8), (9, 11), (12, 14)]
    assert all(i.log_append_time_ms == -1 and i.log_start_offset == 0 for i in infos)
    assert (log.log_start_offset, log.high_watermark, log.log_end_offset) == (0, 15, 15)


def test_rolls_into_many_small_segments_and_reads_across_them(log):
    fill(log, 40)
    assert len(log.segments) > 5
    assert all(s.size <= 600 for s in log.segments)
    assert [s.base_offset for s in log.segments] == sorted({s.base_offset for s in log.segments})
    everything = log.read(0, 10**6)
    assert len(everything.slices) == len(log.segments)
    assert batches_of(everything) == [(3 * i, 3 * i + 2) for i in range(40)]
    assert (everything.high_watermark, everything.log_start_offset, everything.log_end_offset) == (120, 0, 120)


def test_read_max_bytes_and_min_one_batch(log):
    fill(log, 40)
    size = log.segments[0].read(0, 1).size
    for max_bytes in (1, size - 1, size, 2 * size + 1, 7 * size, 10 * size - 1):
        got = batches_of(log.read(31, max_bytes))
        assert got[0] == (30, 32)  # the batch holding offset 31
        assert len(got) == max(1, max_bytes // size)
    assert log.read(31, size - 1, min_one_batch=False).slices == []
    assert log.read(120, 100).slices == []


def test_read_excludes_batches_at_or_beyond_max_offset(log):
    fill(log, 40)
    assert batches_of(log.read(0, 10**6, max_offset=30))[-1] == (27, 29)
    assert batches_of(log.read(0, 10**6, max_offset=31))[-1] == (27, 29)  # 30..32 straddles it
    assert log.read(30, 10**6, max_offset=30).slices == []
    assert batches_of(log.read(0, 10**6, max_offset=10**9))[-1] == (117, 119)


def test_read_out_of_range(log):
    fill(log, 3)
    with pytest.raises(OffsetOutOfRange):
        log.read(10, 100)
    with pytest.raises(OffsetOutOfRange):
        log.read(-1, 100)


def test_log_append_time_stamps_the_batch(tmp_path, clock):
    plog = open_log(tmp_path, clock, message_timestamp_type="LogAppendTime")
    clock.advance(5000)
    info = plog.append(make_batch(2, T0))
    assert info.log_append_time_ms == T0 + 5000
    data = plog.read(0, 1000).slices[0].read()
    assert records.validate(data).max_timestamp == T0 + 5000
    assert [r.timestamp for r in decode_records(data)] == [T0 + 5000] * 2
    plog.close()


def test_rolls_on_segment_ms_measured_in_record_time(tmp_path, clock):
    plog = open_log(tmp_path, clock, segment_ms=1000)
    plog.append(make_batch(1, clock.now_ms()))
    clock.advance(1000)
    plog.append(make_batch(1, clock.now_ms()))
    assert len(plog.segments) == 1
    clock.advance(1)
    plog.append(make_batch(1, clock.now_ms()))
    assert [s.base_offset for s in plog.segments] == [0, 2]
    for _ in range(3):  # old timestamps: no roll per batch
        plog.append(make_batch(1, T0 - 10**9))
    assert [s.base_offset for s in plog.segments] == [0, 2]
    plog.close()


def test_segment_ms_counts_from_creation_without_timestamps(tmp_path, clock):
    plog = open_log(tmp_path, clock, segment_ms=1000)
    plog.append(make_batch(1, -1))
    clock.advance(1001)
    plog.append(make_batch(1, -1))
    assert [s.base_offset for s in plog.segments] == [0, 1]
    plog.close()


def test_listeners_run_after_each_append(log):
    seen = []
    log.listeners.append(lambda p: seen.append(p.log_end_offset))
    fill(log, 3)
    assert seen == [3, 6, 9]


def test_offset_for_timestamp_matches_brute_force(log):
    import random
    rnd = random.Random(3)
    all_records = []
    for _ in range(60):
        stamps = [T0 + rnd.randint(0, 300) for _ in range(rnd.randint(1, 4))]
        info = log.append(make_batch(len(stamps), timestamps=stamps))
        all_records += [(info.base_offset + i, ts) for i, ts in enumerate(stamps)]
    for target in range(T0 - 3, T0 + 305, 2):
        expected = next(((o, t) for o, t in all_records if t >= target), None)
        assert log.offset_for_timestamp(target) == expected
    top = max(t for _, t in all_records)
    assert log.max_timestamp_entry() == next((o, t) for o, t in all_records if t == top)


def test_offset_for_timestamp_skips_records_below_the_log_start(log):
    log.append(make_batch(4, timestamps=[T0 + 50, T0 + 10, T0 + 60, T0 + 5]))
    log.set_log_start_offset(3)
    assert log.offset_for_timestamp(T0) == (3, T0 + 5)
    assert log.offset_for_timestamp(T0 + 6) is None


def test_empty_log_timestamp_queries(log):
    assert log.offset_for_timestamp(0) is None
    assert log.max_timestamp_entry() == (-1, -1)


def test_leader_epochs_are_stamped_checkpointed_and_answered(tmp_path, clock, log):
    fill(log, 2)
    log.assign_leader_epoch(0)
    fill(log, 2)
    log.append(make_batch(2), leader_epoch=3)
    fill(log, 1)
    assert log.leader_epoch == 3
    assert log.leader_epoch_entries() == [(0, 6), (3, 12)]
    data = b"".join(s.read() for s in log.read(0, 10**6).slices)
    assert [h.partition_leader_epoch for _, h in records.iter_batches(data)] == [-1, -1, 0, 0, 3, 3]
    assert log.end_offset_for_epoch(0) == (0, 12)
    assert log.end_offset_for_epoch(2) == (0, 12)
    assert log.end_offset_for_epoch(3) == (3, 17)
    with pytest.raises(ValueError):
        log.append(make_batch(1), leader_epoch=2)
    log.close()
    again = open_log(tmp_path, clock)
    assert again.leader_epoch_entries() == [(0, 6), (3, 12)]
    (tmp_path / "t-0" / "leader-epoch-checkpoint").unlink()
    again.close()
    rebuilt = open_log(tmp_path, clock, recover=True)
    assert rebuilt.leader_epoch_entries() == [(0, 6), (3, 12)]
    rebuilt.close()


def test_truncate_to_cuts_segments_epochs_and_watermarks(tmp_path, clock, log):
    log.assign_leader_epoch(1)
    fill(log, 20)
    log.append(make_batch(3), leader_epoch=2)
    log.truncate_to(31)  # inside batch 30..32
    assert (log.log_end_offset, log.high_watermark) == (30, 30)
    assert log.segments[-1].next_offset == 30
    assert all(s.base_offset < 30 for s in log.segments)
    assert log.leader_epoch_entries() == [(1, 0)]
    assert batches_of(log.read(0, 10**6))[-1] == (27, 29)
    assert log.append(make_batch(1)).base_offset == 30
    log.close()
    again = open_log(tmp_path, clock, recover=True)
    assert again.log_end_offset == 31
    again.truncate_to(-5 + 5)
    assert (again.log_start_offset, again.log_end_offset, again.segments[0].size) == (0, 0, 0)
    again.close()


def test_delete_segments_before_moves_the_log_start_offset(tmp_path, clock, log):
    fill(log, 40)
    bases = [s.base_offset for s in log.segments]
    assert log.delete_segments_before(bases[3] + 1) == 3
    assert log.log_start_offset == bases[3]
    assert [s.base_offset for s in log.segments] == bases[3:]
    with pytest.raises(OffsetOutOfRange):
        log.read(bases[3] - 1, 100)
    assert log.delete_oldest_segment()
    assert log.log_start_offset == bases[4]
    assert log.delete_segments_before(10**9) == len(bases) - 4  # the active one too, after a roll
    assert (log.log_start_offset, log.log_end_offset, len(log.segments)) == (120, 120, 1)
    assert not log.delete_oldest_segment()
    assert sorted(os.listdir(tmp_path / "t-0")) == ["00000000000000000120.index", "00000000000000000120.log",
                                                    "00000000000000000120.timeindex", "leader-epoch-checkpoint",
                                                    "log-start-offset"]
    log.close()
    assert open_log(tmp_path, clock).log_start_offset == 120


def test_delete_segments_stops_at_the_high_watermark(tmp_path, clock):
    plog = PartitionLog.open(tmp_path / "t-0", "t", 0, topic_config(**SMALL), clock, False, hw_follows_leo=False)
    fill(plog, 40)
    assert plog.high_watermark == 0
    assert plog.delete_segments_before(10**9) == 0
    plog.advance_high_watermark(30)
    assert plog.delete_segments_before(10**9) > 0 and plog.log_start_offset <= 30
    with pytest.raises(ValueError):
        plog.advance_high_watermark(121)
    plog.close()


def test_set_log_start_offset_is_persisted(tmp_path, clock, log):
    fill(log, 40)
    log.set_log_start_offset(50)
    assert log.log_start_offset == 50 and log.segments[0].base_offset <= 50
    with pytest.raises(OffsetOutOfRange):
        log.set_log_start_offset(121)
    assert batches_of(log.read(50, 10**6))[0] == (48, 50)
    log.close()
    again = open_log(tmp_path, clock, recover=True)
    assert again.log_start_offset == 50
    again.close()


def test_append_as_follower_keeps_offsets_and_epochs(log):
    data = (encode_batch([(b"a", b"1", T0, ())], base_offset=0, partition_leader_epoch=4)
            + encode_batch([(b"b", b"2", T0, ())] * 2, base_offset=1, partition_leader_epoch=4)
            + encode_batch([(b"c", b"3", T0, ())], base_offset=5, partition_leader_epoch=6))
    info = log.append_as_follower(data)
    assert (info.base_offset, info.last_offset, log.log_end_offset) == (0, 5, 6)
    assert log.leader_epoch_entries() == [(4, 0), (6, 5)]
    with pytest.raises(UnexpectedAppendOffset):
        log.append_as_follower(encode_batch([(b"x", b"y", T0, ())], base_offset=3))


def test_iter_batch_headers_from_an_offset(log):
    fill(log, 30)
    assert [o for o, _ in log.iter_batch_headers(44)] == list(range(42, 90, 3))
    assert [o for o, _ in log.iter_batch_headers()][:2] == [0, 3]


def test_flush_writes_the_recovery_point(tmp_path, log):
    fill(log, 10)
    log.flush()
    assert (tmp_path / "t-0" / "recovery-point").read_text() == "30\n"
    assert log.recovery_point == 30


def test_delete_renames_the_directory_aside_first(tmp_path, log):
    fill(log, 10)
    piece = log.read(0, 10**6).slices[0]
    log.delete()
    assert os.listdir(tmp_path) == []
    assert len(piece.read()) == piece.size


def test_reopen_without_recovery_restores_everything(tmp_path, clock, log):
    fill(log, 40)
    expected = batches_of(log.read(0, 10**6))
    log.close()
    again = open_log(tmp_path, clock)
    assert batches_of(again.read(0, 10**6)) == expected
    assert (again.log_end_offset, again.high_watermark) == (120, 120)
    assert again.append(make_batch(1)).base_offset == 120
    again.close()


def test_flush_messages_fsyncs_before_the_append_returns(tmp_path, monkeypatch):
    """flush.messages=N: every Nth record forces an fsync and moves the recovery point."""
    from kavka.clock import ManualClock
    from kavka.config import BrokerConfig
    from kavka.log.partition_log import PartitionLog
    from kavka.protocol.record_codec import encode_batch

    config = BrokerConfig().topic_config({"flush.messages": 3})
    log = PartitionLog.open(tmp_path / "t-0", "t", 0, config, ManualClock(), recover=False)
    fsyncs = []
    real_fsync = __import__("os").fsync
    monkeypatch.setattr("os.fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd)))
    for i in range(2):
        log.append(bytearray(encode_batch([(None, b"v", 1_700_000_000_000, ())])))
    assert log.recovery_point == 0 and not fsyncs
    log.append(bytearray(encode_batch([(None, b"v", 1_700_000_000_000, ())])))
    assert fsyncs and log.recovery_point == 3
    log.close()


def test_flush_ms_fsyncs_once_the_interval_has_passed(tmp_path):
    from kavka.clock import ManualClock
    from kavka.config import BrokerConfig
    from kavka.log.partition_log import PartitionLog
    from kavka.protocol.record_codec import encode_batch

    clock = ManualClock()
    log = PartitionLog.open(tmp_path / "t-0", "t", 0, BrokerConfig().topic_config({"flush.ms": 1000}),
                            clock, recover=False)
    log.append(bytearray(encode_batch([(None, b"v", 1_700_000_000_000, ())])))
    assert log.recovery_point == 0
    clock.advance(1000)
    log.append(bytearray(encode_batch([(None, b"v", 1_700_000_000_000, ())])))
    assert log.recovery_point == 2
    log.close()


def test_timestamp_queries_on_a_batch_whose_records_do_not_decode(log, caplog):
    """Fuzz find (issue 9): a batch with a good CRC whose first record's length is wrong was
    stored by Produce, then ListOffsets by timestamp raised InvalidBatch out of the handler."""
    batch = make_batch(3, timestamps=[T0 + 1, T0 + 9, T0 + 5])
    batch[records.HEADER_SIZE] += 2  # first record's length varint: one byte too long
    struct.pack_into(">I", batch, 17, records.compute_crc(batch, 0, len(batch)))
    log.append(batch)
    assert log.offset_for_timestamp(T0 + 5) == (0, T0 + 9)  # batch granularity
    assert log.max_timestamp_entry() == (2, T0 + 9)
    assert "do not decode" in caplog.text
