"""The transaction coordinator's decisions, request by request, on an in-memory journal."""

from __future__ import annotations

import pytest

from kavka.protocol.errors import ErrorCode as E
from kavka.txn.coordinator import InitReply, ProducerIdAndEpoch, TxnConfig
from kavka.txn.model import MAX_EPOCH, TxnState

from txn_helpers import MemoryJournal, make_coordinator, offsets_partition

TP = ("orders", 0)
TP2 = ("orders", 1)


@pytest.fixture
def txn():
    coordinator, journal, clock = make_coordinator()
    return coordinator


def start(coordinator, tid="t1", timeout_ms=60_000) -> InitReply:
    reply = coordinator.init_producer_id(tid, timeout_ms).reply
    assert reply.error == E.none
    return reply


def test_a_new_id_gets_a_producer_id_at_epoch_0_and_a_second_init_bumps_the_epoch(txn):
    first = start(txn)
    assert (first.producer_id, first.producer_epoch) == (1000, 0)
    again = start(txn)
    assert (again.producer_id, again.producer_epoch) == (1000, 1)
    assert txn.ids["t1"].state == TxnState.EMPTY


@pytest.mark.parametrize("timeout_ms", [0, -1, 900_001])
def test_a_timeout_outside_1_to_max_is_invalid(txn, timeout_ms):
    assert txn.init_producer_id("t1", timeout_ms).reply.error == E.invalid_transaction_timeout
    assert "t1" not in txn.ids


def test_an_empty_id_is_an_invalid_request(txn):
    assert txn.init_producer_id("", 1000).reply.error == E.invalid_request


def test_an_id_of_a_partition_not_led_here_is_not_coordinator():
    coordinator, journal, _ = make_coordinator()
    journal.led.discard(journal.partition_for("t1"))
    assert coordinator.init_producer_id("t1", 1000).reply.error == E.not_coordinator


def test_add_partitions_opens_the_transaction_and_repeats_are_free(txn):
    p = start(txn)
    out = txn.add_partitions("t1", p.producer_id, p.producer_epoch, [TP])
    assert out.reply == {TP: E.none} and out.records
    meta = txn.ids["t1"]
    assert meta.state == TxnState.ONGOING and meta.partitions == {TP}
    assert meta.start_ms == txn.now()
    repeat = txn.add_partitions("t1", p.producer_id, p.producer_epoch, [TP])
    assert repeat.reply == {TP: E.none} and not repeat.records
    txn.add_partitions("t1", p.producer_id, p.producer_epoch, [TP2])
    assert txn.ids["t1"].partitions == {TP, TP2}


def test_a_stale_epoch_is_fenced_and_an_unknown_producer_id_is_unmapped(txn):
    start(txn)
    current = start(txn)
    assert txn.add_partitions("t1", current.producer_id, 0, [TP]).reply == {TP: E.producer_fenced}
    assert txn.add_partitions("t1", 7, 1, [TP]).reply == {TP: E.invalid_producer_id_mapping}
    assert txn.add_partitions("nobody", 7, 1, [TP]).reply == {TP: E.invalid_producer_id_mapping}


def test_verify_only_says_which_partitions_are_in_the_ongoing_transaction_and_writes_nothing(txn):
    p = start(txn)
    assert txn.add_partitions("t1", p.producer_id, 0, [TP], verify_only=True).reply == {TP: E.transaction_abortable}
    txn.add_partitions("t1", p.producer_id, 0, [TP])
    out = txn.add_partitions("t1", p.producer_id, 0, [TP, TP2], verify_only=True)
    assert out.reply == {TP: E.none, TP2: E.transaction_abortable} and not out.records


def test_add_offsets_adds_the_groups_offsets_partition(txn):
    p = start(txn)
    assert txn.add_offsets("t1", p.producer_id, 0, "g").reply == E.none
    assert txn.ids["t1"].partitions == {offsets_partition("g")}


