"""The transaction APIs through the dispatcher, with wire bytes: InitProducerId with a
transactional id, AddPartitionsToTxn (client and batch forms), AddOffsetsToTxn, EndTxn,
DescribeTransactions, ListTransactions, FindCoordinator for a transactional id and Produce
of transactional batches.

A real LogManager, ``__transaction_state`` journal and coordinator on a ManualClock, with
markers written into the local partitions as the broker does; every exchange of a test
runs on one event loop, so the marker tasks the coordinator starts run between requests
(the wire is test_group_apis's).
"""

from __future__ import annotations

import asyncio
import datetime

import pytest

import kavka.api  # noqa: F401  (registers every handler)
from kavka.api.context import BrokerContext, RandomProducerIds
from kavka.clock import ManualClock
from kavka.config import BrokerConfig
from kavka.internal_topics import OFFSETS_TOPIC, coordinator_partition
from kavka.log.log_manager import LogManager
from kavka.metadata.features import TRANSACTION_VERSION, FeatureUpdate, UpgradeType
from kavka.protocol.errors import ErrorCode as E
from kavka.protocol.record_codec import encode_batch
from kavka.txn.coordinator import TransactionCoordinator, TxnConfig
from kavka.txn.local_markers import local_marker_writer
from kavka.txn.runner import TxnRunner
from kavka.txn.state_topic import TransactionStateTopic
from test_group_apis import Wire, req

PRODUCE, FIND, INIT, ADD_PARTITIONS, ADD_OFFSETS, END, DESCRIBE, LIST = 0, 10, 22, 24, 25, 26, 65, 66
MS = datetime.timedelta(milliseconds=1)
TIMEOUT = 60_000 * MS


class TxnWire(Wire):
    async def markers_written(self) -> None:
        for _ in range(100):
            if self.context.transactions.pending_markers == 0:
                return
            await asyncio.sleep(0.01)
        raise AssertionError("markers still pending")

    # -- requests ----------------------------------------------------------------------------

    async def init(self, tid: str, version: int = 5, timeout=TIMEOUT, pid: int = -1, epoch: int = -1):
        return await self.call(req(INIT, version, "InitProducerIdRequest", transactional_id=tid,
                                   transaction_timeout=timeout, producer_id=pid, producer_epoch=epoch))

    async def add(self, tid: str, pid: int, epoch: int, partitions, version: int = 3) -> dict:
        topics = _topics(ADD_PARTITIONS, version, partitions)
        response = await self.call(req(ADD_PARTITIONS, version, "AddPartitionsToTxnRequest",
                                       v3_and_below_transactional_id=tid, v3_and_below_producer_id=pid,
                                       v3_and_below_producer_epoch=epoch, v3_and_below_topics=topics))
        return _errors(response.results_by_topic_v3_and_below)

    async def end(self, tid: str, pid: int, epoch: int, commit: bool, version: int = 3):
        return await self.call(req(END, version, "EndTxnRequest", transactional_id=tid, producer_id=pid,
                                   producer_epoch=epoch, committed=commit))

    async def describe(self, *tids: str):
        response = await self.call(req(DESCRIBE, 0, "DescribeTransactionsRequest", transactional_ids=tids))
        return {s.transactional_id: s for s in response.transaction_states}

    async def list(self, version: int = 1, states=(), pids=(), duration: int = -1):
        return await self.call(req(LIST, version, "ListTransactionsRequest", state_filters=tuple(states),
                                   producer_id_filters=tuple(pids), duration_filter=duration))

    async def produce(self, tid: str | None, pid: int, epoch: int, sequence: int, value: bytes,
                      partition: int = 0) -> int:
        now = self.context.clock.now_ms()
        batch = encode_batch([(b"k", value, now, ())], producer_id=pid, producer_epoch=epoch,
                             base_sequence=sequence, transactional=True)
        response = await self.call(req(PRODUCE, 9, "ProduceRequest", transactional_id=tid, acks=1,
                                       timeout=5000 * MS, topic_data=(req(
                                           PRODUCE, 9, "TopicProduceData", name="t", partition_data=(req(
                                               PRODUCE, 9, "PartitionProduceData", index=partition,
                                               records=batch),)),)))
        return response.responses[0].partition_responses[0].error_code


