"""ProducerState: duplicates, sequence gaps, epochs, wrap-around, replay and snapshots."""

from __future__ import annotations

import json
import random

import pytest

from kavka.log.errors import InvalidProducerEpoch, OutOfOrderSequence
from kavka.log.producer_state import MAX_SEQUENCE, ProducerState, snapshot_path
from kavka.protocol.records import ATTR_TIMESTAMP_TYPE, BatchHeader

TS = 1_700_000_000_000


def header(pid: int, epoch: int, seq: int, count: int = 1, offset: int = 0,
           ts: int = TS, attributes: int = 0) -> BatchHeader:
    return BatchHeader(
        base_offset=offset, batch_length=100, partition_leader_epoch=0, magic=2, crc=0,
        attributes=attributes, last_offset_delta=count - 1, base_timestamp=ts, max_timestamp=ts,
        producer_id=pid, producer_epoch=epoch, base_sequence=seq, records_count=count)


class FakeLog:
    """What ProducerState.load needs from a PartitionLog."""

    def __init__(self) -> None:
        self.headers: list[BatchHeader] = []
        self.log_start_offset = 0

    @property
    def log_end_offset(self) -> int:
        return self.headers[-1].next_offset if self.headers else 0

    @property
    def first_stored_offset(self) -> int:
        return self.log_start_offset  # deleting records deletes the batches here

    def append(self, state: ProducerState, pid: int, epoch: int, seq: int, count: int = 1, **kw):
        """The produce path: check, and when not a duplicate, write and update."""
        incoming = header(pid, epoch, seq, count, **kw)
        duplicate = state.check(incoming)
        if duplicate is not None:
            return duplicate
        written = BatchHeader(**{**_fields(incoming), "base_offset": self.log_end_offset})
        self.headers.append(written)
        state.update(written)
        return None

    def iter_batch_headers(self, from_offset: int = 0):
        for h in self.headers:
            if h.last_offset >= from_offset:
                yield h.base_offset, h

    def iter_replay(self, from_offset: int = 0):
        """PartitionLog.iter_replay of a log without control batches."""
        for _base, h in self.iter_batch_headers(from_offset):
            yield h, None


def _fields(h: BatchHeader) -> dict:
    return {name: getattr(h, name) for name in BatchHeader.__dataclass_fields__}


@pytest.fixture
def state(tmp_path):
    return ProducerState(tmp_path)


@pytest.fixture
def log():
    return FakeLog()


def test_batches_without_producer_id_are_never_checked(state):
    assert state.check(header(-1, -1, -1)) is None


def test_unknown_producer_is_accepted_at_any_sequence(state):
    assert state.check(header(7, 0, 12345)) is None


def test_in_order_batches_are_accepted(state, log):
    for seq in (0, 3, 4):
        assert log.append(state, 7, 0, seq, count=3 if seq == 0 else 1) is None
    assert state.producers[7].last_seq == 4


@pytest.mark.parametrize("which", range(5))
def test_each_of_the_last_five_batches_is_a_duplicate(state, log, which):
    for seq in range(0, 12, 2):  # six batches of two records
        log.append(state, 7, 0, seq, count=2)
    kept = log.headers[1:]  # the first of six fell out of the window
    target = kept[which]
    duplicate = state.check(header(7, 0, target.base_sequence, 2))
    assert (duplicate.first_offset, duplicate.last_offset) == (target.base_offset, target.last_offset)
    assert duplicate.log_append_time_ms == -1


def test_a_batch_older_than_the_window_is_out_of_order(state, log):
    for seq in range(6):
        log.append(state, 7, 0, seq)
    with pytest.raises(OutOfOrderSequence):
        state.check(header(7, 0, 0))


def test_duplicate_check_changes_nothing(state, log):
    log.append(state, 7, 0, 0)
    before = state.producers[7].batches.copy()
    assert log.append(state, 7, 0, 0) is not None
    assert state.producers[7].batches == before and log.log_end_offset == 1


