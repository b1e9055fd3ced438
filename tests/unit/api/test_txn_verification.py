"""KIP-890 on the partition side, through the dispatcher with wire bytes: a producer's first
transactional batch in a partition is appended only once the transaction coordinator said the
partition is in its ongoing transaction (Produce v0-11), or added it there (Produce v12+,
transactions V2); a late write of an ended transaction never lands, so it cannot hang the
partition's last stable offset.  The VerificationGuard keeps a stale "yes" from letting a
batch in after an abort marker.

The broker is test_txn_apis's (a real LogManager, journal and coordinator on a ManualClock,
markers into the local partitions); the race tests put a verifier in front of the coordinator
whose answers the test releases.
"""

from __future__ import annotations

import asyncio

import pytest

from kavka.config import CLUSTER_DEFAULT
from kavka.log.errors import InvalidTxnState, OutOfOrderSequence
from kavka.log.producer_state import NO_GUARD
from kavka.protocol.errors import ErrorCode as E
from kavka.protocol.record_codec import encode_batch
from kavka.protocol.records import read_header
from kavka.txn.verifier import LocalTxnVerifier
from test_group_apis import req
import test_txn_apis
import test_txn_offset_commit_api
from test_txn_apis import MS, PRODUCE, run
from test_txn_offset_commit_api import fetched, txn_commit

NOT_ADDED = "Partition was not added to the transaction"
wire = test_txn_apis.wire   # the fixture: a broker with a coordinator


async def produce_to(wire, tid, pid: int, epoch: int, batches: dict, version: int = 9) -> dict:
    """``batches``: {partition of "t": (sequence, value)}; {partition: (error, message)}."""
    now = wire.context.clock.now_ms()
    data = tuple(req(PRODUCE, version, "PartitionProduceData", index=index, records=encode_batch(
        [(b"k", value, now, ())], producer_id=pid, producer_epoch=epoch, base_sequence=seq, transactional=True))
        for index, (seq, value) in batches.items())
    response = await wire.call(req(PRODUCE, version, "ProduceRequest", transactional_id=tid, acks=1,
                                   timeout=5000 * MS, topic_data=(req(
                                       PRODUCE, version, "TopicProduceData", name="t", partition_data=data),)))
    return {p.index: (p.error_code, p.error_message) for p in response.responses[0].partition_responses}


def partition(wire, index: int):
    return wire.context.logs.partition("t", index)


def end_offsets(wire) -> list[tuple[int, int]]:
    """(log end offset, last stable offset) of t-0 and t-1."""
    return [(partition(wire, i).log.log_end_offset, partition(wire, i).last_stable_offset) for i in (0, 1)]


async def open_on_t0(wire) -> int:
    """A producer of "tx" with t-0 added to its transaction: its producer id."""
    init = await wire.init("tx")
    await wire.add("tx", init.producer_id, 0, [("t", 0)])
    return init.producer_id


def abort_marker(wire, index: int, pid: int) -> None:
    """The abort marker of ``pid``'s epoch-0 transaction, as the coordinator writes it."""
    partition(wire, index).append_marker(pid, 0, False, 0, wire.context.clock.now_ms())


class HeldVerifier:
    """Asks the real coordinator, but hands each answer out only when the test releases it."""

    def __init__(self, runner) -> None:
        self.local = LocalTxnVerifier(runner)
        self.held: list[tuple[asyncio.Future, dict]] = []

    def verify(self, transactional_id, producer_id, producer_epoch, partitions, add):
        answer = self.local.verify(transactional_id, producer_id, producer_epoch, partitions, add)
        future = asyncio.get_running_loop().create_future()
        self.held.append((future, answer))
        return future

    async def wait_held(self, count: int) -> None:
        for _ in range(200):
            if len(self.held) >= count:
                return
            await asyncio.sleep(0)
        raise AssertionError(f"{len(self.held)} verifications asked, expected {count}")

    def release(self, index: int, override: dict | None = None) -> None:
        future, answer = self.held[index]
        future.set_result(override if override is not None else answer)


@pytest.fixture
def held(wire):
    verifier = HeldVerifier(wire.context.transactions)
    wire.context.txn_verifier = verifier
    return verifier


# -- part 1: the partition asks before a producer's first transactional batch -------------------

