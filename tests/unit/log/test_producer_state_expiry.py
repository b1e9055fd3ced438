"""producer.id.expiration.ms: idle producers leave the table and the next snapshot (manual clock)."""

from __future__ import annotations

import json

from kavka.clock import ManualClock
from kavka.config import dynamic_names
from kavka.log.producer_state import ProducerState, snapshot_path
from kavka.protocol.records import BatchHeader
from cleaner_helpers import Env

DAY = 86_400_000


def header(pid: int, seq: int, ts: int, offset: int, epoch: int = 0) -> BatchHeader:
    return BatchHeader(
        base_offset=offset, batch_length=100, partition_leader_epoch=0, magic=2, crc=0, attributes=0,
        last_offset_delta=0, base_timestamp=ts, max_timestamp=ts, producer_id=pid, producer_epoch=epoch,
        base_sequence=seq, records_count=1)


def test_idle_producers_expire_after_the_expiration_time(tmp_path):
    clock = ManualClock()
    state = ProducerState(tmp_path)
    state.update(header(1, 0, clock.now_ms(), 0))
    clock.advance(DAY // 2)
    state.update(header(2, 0, clock.now_ms(), 1))
    clock.advance(DAY // 2 - 1)
    assert state.remove_expired(clock.now_ms(), DAY) == 0
    clock.advance(1)
    assert state.remove_expired(clock.now_ms(), DAY) == 1, "exactly one day after its last batch"
    assert set(state.producers) == {2}
    state.update(header(2, 1, clock.now_ms(), 2))   # a new batch restarts its clock
    clock.advance(DAY - 1)
    assert state.remove_expired(clock.now_ms(), DAY) == 0
    assert set(state.producers) == {2}


def test_expired_producers_are_absent_from_the_next_snapshot(tmp_path):
    clock = ManualClock()
    state = ProducerState(tmp_path)
    for pid in range(100):
        state.update(header(pid, 0, clock.now_ms() + pid, pid))
    clock.advance(DAY + 49)
    assert state.remove_expired(clock.now_ms(), DAY) == 50
    path = state.write_snapshot()
    assert path == snapshot_path(tmp_path, 100)
    assert sorted(p["id"] for p in json.loads(path.read_text())["producers"]) == list(range(50, 100))
    reloaded = ProducerState(tmp_path)
    assert reloaded._read_snapshot(100)
    assert sorted(reloaded.producers) == list(range(50, 100))


def test_an_expired_producer_is_unknown_and_any_sequence_is_accepted(tmp_path):
    """Kafka 4.x (KIP-360): no UNKNOWN_PRODUCER_ID; a producer without state appends at any
    sequence, so a producer idle past expiry continues where it was."""
    clock = ManualClock()
    state = ProducerState(tmp_path)
    state.update(header(7, 0, clock.now_ms(), 0))
    state.update(header(7, 1, clock.now_ms(), 1))
    clock.advance(DAY)
    state.remove_expired(clock.now_ms(), DAY)
    assert 7 not in state.producers
    assert state.check(header(7, 2, clock.now_ms(), 2)) is None    # next in sequence
    assert state.check(header(7, 40, clock.now_ms(), 2)) is None   # or a gap: still accepted
    state.update(header(7, 40, clock.now_ms(), 2))
    assert state.producers[7].last_seq == 40


def test_timestamps_are_the_batches_as_in_kafka(tmp_path):
    """A CreateTime batch stamped in the past expires at the next check."""
    clock = ManualClock()
    state = ProducerState(tmp_path)
    state.update(header(1, 0, clock.now_ms() - DAY, 0))
    state.update(header(2, 0, -1, 1))   # no timestamp at all
    assert state.remove_expired(clock.now_ms(), DAY) == 2


def test_a_restart_does_not_bring_back_a_producer_that_expired_meanwhile(tmp_path):
    """As Kafka's snapshot load: the snapshot of a clean shutdown has the producer, but its last
    batch is older than producer.id.expiration.ms when the broker starts again."""
    env = Env(tmp_path / "d", broker={"producer.id.expiration.ms": "60000"})
    env.write((b"k", b"v"), producer=(7, 0, 0))
    env.write((b"k", b"w"), producer=(8, 0, 0))
    env.clock.advance(30_000)
    env.write((b"k", b"x"), producer=(8, 0, 1))
    env.close()
    env.clock.advance(30_000)
    env = Env(tmp_path / "d", broker={"producer.id.expiration.ms": "60000"}, clock=env.clock)
    assert set(env.partition.producers.producers) == {8}, env.partition.producers.producers
    assert env.clock.now_ms() - env.partition.producers.producers[8].last_timestamp == 30_000
    env.close()


def test_the_expiration_time_changes_live_as_in_kafka():
    """KIP-854: producer.id.expiration.ms is a cluster-wide dynamic setting; the interval is not."""
    assert "producer.id.expiration.ms" in dynamic_names()
    assert "producer.id.expiration.check.interval.ms" not in dynamic_names()