def test_commit_prepares_writes_markers_then_completes(txn):
    p = start(txn)
    txn.add_partitions("t1", p.producer_id, 0, [TP, TP2])
    out = txn.end_txn("t1", p.producer_id, 0, commit=True)
    assert out.reply == InitReply(E.none, p.producer_id, 0)
    assert txn.ids["t1"].state == TxnState.PREPARE_COMMIT
    [job] = out.markers
    assert job.commit and job.partitions == {TP, TP2} and job.producer_epoch == 0
    assert txn.end_txn("t1", p.producer_id, 0, commit=True).reply.error == E.concurrent_transactions
    assert txn.end_txn("t1", p.producer_id, 0, commit=False).reply.error == E.invalid_txn_state
    assert txn.add_partitions("t1", p.producer_id, 0, [TP]).reply == {TP: E.concurrent_transactions}
    assert txn.init_producer_id("t1", 1000).reply.error == E.concurrent_transactions
    txn.markers_written(job)
    meta = txn.ids["t1"]
    assert meta.state == TxnState.COMPLETE_COMMIT and meta.partitions == frozenset()
    assert txn.end_txn("t1", p.producer_id, 0, commit=True).reply.error == E.none
    assert txn.end_txn("t1", p.producer_id, 0, commit=False).reply.error == E.invalid_txn_state


def test_end_txn_without_a_transaction_is_an_invalid_state(txn):
    p = start(txn)
    assert txn.end_txn("t1", p.producer_id, 0, commit=True).reply.error == E.invalid_txn_state
    assert txn.end_txn("t1", p.producer_id, 0, commit=False).reply.error == E.invalid_txn_state


def test_a_stale_markers_job_is_dropped(txn):
    p = start(txn)
    txn.add_partitions("t1", p.producer_id, 0, [TP])
    [job] = txn.end_txn("t1", p.producer_id, 0, commit=False).markers
    txn.markers_written(job)
    assert txn.markers_written(job).records == []
    assert txn.ids["t1"].state == TxnState.COMPLETE_ABORT


def test_transactions_v2_bump_the_epoch_at_every_end_and_answer_a_retry_alike(txn):
    p = start(txn)
    txn.add_partitions("t1", p.producer_id, 0, [TP])
    out = txn.end_txn("t1", p.producer_id, 0, commit=True, client_txn_version=2)
    assert out.reply == InitReply(E.none, p.producer_id, 1)
    assert out.markers[0].producer_epoch == 1   # the markers fence the finished transaction's epoch
    txn.markers_written(out.markers[0])
    retry = txn.end_txn("t1", p.producer_id, 0, commit=True, client_txn_version=2)
    assert retry.reply == InitReply(E.none, p.producer_id, 1) and not retry.records
    assert txn.ids["t1"].client_txn_version == 2
    # an abort of nothing is allowed in V2 and bumps the epoch again
    empty = txn.end_txn("t1", p.producer_id, 1, commit=False, client_txn_version=2)
    assert empty.reply == InitReply(E.none, p.producer_id, 2)
    assert empty.markers[0].partitions == frozenset()


def test_init_during_a_transaction_aborts_it_fencing_the_old_producer(txn):
    p = start(txn)
    txn.add_partitions("t1", p.producer_id, 0, [TP])
    out = txn.init_producer_id("t1", 60_000)
    assert out.reply.error == E.concurrent_transactions
    [job] = out.markers
    assert not job.commit and job.producer_epoch == 1 and job.partitions == {TP}
    assert txn.end_txn("t1", p.producer_id, 0, commit=True).reply.error == E.producer_fenced
    txn.markers_written(job)
    again = txn.init_producer_id("t1", 60_000).reply
    assert (again.error, again.producer_epoch) == (E.none, 2)


def test_kip_360_a_known_epoch_may_reinitialise_and_a_retry_gets_the_same_answer(txn):
    p = start(txn)
    bumped = txn.init_producer_id("t1", 1000, ProducerIdAndEpoch(p.producer_id, 0)).reply
    assert (bumped.error, bumped.producer_epoch) == (E.none, 1)
    retry = txn.init_producer_id("t1", 1000, ProducerIdAndEpoch(p.producer_id, 0))
    assert retry.reply == bumped and not retry.records
    assert txn.init_producer_id("t1", 1000, ProducerIdAndEpoch(p.producer_id + 5, 0)).reply.error == E.producer_fenced