def test_a_late_write_after_an_abort_is_refused_and_the_lso_is_not_held(wire):
    async def scenario():
        init = await wire.init("tx")
        pid = init.producer_id
        await wire.add("tx", pid, 0, [("t", 0)])
        first = await produce_to(wire, "tx", pid, 0, {0: (0, b"in")})
        await wire.end("tx", pid, 0, commit=False)
        await wire.markers_written()
        late = await produce_to(wire, "tx", pid, 0, {0: (1, b"late"), 1: (0, b"never added")})
        return first, late
    first, late = run(scenario())
    assert first == {0: (E.none, None)}
    assert late == {0: (E.invalid_txn_state, NOT_ADDED), 1: (E.invalid_txn_state, NOT_ADDED)}
    assert end_offsets(wire) == [(2, 2), (0, 0)], "the record and its abort marker only; nothing is open"


def test_without_verification_the_same_late_write_hangs_the_partition(wire):
    """What the check prevents: the write opens a transaction the coordinator never ends."""
    wire.context.config.set_dynamic(CLUSTER_DEFAULT, {"transaction.partition.verification.enable": False})

    async def scenario():
        init = await wire.init("tx")
        await wire.end("tx", init.producer_id, 0, commit=False)   # nothing added: an empty abort
        return await produce_to(wire, "tx", init.producer_id, 0, {1: (0, b"never added")})
    assert run(scenario()) == {1: (E.none, None)}
    assert end_offsets(wire)[1] == (1, 0), "the last stable offset is stuck below the record"


@pytest.mark.parametrize("version, error", [(10, E.invalid_txn_state), (11, E.transaction_abortable)])
def test_a_partition_not_added_is_refused_as_the_clients_version_knows(wire, version, error):
    async def scenario():
        pid = await open_on_t0(wire)
        return await produce_to(wire, "tx", pid, 0, {0: (0, b"added"), 1: (0, b"not")}, version)
    answer = run(scenario())
    assert answer[0] == (E.none, None) and answer[1][0] == error
    assert end_offsets(wire) == [(1, 0), (0, 0)]


def test_a_producer_aborted_by_its_timeout_is_fenced_everywhere(wire):
    async def scenario():
        init = await wire.init("tx", timeout=1000 * MS)
        pid = init.producer_id
        await wire.add("tx", pid, 0, [("t", 0)])
        await produce_to(wire, "tx", pid, 0, {0: (0, b"before the timeout")})
        wire.context.clock.advance(1001)
        wire.context.transactions.run(lambda c: c.tick())
        await wire.markers_written()
        return await produce_to(wire, "tx", pid, 0, {0: (1, b"zombie"), 1: (0, b"zombie")})
    late = run(scenario())
    # t-0 holds the fencing abort marker (a newer epoch); for t-1 the coordinator says PRODUCER_FENCED,
    # which the partition answers as producers expect it there.
    assert {i: e for i, (e, _) in late.items()} == {0: E.invalid_producer_epoch, 1: E.invalid_producer_epoch}
    assert end_offsets(wire) == [(2, 2), (0, 0)]


def test_a_partition_whose_transaction_is_open_is_not_asked_again(wire):
    calls = []
    local = wire.context.txn_verifier

    class Counting:
        def verify(self, *args, **kwargs):
            calls.append(args[3])
            return local.verify(*args, **kwargs)
    wire.context.txn_verifier = Counting()

    async def scenario():
        init = await wire.init("tx")
        pid = init.producer_id
        await wire.add("tx", pid, 0, [("t", 0), ("t", 1)])
        first = await produce_to(wire, "tx", pid, 0, {0: (0, b"a"), 1: (0, b"b")})
        second = await produce_to(wire, "tx", pid, 0, {0: (1, b"c"), 1: (1, b"d")})
        return first, second
    first, second = run(scenario())
    assert first == second == {0: (E.none, None), 1: (E.none, None)}
    assert calls == [[("t", 0), ("t", 1)]]