def _topics(key: int, version: int, partitions):
    by_topic: dict[str, list[int]] = {}
    for topic, index in partitions:
        by_topic.setdefault(topic, []).append(index)
    return tuple(req(key, version, "AddPartitionsToTxnTopic", name=t, partitions=tuple(p))
                 for t, p in by_topic.items())


def _errors(topic_results) -> dict:
    return {(t.name, p.partition_index): p.partition_error_code for t in topic_results for p in t.results_by_partition}


def _context(tmp_path, transactions: bool = True) -> tuple[BrokerContext, LogManager]:
    config = BrokerConfig.from_strings({"transaction.max.timeout.ms": "120000"})
    clock = ManualClock()
    logs = LogManager(tmp_path, config, clock)
    logs.load()
    logs.create_topic("t", 2)
    runner = None
    if transactions:
        journal = TransactionStateTopic(logs, 3, 1 << 20, clock)
        coordinator = TransactionCoordinator(
            TxnConfig.from_broker(config), clock, journal, RandomProducerIds(),
            lambda group: (OFFSETS_TOPIC, coordinator_partition(group, 50)))
        runner = TxnRunner(coordinator, local_marker_writer(logs, clock))
        for index in range(journal.partitions):
            runner.load_partition(index)
    context = BrokerContext(logs=logs, config=config, clock=clock, node_id=0, host="127.0.0.1", port=9092,
                            producer_ids=RandomProducerIds(), transactions=runner)
    return context, logs


@pytest.fixture
def wire(tmp_path):
    context, logs = _context(tmp_path)
    yield TxnWire(context)
    context.transactions.close()
    logs.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


# -- InitProducerId ------------------------------------------------------------------------

def test_init_producer_id_bumps_the_epoch_of_a_known_id(wire):
    async def scenario():
        first = await wire.init("tx")
        second = await wire.init("tx")
        other = await wire.init("other")
        return first, second, other
    first, second, other = run(scenario())
    assert (first.error_code, first.producer_epoch) == (E.none, 0)
    assert (second.error_code, second.producer_id, second.producer_epoch) == (E.none, first.producer_id, 1)
    assert other.producer_id not in (-1, first.producer_id)


@pytest.mark.parametrize("version, expected", [(3, E.invalid_producer_epoch), (4, E.producer_fenced)])
def test_init_producer_id_with_an_unknown_epoch_is_fenced(wire, version, expected):
    async def scenario():
        first = await wire.init("tx")
        await wire.init("tx")
        await wire.init("tx")   # epoch 2: epoch 0 is neither the current nor the last one
        return await wire.init("tx", version, pid=first.producer_id, epoch=0)
    answer = run(scenario())
    assert (answer.error_code, answer.producer_id, answer.producer_epoch) == (expected, -1, -1)


def test_init_producer_id_refuses_a_timeout_above_the_maximum(wire):
    answer = run(wire.init("tx", timeout=120_001 * MS))
    assert answer.error_code == E.invalid_transaction_timeout


def test_without_a_coordinator_transactional_ids_are_refused(tmp_path):
    context, logs = _context(tmp_path, transactions=False)
    w = TxnWire(context)

    async def scenario():
        init = await w.init("tx")
        plain = await w.call(req(INIT, 5, "InitProducerIdRequest", transactional_id=None,
                                 transaction_timeout=TIMEOUT, producer_id=-1, producer_epoch=-1))
        add = await w.add("tx", 1, 0, [("t", 0)])
        end = await w.end("tx", 1, 0, True)
        listed = await w.list()
        produced = await w.produce("tx", 1, 0, 0, b"v")
        return init, plain, add, end, listed, produced
    try:
        init, plain, add, end, listed, produced = run(scenario())
    finally:
        logs.close()
    assert init.error_code == E.transactional_id_authorization_failed
    assert (plain.error_code, plain.producer_epoch) == (E.none, 0)
    assert add == {("t", 0): E.coordinator_not_available}
    assert end.error_code == listed.error_code == E.coordinator_not_available
    assert produced == E.transactional_id_authorization_failed


# -- a whole transaction -------------------------------------------------------------------

