"""ProducerState and transactions: open transactions, markers, Kafka's refusals, snapshots."""

from __future__ import annotations

import pytest

from kavka.log.errors import InvalidProducerEpoch, InvalidTxnState, OutOfOrderSequence, TransactionCoordinatorFenced
from kavka.log.producer_state import CompletedTxn, ProducerState
from kavka.protocol.control_records import EndTxnMarker
from kavka.protocol.records import ATTR_CONTROL, ATTR_TRANSACTIONAL, BatchHeader

TS = 1_700_000_000_000
TXN = ATTR_TRANSACTIONAL


def header(pid: int, epoch: int, seq: int, offset: int, count: int = 1, attributes: int = TXN,
           ts: int = TS) -> BatchHeader:
    return BatchHeader(
        base_offset=offset, batch_length=100, partition_leader_epoch=0, magic=2, crc=0,
        attributes=attributes, last_offset_delta=count - 1, base_timestamp=ts, max_timestamp=ts,
        producer_id=pid, producer_epoch=epoch, base_sequence=seq, records_count=count)


def marker_header(pid: int, epoch: int, offset: int, ts: int = TS) -> BatchHeader:
    return header(pid, epoch, -1, offset, attributes=TXN | ATTR_CONTROL, ts=ts)


class Log:
    """Assigns offsets and runs the produce path's check + update, as Partition does."""

    def __init__(self, state: ProducerState) -> None:
        self.state, self.leo = state, 0

    def data(self, pid: int, epoch: int, seq: int, count: int = 1, transactional: bool = True, ts: int = TS):
        incoming = header(pid, epoch, seq, 0, count, TXN if transactional else 0, ts)
        assert self.state.check(incoming) is None
        written = header(pid, epoch, seq, self.leo, count, incoming.attributes, ts)
        self.leo = written.next_offset
        self.state.update(written)
        return written.base_offset

    def marker(self, pid: int, epoch: int, commit: bool, coordinator_epoch: int = 0,
               version: int = 0, ts: int = TS) -> CompletedTxn | None:
        marker = EndTxnMarker(commit, coordinator_epoch)
        self.state.check_marker(pid, epoch, marker, version)
        written = marker_header(pid, epoch, self.leo, ts)
        self.leo += 1
        return self.state.update(written, marker)


@pytest.fixture
def state(tmp_path) -> ProducerState:
    return ProducerState(tmp_path)


@pytest.fixture
def log(state) -> Log:
    return Log(state)


def test_the_first_transactional_batch_opens_the_transaction(state, log):
    log.data(1, 0, 0, count=3, transactional=False)
    assert state.first_unstable_offset(high_watermark=100) is None
    first = log.data(1, 0, 3)
    log.data(2, 0, 0)
    log.data(1, 0, 4, count=2)
    assert state.producers[1].txn_first_offset == first == 3
    assert state.ongoing == {1: 3, 2: 4}
    assert state.first_unstable_offset(100) == 3


def test_a_marker_completes_the_transaction_and_moves_the_first_unstable_offset(state, log):
    log.data(1, 0, 0)
    log.data(2, 0, 0, count=2)
    completed = log.marker(1, 0, commit=False)
    assert completed == CompletedTxn(1, 0, 3, aborted=True)
    assert state.last_stable_offset_after(completed) == 1  # producer 2's transaction is still open
    # the marker at 3 is not below the high watermark yet: a follower could still lose it
    assert state.first_unstable_offset(high_watermark=3) == 0
    assert state.first_unstable_offset(high_watermark=4) == 1
    completed = log.marker(2, 0, commit=True)
    assert completed == CompletedTxn(2, 1, 4, aborted=False)
    assert state.last_stable_offset_after(completed) == 5
    assert state.first_unstable_offset(5) is None
    assert not state.producers[2].in_transaction


def test_a_marker_without_data_here_completes_nothing(state, log):
    assert log.marker(9, 0, commit=True, coordinator_epoch=4) is None
    assert state.producers[9].coordinator_epoch == 4
    assert state.first_unstable_offset(10) is None


def test_a_non_transactional_batch_inside_a_transaction_is_invalid_txn_state(state, log):
    log.data(1, 0, 0)
    with pytest.raises(InvalidTxnState):
        state.check(header(1, 0, 1, 0, attributes=0))
    log.marker(1, 0, commit=True)
    log.data(1, 0, 1, transactional=False)  # after the marker it is fine


def test_a_transactional_batch_with_a_stale_epoch_is_invalid_producer_epoch(state, log):
    log.data(1, 3, 0)
    with pytest.raises(InvalidProducerEpoch):
        state.check(header(1, 2, 1, 0))


def test_a_marker_with_a_lower_epoch_is_refused(state, log):
    log.data(1, 3, 0)
    with pytest.raises(InvalidProducerEpoch):
        log.marker(1, 2, commit=False)
    assert state.producers[1].in_transaction


def test_transaction_version_2_needs_a_bumped_epoch_but_accepts_a_retry(state, log):
    log.data(1, 3, 0)
    with pytest.raises(InvalidProducerEpoch):
        log.marker(1, 3, commit=True, version=2)  # KIP-890: the coordinator bumps before the marker
    assert log.marker(1, 4, commit=True, version=2) == CompletedTxn(1, 0, 1, aborted=False)
    assert log.marker(1, 4, commit=True, version=2) is None  # a retry of the written marker


def test_a_marker_from_an_older_coordinator_is_fenced(state, log):
    log.data(1, 0, 0)
    log.marker(1, 0, commit=True, coordinator_epoch=5)
    log.data(1, 0, 1)
    with pytest.raises(TransactionCoordinatorFenced):
        log.marker(1, 0, commit=True, coordinator_epoch=4)


def test_an_epoch_bump_by_marker_restarts_sequences_at_zero(state, log):
    log.data(1, 0, 0, count=5)
    log.marker(1, 1, commit=False)  # the coordinator fenced the old epoch
    with pytest.raises(OutOfOrderSequence):
        state.check(header(1, 1, 5, 0))
    log.data(1, 1, 0)


def test_an_open_transaction_survives_a_snapshot_and_a_replay(state, log, tmp_path):
    log.data(1, 0, 0, transactional=False)
    log.data(1, 0, 1, count=2)
    log.marker(2, 0, commit=True, coordinator_epoch=7)
    state.write_snapshot()
    rebuilt = ProducerState(tmp_path)

    class View:
        log_start_offset, first_stored_offset, log_end_offset = 0, 0, log.leo

        def iter_replay(self, from_offset):
            return iter(())

    rebuilt.load(View())
    assert rebuilt.producers == state.producers
    assert rebuilt.ongoing == {1: 1}
    assert rebuilt.first_unstable_offset(10) == 1
    assert rebuilt.producers[2].coordinator_epoch == 7
    with pytest.raises(InvalidTxnState):
        rebuilt.check(header(1, 0, 3, 0, attributes=0))


def test_expiry_keeps_a_producer_whose_transaction_is_open(state, log):
    log.data(1, 0, 0, ts=TS)
    log.data(2, 0, 0, transactional=False, ts=TS)
    assert state.remove_expired(TS + 10_000, expiration_ms=1_000) == 1
    assert list(state.producers) == [1]