def test_two_producers_in_one_request_are_refused(wire):
    async def scenario():
        a, b = await wire.init("a"), await wire.init("b")
        now = wire.context.clock.now_ms()
        data = tuple(req(PRODUCE, 9, "PartitionProduceData", index=i, records=encode_batch(
            [(b"k", b"v", now, ())], producer_id=pid, producer_epoch=0, base_sequence=0, transactional=True))
            for i, pid in enumerate((a.producer_id, b.producer_id)))
        response = await wire.call(req(PRODUCE, 9, "ProduceRequest", transactional_id="a", acks=1,
                                       timeout=5000 * MS, topic_data=(req(
                                           PRODUCE, 9, "TopicProduceData", name="t", partition_data=data),)))
        return [p.error_code for p in response.responses[0].partition_responses]
    assert run(scenario()) == [E.invalid_producer_id_mapping] * 2
    assert end_offsets(wire) == [(0, 0), (0, 0)]


# -- the guard: a stale answer cannot let a batch in ---------------------------------------------

def test_an_answer_that_arrives_after_the_abort_marker_is_refused(wire, held):
    async def scenario():
        pid = await open_on_t0(wire)
        write = asyncio.ensure_future(produce_to(wire, "tx", pid, 0, {0: (0, b"slow")}))
        await held.wait_held(1)             # the coordinator said yes; the answer is on its way
        abort_marker(wire, 0, pid)
        held.release(0)
        return await write
    assert run(scenario()) == {0: (E.invalid_txn_state, "Record was not part of an ongoing transaction")}
    assert end_offsets(wire)[0] == (1, 1), "the abort marker only"


def test_a_stale_answer_does_not_pass_for_a_newer_verification(wire, held):
    """The ABA case: verify, abort, a new transaction starts verifying, the old "yes" arrives."""
    async def scenario():
        pid = await open_on_t0(wire)
        old = asyncio.ensure_future(produce_to(wire, "tx", pid, 0, {0: (0, b"old")}))
        await held.wait_held(1)
        abort_marker(wire, 0, pid)
        new = asyncio.ensure_future(produce_to(wire, "tx", pid, 0, {0: (0, b"new")}))
        await held.wait_held(2)
        held.release(0, {("t", 0): E.none})
        held.release(1, {("t", 0): E.none})
        return await old, await new
    old, new = run(scenario())
    assert old == {0: (E.invalid_txn_state, "Record was not part of an ongoing transaction")}
    assert new == {0: (E.none, None)}
    assert partition(wire, 0).log.log_end_offset == 2   # the marker, then the new batch


def test_a_later_batch_waits_for_the_lowest_sequence_being_verified(wire, held):
    async def scenario():
        pid = await open_on_t0(wire)
        first = asyncio.ensure_future(produce_to(wire, "tx", pid, 0, {0: (0, b"first")}))
        second = asyncio.ensure_future(produce_to(wire, "tx", pid, 0, {0: (1, b"second")}))
        await held.wait_held(2)
        held.release(1)
        later = await second
        held.release(0)
        return later, await first
    later, first = run(scenario())
    assert later[0][0] == E.out_of_order_sequence_number and first == {0: (E.none, None)}


# -- part 2: transactions V2 (Produce v12+) ----------------------------------------------------

def test_produce_v12_adds_the_partition_and_every_end_bumps_the_epoch(wire):
    async def scenario():
        init = await wire.init("tx")
        pid = init.producer_id
        first = await produce_to(wire, "tx", pid, 0, {0: (0, b"a"), 1: (0, b"b")}, version=12)
        during = (await wire.describe("tx"))["tx"]
        ended = await wire.end("tx", pid, 0, commit=True, version=5)
        await wire.markers_written()
        zombie = await produce_to(wire, "tx", pid, 0, {0: (1, b"late"), 1: (1, b"late")}, version=12)
        fresh = await produce_to(wire, "tx", pid, ended.producer_epoch, {1: (0, b"next")}, version=12)
        return first, during, ended, zombie, fresh
    first, during, ended, zombie, fresh = run(scenario())
    assert first == {0: (E.none, None), 1: (E.none, None)}
    assert during.transaction_state == "Ongoing"
    assert sorted((t.topic, p) for t in during.topics for p in t.partitions) == [("t", 0), ("t", 1)]
    assert (ended.error_code, ended.producer_epoch) == (E.none, 1)
    assert {i: e for i, (e, _) in zombie.items()} == {0: E.invalid_producer_epoch, 1: E.invalid_producer_epoch}
    assert fresh == {1: (E.none, None)}
    assert end_offsets(wire) == [(2, 2), (3, 2)], "t-1: commit marker, then the next transaction's batch"