def test_a_committed_transaction_writes_its_markers_and_completes(wire):
    partition = wire.context.logs.partition("t", 0)

    async def scenario():
        init = await wire.init("tx")
        pid = init.producer_id
        added = await wire.add("tx", pid, 0, [("t", 0), ("t", 1)])
        produced = await wire.produce("tx", pid, 0, 0, b"v")
        ongoing = (await wire.describe("tx"))["tx"]
        lso_open = partition.last_stable_offset
        ended = await wire.end("tx", pid, 0, True)
        await wire.markers_written()
        done = (await wire.describe("tx"))["tx"]
        return added, produced, ongoing, lso_open, ended, done
    added, produced, ongoing, lso_open, ended, done = run(scenario())
    assert added == {("t", 0): E.none, ("t", 1): E.none}
    assert produced == E.none
    assert (ongoing.transaction_state, [(d.topic, d.partitions) for d in ongoing.topics]) == (
        "Ongoing", [("t", (0, 1))])
    assert ongoing.transaction_timeout == TIMEOUT
    assert ended.error_code == E.none
    assert (done.transaction_state, done.topics) == ("CompleteCommit", ())
    # t-0 holds the record and its commit marker; t-1 only a marker; the LSO passed both.
    ends = [wire.context.logs.partition("t", i).log.log_end_offset for i in range(2)]
    assert ends == [2, 1]
    assert lso_open == 0
    assert partition.last_stable_offset == 2


@pytest.mark.parametrize("version, fenced", [(1, E.invalid_producer_epoch), (2, E.producer_fenced)])
def test_add_partitions_and_end_txn_of_a_fenced_producer(wire, version, fenced):
    async def scenario():
        old = await wire.init("tx")
        await wire.init("tx")
        added = await wire.add("tx", old.producer_id, 0, [("t", 0)], version=version)
        ended = await wire.end("tx", old.producer_id, 0, True, version=version)
        return added, ended
    added, ended = run(scenario())
    assert added == {("t", 0): fenced}
    assert ended.error_code == fenced


def test_add_partitions_with_an_unknown_partition_attempts_none(wire):
    async def scenario():
        init = await wire.init("tx")
        added = await wire.add("tx", init.producer_id, 0, [("t", 0), ("t", 7), ("missing", 0)])
        return added, await wire.list(states=["Empty"])
    added, listed = run(scenario())
    assert added == {("t", 0): E.operation_not_attempted, ("t", 7): E.unknown_topic_or_partition,
                     ("missing", 0): E.unknown_topic_or_partition}
    assert [s.transactional_id for s in listed.transaction_states] == ["tx"]   # nothing was added


def test_batch_form_answers_each_transaction_and_verifies(wire):
    async def scenario():
        a = await wire.init("a")
        b = await wire.init("b")
        await wire.add("a", a.producer_id, 0, [("t", 0)])
        transactions = (
            req(ADD_PARTITIONS, 4, "AddPartitionsToTxnTransaction", transactional_id="a",
                producer_id=a.producer_id, producer_epoch=0, verify_only=True,
                topics=_topics(ADD_PARTITIONS, 4, [("t", 0), ("t", 1)])),
            req(ADD_PARTITIONS, 4, "AddPartitionsToTxnTransaction", transactional_id="b",
                producer_id=b.producer_id, producer_epoch=0, verify_only=False,
                topics=_topics(ADD_PARTITIONS, 4, [("t", 1)])),
            req(ADD_PARTITIONS, 4, "AddPartitionsToTxnTransaction", transactional_id="c",
                producer_id=b.producer_id, producer_epoch=0, verify_only=True,
                topics=_topics(ADD_PARTITIONS, 4, [("t", 1)])))
        response = await wire.call(req(ADD_PARTITIONS, 4, "AddPartitionsToTxnRequest", transactions=transactions))
        return response, await wire.describe("a", "b")
    response, described = run(scenario())
    assert response.error_code == E.none
    results = {r.transactional_id: _errors(r.topic_results) for r in response.results_by_transaction}
    assert results == {"a": {("t", 0): E.none, ("t", 1): E.transaction_abortable},
                       "b": {("t", 1): E.none},
                       "c": {("t", 1): E.invalid_producer_id_mapping}}
    assert [d.partitions for d in described["a"].topics] == [(0,)]   # verify_only changed nothing
    assert described["b"].transaction_state == "Ongoing"