def test_same_first_sequence_with_other_length_is_not_a_duplicate(state, log):
    log.append(state, 7, 0, 0, count=2)
    with pytest.raises(OutOfOrderSequence):
        state.check(header(7, 0, 0, count=3))


def test_duplicate_of_a_log_append_time_batch_reports_the_append_time(state, log):
    log.append(state, 7, 0, 0, ts=TS + 5, attributes=ATTR_TIMESTAMP_TYPE)
    assert state.check(header(7, 0, 0)).log_append_time_ms == TS + 5


def test_a_gap_is_out_of_order(state, log):
    log.append(state, 7, 0, 0)
    with pytest.raises(OutOfOrderSequence, match="expected 1"):
        state.check(header(7, 0, 2))


def test_a_stale_epoch_is_fenced(state, log):
    log.append(state, 7, 3, 0)
    with pytest.raises(InvalidProducerEpoch):
        state.check(header(7, 2, 1))
    with pytest.raises(InvalidProducerEpoch):
        state.check(header(7, 2, 0))  # even a retry of an old-epoch batch


def test_an_epoch_bump_must_restart_at_sequence_zero(state, log):
    log.append(state, 7, 0, 0)
    log.append(state, 7, 0, 1)
    with pytest.raises(OutOfOrderSequence, match="sequence 0"):
        state.check(header(7, 1, 2))
    assert log.append(state, 7, 1, 0) is None
    entry = state.producers[7]
    assert entry.epoch == 1 and len(entry.batches) == 1
    with pytest.raises(InvalidProducerEpoch):
        state.check(header(7, 0, 2))


def test_sequence_wraps_after_max_int(state, log):
    log.append(state, 7, 0, MAX_SEQUENCE - 1, count=2)
    assert state.producers[7].last_seq == MAX_SEQUENCE
    assert log.append(state, 7, 0, 0) is None
    with pytest.raises(OutOfOrderSequence):
        state.check(header(7, 0, MAX_SEQUENCE))


def test_a_batch_spanning_the_wrap_ends_at_a_small_sequence(state, log):
    log.append(state, 7, 0, MAX_SEQUENCE - 1, count=4)  # sequences MAX-1, MAX, 0, 1
    assert state.producers[7].last_seq == 1
    assert state.check(header(7, 0, MAX_SEQUENCE - 1, count=4)) is not None
    assert log.append(state, 7, 0, 2) is None


def test_producers_are_independent(state, log):
    log.append(state, 7, 0, 0)
    log.append(state, 8, 0, 40)
    assert log.append(state, 7, 0, 1) is None
    assert log.append(state, 8, 0, 41) is None


def _random_traffic(state: ProducerState, log: FakeLog, rng: random.Random, steps: int) -> None:
    """Idempotent producers with retries, gaps, zombies and epoch bumps, as a client mix."""
    clients = {pid: [0, 0] for pid in (1, 2, 3)}  # pid -> [epoch, next seq]
    for _ in range(steps):
        pid = rng.choice(list(clients))
        epoch, seq = clients[pid]
        roll = rng.random()
        try:
            if roll < 0.1:
                clients[pid] = [epoch + 1, 0]
                log.append(state, pid, epoch + 1, 0)
                clients[pid][1] = 1
            elif roll < 0.2 and seq > 0:
                log.append(state, pid, epoch, max(0, seq - rng.randint(1, 3)))  # retry
            elif roll < 0.25:
                log.append(state, pid, max(0, epoch - 1), seq)  # zombie
            else:
                count = rng.randint(1, 4)
                log.append(state, pid, epoch, seq, count=count)
                clients[pid][1] = (seq + count) % 2**31
        except (OutOfOrderSequence, InvalidProducerEpoch):
            pass
        if rng.random() < 0.1:
            log.headers.append(header(-1, -1, -1, offset=log.log_end_offset))  # a plain batch
            state.update(log.headers[-1])