def test_produce_v12_while_the_commit_is_being_written_is_concurrent_transactions(wire):
    async def scenario():
        init = await wire.init("tx")
        pid = init.producer_id
        await produce_to(wire, "tx", pid, 0, {0: (0, b"a")}, version=12)
        wire.context.transactions.run(lambda c: c.end_txn("tx", pid, 0, True, client_txn_version=2))
        return await produce_to(wire, "tx", pid, 1, {1: (0, b"next")}, version=12)  # markers not written yet
    assert run(scenario()) == {1: (E.concurrent_transactions, None)}


def test_the_next_transaction_waits_for_the_marker_of_the_last_one(wire):
    """V2: the client has its new epoch before the commit marker reaches the partition; its next
    transaction's batch must not join the open one there (the marker would commit it)."""
    async def scenario():
        init = await wire.init("tx")
        pid = init.producer_id
        await produce_to(wire, "tx", pid, 0, {0: (0, b"first")}, version=12)
        wire.context.transactions.run(lambda c: c.end_txn("tx", pid, 0, True, client_txn_version=2))
        early = await produce_to(wire, "tx", pid, 1, {0: (0, b"next")}, version=12)  # marker not written yet
        await wire.markers_written()
        retried = await produce_to(wire, "tx", pid, 1, {0: (0, b"next")}, version=12)
        return early, retried
    early, retried = run(scenario())
    assert early == {0: (E.concurrent_transactions, None)} and retried == {0: (E.none, None)}
    assert end_offsets(wire)[0] == (3, 2), "first, its commit marker, then the next transaction's batch"


def test_produce_v12_adds_the_partition_even_with_verification_off(wire):
    """The V2 client sends no AddPartitionsToTxn: without the add its partition would get no marker."""
    wire.context.config.set_dynamic(CLUSTER_DEFAULT, {"transaction.partition.verification.enable": False})

    async def scenario():
        init = await wire.init("tx")
        written = await produce_to(wire, "tx", init.producer_id, 0, {0: (0, b"a")}, version=12)
        await wire.end("tx", init.producer_id, 0, commit=True, version=5)
        await wire.markers_written()
        return written
    assert run(scenario()) == {0: (E.none, None)}
    assert end_offsets(wire)[0] == (2, 2), "the record and its commit marker"


def test_produce_v11_does_not_add_the_partition(wire):
    async def scenario():
        init = await wire.init("tx")
        return await produce_to(wire, "tx", init.producer_id, 0, {0: (0, b"a")}, version=11)
    assert run(scenario())[0][0] == E.transaction_abortable
    assert end_offsets(wire)[0] == (0, 0)


# -- the translation of the coordinator's errors ------------------------------------------------

@pytest.mark.parametrize("coordinator, version, answer, retriable", [
    (E.not_coordinator, 9, (E.not_enough_replicas, "Underlying error: NOT_COORDINATOR"), True),
    (E.coordinator_load_in_progress, 12, (E.not_enough_replicas, "Underlying error: COORDINATOR_LOAD_IN_PROGRESS"),
     True),
    (E.concurrent_transactions, 11, (E.not_enough_replicas, "Underlying error: CONCURRENT_TRANSACTIONS"), True),
    (E.concurrent_transactions, 12, (E.concurrent_transactions, None), True),
    (E.producer_fenced, 9, (E.invalid_producer_epoch, None), False),
    (E.invalid_producer_id_mapping, 9, (E.invalid_producer_id_mapping, None), False),
])
def test_coordinator_errors_reach_the_client_as_kafka_translates_them(wire, held, coordinator, version, answer,
                                                                      retriable):
    async def scenario():
        pid = await open_on_t0(wire)
        write = asyncio.ensure_future(produce_to(wire, "tx", pid, 0, {0: (0, b"v")}, version))
        await held.wait_held(1)
        held.release(0, {("t", 0): coordinator})
        return await write
    error, message = run(scenario())[0]
    assert error == answer[0]
    assert message == answer[1] or message.endswith(answer[1])
    assert end_offsets(wire)[0] == (0, 0)
    # A retry keeps the lowest sequence blocked (Kafka); a refusal for good frees the entry at once.
    assert len(partition(wire, 0).producers.verifying) == (1 if retriable else 0)