def test_an_exhausted_epoch_gets_a_new_producer_id():
    coordinator, journal, _ = make_coordinator()
    start(coordinator)
    meta = coordinator.ids["t1"]
    coordinator.replay("t1", meta.moved(TxnState.EMPTY, 0, producer_epoch=MAX_EPOCH))
    reply = start(coordinator)
    assert (reply.producer_id, reply.producer_epoch) == (1001, 0)
    assert coordinator.ids["t1"].previous_producer_id == 1000


def test_an_exhausted_epoch_in_v2_hands_over_a_new_id_when_the_transaction_completes():
    coordinator, _, _ = make_coordinator()
    p = start(coordinator)
    coordinator.add_partitions("t1", p.producer_id, 0, [TP])
    coordinator.replay("t1", coordinator.ids["t1"].moved(TxnState.ONGOING, 0, producer_epoch=MAX_EPOCH))
    out = coordinator.end_txn("t1", p.producer_id, MAX_EPOCH, commit=True, client_txn_version=2)
    assert coordinator.ids["t1"].next_producer_id == 1001
    coordinator.markers_written(out.markers[0])
    meta = coordinator.ids["t1"]
    assert (meta.producer_id, meta.producer_epoch, meta.previous_producer_id) == (1001, 0, 1000)
    retry = coordinator.end_txn("t1", p.producer_id, MAX_EPOCH, commit=True, client_txn_version=2)
    assert retry.reply == InitReply(E.none, 1001, 0)


def test_a_transaction_past_its_timeout_is_aborted_with_a_bumped_epoch():
    coordinator, _, clock = make_coordinator()
    p = start(coordinator, timeout_ms=5000)
    coordinator.add_partitions("t1", p.producer_id, 0, [TP])
    assert coordinator.next_deadline() == coordinator.now() + 5000
    clock.advance(4999)
    assert coordinator.tick().markers == []
    clock.advance(1)
    [job] = coordinator.tick().markers
    assert not job.commit and job.producer_epoch == 1
    assert coordinator.ids["t1"].state == TxnState.PREPARE_ABORT
    assert coordinator.end_txn("t1", p.producer_id, 0, commit=True).reply.error == E.producer_fenced


def test_an_idle_id_expires_into_a_tombstone():
    config = TxnConfig(id_expiration_ms=10_000, expiration_check_interval_ms=1000)
    coordinator, journal, clock = make_coordinator(config=config)
    start(coordinator)
    clock.advance(9_500)
    coordinator.tick()
    assert "t1" in coordinator.ids
    clock.advance(1_000)
    out = coordinator.tick()
    assert out.records == [("t1", None)] and "t1" not in coordinator.ids
    assert list(journal.read_partition(journal.partition_for("t1")))[-1] == ("t1", None)


def test_a_failed_append_changes_nothing_and_tells_the_client_to_retry():
    coordinator, journal, _ = make_coordinator()
    p = start(coordinator)
    journal.failing = True
    out = coordinator.add_partitions("t1", p.producer_id, 0, [TP])
    assert out.reply == {TP: E.not_coordinator} and out.markers == []
    assert coordinator.ids["t1"].state == TxnState.EMPTY


def test_a_failed_timeout_abort_waits_for_the_check_interval_before_retrying():
    coordinator, journal, clock = make_coordinator(config=TxnConfig(abort_check_interval_ms=10_000))
    p = start(coordinator, timeout_ms=1000)
    coordinator.add_partitions("t1", p.producer_id, 0, [TP])
    clock.advance(1000)
    journal.failing = True
    assert coordinator.tick().markers == []
    assert coordinator.next_deadline() == coordinator.now() + 10_000