def test_replaying_the_log_rebuilds_the_live_state(tmp_path):
    for seed in range(20):
        live, log = ProducerState(tmp_path / f"live{seed}"), FakeLog()
        _random_traffic(live, log, random.Random(seed), 200)
        rebuilt = ProducerState(tmp_path / f"rebuilt{seed}")
        (tmp_path / f"rebuilt{seed}").mkdir()
        rebuilt.load(log)
        assert rebuilt.producers == live.producers
        assert rebuilt.end_offset == live.end_offset == log.log_end_offset


def test_snapshot_plus_replay_equals_live_state(state, log, tmp_path):
    rng = random.Random(1)
    _random_traffic(state, log, rng, 100)
    path = state.write_snapshot()
    assert path == snapshot_path(tmp_path, log.log_end_offset) and path.exists()
    _random_traffic(state, log, rng, 100)
    rebuilt = ProducerState(tmp_path)
    log.iter_batch_headers = _counting(log.iter_batch_headers, seen := [])
    rebuilt.load(log)
    assert rebuilt.producers == state.producers
    assert seen == [int(path.stem)], "replay starts at the snapshot, not at offset 0"


def _counting(fn, seen):
    def wrapper(from_offset=0):
        seen.append(from_offset)
        return fn(from_offset)
    return wrapper


def test_snapshot_file_is_json_with_the_documented_fields(state, log, tmp_path):
    log.append(state, 7, 2, 5, count=3)
    body = json.loads(state.write_snapshot().read_text())
    assert body == {"format": 2, "offset": 3, "producers": [
        {"id": 7, "epoch": 2, "batches": [[5, 7, 0, 2, TS, False]],
         "coordinator_epoch": -1, "txn_first_offset": -1, "last_timestamp": TS}]}


def test_a_format_1_snapshot_still_loads(state, log, tmp_path):
    log.append(state, 7, 2, 5, count=3)
    snapshot_path(tmp_path, 3).write_text(json.dumps({"format": 1, "offset": 3, "producers": [
        {"id": 7, "epoch": 2, "batches": [[5, 7, 0, 2, TS, False]]}]}))
    rebuilt = ProducerState(tmp_path)
    rebuilt.load(log)
    assert rebuilt.producers == state.producers
    assert rebuilt.producers[7].last_timestamp == TS


def test_snapshots_above_the_log_end_are_deleted_on_load(state, log, tmp_path):
    for seq in range(4):
        log.append(state, 7, 0, seq)
    state.write_snapshot()
    del log.headers[2:]  # truncation below the snapshot
    rebuilt = ProducerState(tmp_path)
    rebuilt.load(log)
    assert rebuilt.snapshot_offsets() == []
    assert rebuilt.producers[7].last_seq == 1
    assert rebuilt.check(header(7, 0, 2)) is None


def test_an_unreadable_snapshot_falls_back_to_an_older_one(state, log, tmp_path):
    log.append(state, 7, 0, 0)
    state.write_snapshot()
    log.append(state, 7, 0, 1)
    state.write_snapshot().write_bytes(b'{"format": 1, "offs')
    rebuilt = ProducerState(tmp_path)
    rebuilt.load(log)
    assert rebuilt.producers == state.producers
    assert rebuilt.snapshot_offsets() == [1]


def test_only_the_two_newest_snapshots_are_kept(state, log):
    for seq in range(4):
        log.append(state, 7, 0, seq)
        state.write_snapshot()
    assert state.snapshot_offsets() == [3, 4]


def test_replay_starts_at_the_log_start_when_segments_were_deleted(state, log, tmp_path):
    for seq in range(4):
        log.append(state, 7, 0, seq)
    log.log_start_offset = 2
    rebuilt = ProducerState(tmp_path)
    rebuilt.load(log)
    assert [b.first_offset for b in rebuilt.producers[7].batches] == [2, 3]