@pytest.mark.parametrize("version", [9, 12])
def test_an_id_this_coordinator_does_not_serve_is_retried(wire, version):
    """The local coordinator does not serve the id (a cluster's moved partition): a question
    and an add alike are retriable, nothing is written unverified (the cluster's verifier
    asks the id's own coordinator, kavka.cluster.txn_verifier)."""
    async def scenario():
        init = await wire.init("tx")
        runner = wire.context.transactions
        runner.unload_partition(runner.coordinator.journal.partition_for("tx"))
        return await produce_to(wire, "tx", init.producer_id, 0, {0: (0, b"v")}, version)
    assert run(scenario()) == {0: (E.not_enough_replicas, "Unable to verify the partition has been added to the "
                                                          "transaction. Underlying error: NOT_COORDINATOR")}
    assert end_offsets(wire)[0] == (0, 0)


# -- the verification state is bounded -------------------------------------------------------------

def test_verification_entries_go_with_the_append_the_marker_or_expiry(wire):
    producers = partition(wire, 0).producers
    now = wire.context.clock.now_ms()
    guards = [partition(wire, 0).start_verification(pid, 0, 0, now) for pid in range(1000, 1100)]
    assert len(producers.verifying) == 100 and len(set(map(id, guards))) == 100
    assert partition(wire, 0).start_verification(1000, 0, 0, now) is guards[0], "reused while pending"

    batch = bytearray(encode_batch([(b"k", b"v", now, ())], producer_id=1000, producer_epoch=0, base_sequence=0,
                                   transactional=True))
    with pytest.raises(InvalidTxnState):
        producers.check_verified(read_header(batch), NO_GUARD)
    partition(wire, 0).append_records(batch, 9, now, guard=guards[0])
    assert 1000 not in producers.verifying and partition(wire, 0).start_verification(1000, 1, 0, now) is None
    partition(wire, 0).append_marker(1001, 0, False, 0, now)
    assert 1001 not in producers.verifying

    expiration = wire.context.config.get("producer.id.expiration.ms")
    producers.remove_expired(now + expiration - 1, expiration)
    assert len(producers.verifying) == 98
    producers.remove_expired(now + expiration, expiration)
    assert producers.verifying == {}


def test_a_higher_sequence_than_the_one_verifying_is_out_of_order(wire):
    t0 = partition(wire, 0)
    now = wire.context.clock.now_ms()
    t0.start_verification(7, 3, 0, now)
    t0.start_verification(7, 0, 0, now)   # a retry of a lower sequence lowers the bar
    batch = encode_batch([(b"k", b"v", now, ())], producer_id=7, producer_epoch=0, base_sequence=3,
                         transactional=True)
    with pytest.raises(OutOfOrderSequence):
        t0.producers.check(read_header(batch))
    t0.start_verification(7, 5, 1, now)   # a new epoch starts over
    assert t0.producers.verifying[7].lowest_seq == 5


# -- TxnOffsetCommit: v5 adds the group's partition (transactions V2) ------------------------

link = test_txn_offset_commit_api.link   # the fixture: a broker with both coordinators


def test_txn_offset_commit_v5_adds_the_groups_partition(link):
    async def scenario():
        pid = (await link.init("tx")).producer_id
        answer = await txn_commit(link, pid, [("t", 0, 11)], version=5)   # no AddOffsetsToTxn before it
        ended = await link.end("tx", pid, 0, True, version=5)
        await link.markers_written()
        return answer, ended, await fetched(link, stable=True)
    answer, ended, after = run(scenario())
    assert answer == {("t", 0): E.none}
    assert (ended.error_code, ended.producer_epoch) == (E.none, 1)
    assert after[0] == (11, E.none)


@pytest.mark.parametrize("version, error", [(3, E.invalid_txn_state), (4, E.transaction_abortable)])
def test_txn_offset_commit_before_v5_only_verifies(link, version, error):
    async def scenario():
        pid = (await link.init("tx")).producer_id
        return await txn_commit(link, pid, [("t", 0, 11)], version=version), await fetched(link, stable=True)
    answer, after = run(scenario())
    assert answer == {("t", 0): error} and after[0] == (-1, E.none)
