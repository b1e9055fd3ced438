"""Partition.append_records: validation, idempotent dedupe and producer state across restarts."""

from __future__ import annotations

import pytest

from kavka.clock import ManualClock
from kavka.config import BrokerConfig
from kavka.log.errors import CorruptRecord, InvalidProducerEpoch, OutOfOrderSequence, RecordTooLarge
from kavka.log.log_manager import LogManager
from kavka.protocol import records
from kavka.protocol.record_codec import encode_batch, iter_records

NOW = 1_700_000_000_000
V = 9


def batch(n: int = 1, pid: int = -1, epoch: int = -1, seq: int = -1, value: bytes = b"v") -> bytearray:
    rows = [(b"k", value + b"%d" % i, NOW, ()) for i in range(n)]
    return bytearray(encode_batch(rows, producer_id=pid, producer_epoch=epoch, base_sequence=seq))


def open_manager(data_dir) -> LogManager:
    m = LogManager(data_dir, BrokerConfig(), ManualClock(NOW))
    m.load()
    return m


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def manager(data_dir):
    m = open_manager(data_dir)
    m.create_topic("t", 1)
    yield m
    m.close()


def read_all(partition) -> list:
    result = partition.log.read(partition.log.log_start_offset, 1 << 20)
    return [r for s in result.slices for r in iter_records(s.read())]


def test_append_assigns_offsets_in_place(manager):
    p = manager.partition("t", 0)
    first, second = batch(2), batch(3)
    assert p.append_records(first, V, NOW).base_offset == 0
    info = p.append_records(second, V, NOW)
    assert (info.base_offset, info.last_offset, info.duplicate) == (2, 4, False)
    assert records.read_header(second).base_offset == 2
    assert [r.offset for r in read_all(p)] == [0, 1, 2, 3, 4]


def test_validation_errors_write_nothing(manager):
    p = manager.partition("t", 0)
    bad = batch(1)
    bad[-1] ^= 1
    with pytest.raises(CorruptRecord):
        p.append_records(bad, V, NOW)
    manager.alter_topic_config("t", {"max.message.bytes": "70"})
    with pytest.raises(RecordTooLarge):
        p.append_records(batch(5), V, NOW)
    assert p.log.log_end_offset == 0


def test_a_retry_is_acknowledged_with_the_original_offsets(manager):
    p = manager.partition("t", 0)
    p.append_records(batch(1), V, NOW)
    original = p.append_records(batch(2, pid=5, epoch=0, seq=0), V, NOW)
    p.append_records(batch(1, pid=5, epoch=0, seq=2), V, NOW)
    retry = p.append_records(batch(2, pid=5, epoch=0, seq=0), V, NOW)
    assert retry.duplicate and (retry.base_offset, retry.last_offset) == (original.base_offset, 2)
    assert p.log.log_end_offset == 4


def test_sequence_and_epoch_errors_write_nothing(manager):
    p = manager.partition("t", 0)
    p.append_records(batch(1, pid=5, epoch=1, seq=0), V, NOW)
    with pytest.raises(OutOfOrderSequence):
        p.append_records(batch(1, pid=5, epoch=1, seq=2), V, NOW)
    with pytest.raises(InvalidProducerEpoch):
        p.append_records(batch(1, pid=5, epoch=0, seq=1), V, NOW)
    assert p.log.log_end_offset == 1


def test_log_append_time_topics_stamp_the_batch_and_dedupe_with_that_time(manager, data_dir):
    manager.create_topic("lat", 1, {"message.timestamp.type": "LogAppendTime"})
    p = manager.partition("lat", 0)
    info = p.append_records(batch(1, pid=5, epoch=0, seq=0), V, NOW + 7)
    assert info.log_append_time_ms == NOW + 7
    assert p.append_records(batch(1, pid=5, epoch=0, seq=0), V, NOW + 9).log_append_time_ms == NOW + 7


@pytest.mark.parametrize("clean", [True, False])
def test_producer_state_survives_a_restart(data_dir, clean):
    m = open_manager(data_dir)
    m.create_topic("t", 1)
    p = m.partition("t", 0)
    for seq in range(0, 6, 2):
        p.append_records(batch(2, pid=5, epoch=0, seq=seq), V, NOW)
    m.close() if clean else m._release_lock()
    m = open_manager(data_dir)
    p = m.partition("t", 0)
    assert p.append_records(batch(2, pid=5, epoch=0, seq=2), V, NOW).base_offset == 2  # a retry
    with pytest.raises(OutOfOrderSequence):
        p.append_records(batch(1, pid=5, epoch=0, seq=7), V, NOW)
    assert not p.append_records(batch(1, pid=5, epoch=0, seq=6), V, NOW).duplicate
    m.close()


def test_producer_snapshot_is_written_at_each_segment_roll(manager, data_dir):
    manager.create_topic("small", 1, {"segment.bytes": "200"})
    p = manager.partition("small", 0)
    for seq in range(4):
        p.append_records(batch(1, pid=5, epoch=0, seq=seq, value=b"x" * 100), V, NOW)
    bases = [s.base_offset for s in p.log.segments]
    assert len(bases) > 1
    assert p.producers.snapshot_offsets() == bases[-2:]


def test_truncation_rebuilds_producer_state(manager):
    p = manager.partition("t", 0)
    for seq in range(3):
        p.append_records(batch(1, pid=5, epoch=0, seq=seq), V, NOW)
    p.truncate_to(1)
    assert p.producers.producers[5].last_seq == 0
    assert not p.append_records(batch(1, pid=5, epoch=0, seq=1), V, NOW).duplicate