def test_loading_a_partition_resends_markers_of_transactions_in_preparation():
    coordinator, journal, _ = make_coordinator()
    p = start(coordinator)
    coordinator.add_partitions("t1", p.producer_id, 0, [TP])
    coordinator.end_txn("t1", p.producer_id, 0, commit=True)
    journal.epochs[journal.partition_for("t1")] = 3
    successor, _, _ = make_coordinator(journal=journal, loaded=False)
    out = successor.load_partition(journal.partition_for("t1"))
    [job] = out.markers
    assert job.commit and job.partitions == {TP} and job.coordinator_epoch == 3
    assert successor.ids == coordinator.ids


def test_unloading_forgets_the_partitions_ids_and_refuses_them(txn):
    start(txn)
    partition = txn.journal.partition_for("t1")
    txn.unload_partition(partition)
    assert "t1" not in txn.ids
    assert txn.describe("t1") == (E.not_coordinator, None)


def test_describe_and_list_filter_by_state_producer_and_duration():
    coordinator, _, clock = make_coordinator()
    a = start(coordinator, "a")
    start(coordinator, "b")
    coordinator.add_partitions("a", a.producer_id, 0, [TP])
    clock.advance(2000)
    assert coordinator.describe("a")[1].state == TxnState.ONGOING
    assert coordinator.describe("zz") == (E.transactional_id_not_found, None)
    names = lambda found: [m.transactional_id for m in found[0]]  # noqa: E731
    assert names(coordinator.list()) == ["a", "b"]
    assert names(coordinator.list(states=["Ongoing"])) == ["a"]
    assert names(coordinator.list(producer_ids=[a.producer_id])) == ["a"]
    assert names(coordinator.list(min_duration_ms=2000)) == ["a"]
    assert names(coordinator.list(min_duration_ms=2001)) == []
    assert coordinator.list(states=["Ongoing", "Sleeping"])[1] == ["Sleeping"]


def test_an_operator_abort_fences_an_ongoing_transaction(txn):
    p = start(txn)
    assert txn.abort("t1").reply == E.invalid_txn_state
    txn.add_partitions("t1", p.producer_id, 0, [TP])
    out = txn.abort("t1")
    assert out.reply == E.none and out.markers[0].producer_epoch == 1
    assert txn.abort("nobody").reply == E.transactional_id_not_found


def test_the_journal_is_what_live_state_is_rebuilt_from():
    journal = MemoryJournal()
    coordinator, _, _ = make_coordinator(journal=journal)
    p = start(coordinator)
    coordinator.add_partitions("t1", p.producer_id, 0, [TP])
    rebuilt, _, _ = make_coordinator(journal=journal)
    assert rebuilt.ids == coordinator.ids


def test_the_earliest_timeout_is_found_among_many_idle_ids_without_a_scan_of_them_all():
    # next_deadline runs after every coordinator request (each Produce's verification too);
    # ids stay for transactional.id.expiration.ms (7 days) after their last use, so a scan of
    # every id made each request cost ~1.4 ms at 10,000 ids.
    coordinator, _, clock = make_coordinator()
    for i in range(20_000):
        start(coordinator, f"idle-{i}")
    late = start(coordinator, "late", timeout_ms=9000)
    coordinator.add_partitions("late", late.producer_id, 0, [TP])
    clock.advance(1000)
    early = start(coordinator, "early", timeout_ms=2000)
    coordinator.add_partitions("early", early.producer_id, 0, [TP])
    coordinator.add_partitions("early", early.producer_id, 0, [TP2])   # same transaction, same deadline
    assert coordinator.next_deadline() == coordinator.now() + 2000
    ids = coordinator.ids

    class Unscannable(dict):   # the ids, which next_deadline must not walk
        def _scan(self, *args):
            raise AssertionError("next_deadline looked at every transactional id")
        values = items = keys = __iter__ = _scan

    coordinator.ids = Unscannable(ids)
    assert coordinator.next_deadline() == coordinator.now() + 2000
    coordinator.ids = ids
    coordinator.end_txn("early", early.producer_id, 0, commit=True)
    assert coordinator.next_deadline() == coordinator.now() + 8000      # "late" is next
    coordinator.end_txn("late", late.producer_id, 0, commit=False)
    assert coordinator.next_deadline() == coordinator._next_expiration_check   # nothing open