def test_add_offsets_adds_the_groups_offsets_partition(wire):
    async def scenario():
        init = await wire.init("tx")
        answer = await wire.call(req(ADD_OFFSETS, 4, "AddOffsetsToTxnRequest", transactional_id="tx",
                                     producer_id=init.producer_id, producer_epoch=0, group_id="g"))
        stale = await wire.call(req(ADD_OFFSETS, 1, "AddOffsetsToTxnRequest", transactional_id="tx",
                                    producer_id=init.producer_id, producer_epoch=5, group_id="g"))
        return answer, stale, (await wire.describe("tx"))["tx"]
    answer, stale, described = run(scenario())
    assert answer.error_code == E.none
    assert stale.error_code == E.invalid_producer_epoch
    assert [(d.topic, d.partitions) for d in described.topics] == [
        (OFFSETS_TOPIC, (coordinator_partition("g", 50),))]


@pytest.mark.parametrize("txn_version, next_epoch", [(0, 0), (2, 1)])
def test_end_txn_v5_returns_the_producer_and_abort_hides_the_records(wire, txn_version, next_epoch):
    partition = wire.context.logs.partition("t", 0)

    async def scenario():
        await wire.context.admin.update_features(
            [FeatureUpdate(TRANSACTION_VERSION, txn_version, UpgradeType.SAFE_DOWNGRADE)], False)
        init = await wire.init("tx")
        pid = init.producer_id
        await wire.add("tx", pid, 0, [("t", 0)])
        await wire.produce("tx", pid, 0, 0, b"v")
        ended = await wire.end("tx", pid, 0, False, version=5)
        again = await wire.end("tx", pid, 0, True, version=5)   # the other decision after an abort
        await wire.markers_written()
        return ended, again, (await wire.describe("tx"))["tx"]
    ended, again, described = run(scenario())
    assert (ended.error_code, ended.producer_id, ended.producer_epoch) == (E.none, described.producer_id, next_epoch)
    assert again.error_code == E.invalid_txn_state
    assert described.transaction_state == "CompleteAbort"
    assert partition.last_stable_offset == partition.log.log_end_offset == 2
    assert [pid for pid, _first in partition.log.aborted_transactions(0, 2)] == [described.producer_id]


def test_describe_of_an_unknown_id(wire):
    described = run(wire.describe("nobody"))["nobody"]
    assert (described.error_code, described.transaction_state, described.producer_id) == (
        E.transactional_id_not_found, "", 0)


def test_list_transactions_filters(wire):
    async def scenario():
        a = await wire.init("a")
        await wire.init("b")
        await wire.add("a", a.producer_id, 0, [("t", 0)])
        wire.context.clock.advance(5_000)
        return a, {
            "all": await wire.list(),
            "ongoing": await wire.list(states=["Ongoing", "Bogus"]),
            "pid": await wire.list(pids=[a.producer_id]),
            "long": await wire.list(duration=5_000),
            "longer": await wire.list(duration=5_001),
            "v0": await wire.list(version=0, states=["Empty"]),
        }
    a, answers = run(scenario())
    names = {key: [s.transactional_id for s in answer.transaction_states] for key, answer in answers.items()}
    assert names == {"all": ["a", "b"], "ongoing": ["a"], "pid": ["a"], "long": ["a"], "longer": [], "v0": ["b"]}
    assert answers["ongoing"].unknown_state_filters == ("Bogus",)
    assert answers["pid"].transaction_states[0].producer_id == a.producer_id
    assert answers["ongoing"].transaction_states[0].transaction_state == "Ongoing"


def test_find_coordinator_answers_this_broker_for_a_transactional_id(wire):
    response = run(wire.call(req(FIND, 4, "FindCoordinatorRequest", key_type=1, coordinator_keys=("tx",))))
    (found,) = response.coordinators
    assert (found.key, found.error_code, found.node_id, found.port) == ("tx", E.none, 0, 9092)


def test_transaction_apis_are_advertised_at_kafka_4_ranges(wire):
    response = run(wire.call(req(18, 3, "ApiVersionsRequest", client_software_name="t",
                                 client_software_version="1")))
    ranges = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert {key: ranges[key] for key in (INIT, ADD_PARTITIONS, ADD_OFFSETS, END, DESCRIBE, LIST)} == {
        INIT: (0, 5), ADD_PARTITIONS: (0, 5), ADD_OFFSETS: (0, 4), END: (0, 5), DESCRIBE: (0, 0), LIST: (0, 1)}
