"""kavka.cluster.txn_verifier against a fake coordinator broker: what goes over the wire
(AddPartitionsToTxn v5, batched per broker, de-duplicated), how answers and failures map,
and that every wait is bounded."""

from __future__ import annotations

import asyncio

import pytest

from kavka.cluster.txn_verifier import ClusterTxnVerifier
from kavka.metadata.model import BrokerEndpoint
from kavka.protocol.builders import make
from kavka.protocol.errors import ErrorCode as E
from kavka.replication.peer import PeerError

ME, OTHER, THIRD = 1, 2, 3


class FakePeer:
    """A coordinator broker's connection: records requests, answers when the test says."""

    def __init__(self, broker: "FakeBroker") -> None:
        self.broker = broker
        self.closed = False

    async def request(self, obj, timeout):
        self.broker.requests.append(obj)
        answer = asyncio.get_running_loop().create_future()
        self.broker.waiting.append((obj, answer))
        result = await answer
        if isinstance(result, Exception):
            raise result
        return result

    def close(self) -> None:
        self.closed = True


class FakeBroker:
    def __init__(self) -> None:
        self.requests: list = []
        self.waiting: list[tuple[object, asyncio.Future]] = []
        self.peers: list[FakePeer] = []
        self.refuse_connect = False

    async def connect(self, host: str, port: int) -> FakePeer:
        if self.refuse_connect:
            raise PeerError(f"cannot connect to {host}:{port}")
        peer = FakePeer(self)
        self.peers.append(peer)
        return peer

    async def held(self, count: int) -> None:
        for _ in range(200):
            if len(self.waiting) >= count:
                return
            await asyncio.sleep(0)
        raise AssertionError(f"{len(self.waiting)} requests sent, expected {count}")

    def answer(self, index: int, errors=None, top=E.none, missing: frozenset = frozenset()) -> None:
        """Answer request ``index``: each partition ``errors.get(tp, NONE)``; ids in ``missing`` left out."""
        request, future = self.waiting[index]
        future.set_result(response(request, errors or {}, top, missing))


def response(request, errors: dict, top: E, missing: frozenset):
    from kio.schema.add_partitions_to_txn.v5 import response as r
    return make(r.AddPartitionsToTxnResponse, error_code=top, results_by_transaction=tuple(
        make(r.AddPartitionsToTxnResult, transactional_id=t.transactional_id, topic_results=tuple(
            make(r.AddPartitionsToTxnTopicResult, name=topic.name, results_by_partition=tuple(
                make(r.AddPartitionsToTxnPartitionResult, partition_index=p,
                     partition_error_code=errors.get((topic.name, p), E.none))
                for p in topic.partitions))
            for topic in t.topics))
        for t in request.transactions if t.transactional_id not in missing))


def content(request) -> dict:
    """{id: (producer id, epoch, verify_only, sorted partitions)} of one request."""
    return {t.transactional_id: (t.producer_id, t.producer_epoch, t.verify_only,
                                 sorted((topic.name, p) for topic in t.topics for p in topic.partitions))
            for t in request.transactions}


class LocalAnswers:
    def __init__(self) -> None:
        self.asked: list = []

    def verify(self, transactional_id, producer_id, producer_epoch, partitions, add):
        self.asked.append((transactional_id, list(partitions), add))
        return dict.fromkeys(partitions, E.none)


def coordinators(tid: str) -> BrokerEndpoint | None:
    """"mine-*" ids are coordinated here, "none-*" by nobody, the others by broker OTHER."""
    if tid.startswith("none"):
        return None
    return BrokerEndpoint(ME, "me", 1) if tid.startswith("mine") else BrokerEndpoint(OTHER, "other", 2)


def make_verifier(broker: FakeBroker, local=None, **kwargs) -> ClusterTxnVerifier:
    return ClusterTxnVerifier(ME, coordinators, lambda: local, broker.connect, **kwargs)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


async def ask(verifier, tid, partitions, pid=7, epoch=0, add=False):
    answer = verifier.verify(tid, pid, epoch, partitions, add)
    return answer if isinstance(answer, dict) else await answer


def test_a_check_becomes_one_request_with_the_broker_form():
    broker = FakeBroker()

    async def scenario():
        verifier = make_verifier(broker)
        check = asyncio.ensure_future(ask(verifier, "t1", [("a", 0), ("a", 2), ("b", 1)], pid=7, epoch=3))
        await broker.held(1)
        broker.answer(0, {("a", 2): E.transaction_abortable})
        return await check
    assert run(scenario()) == {("a", 0): E.none, ("a", 2): E.transaction_abortable, ("b", 1): E.none}
    (request,) = broker.requests
    assert int(request.__api_key__) == 24 and int(request.__version__) == 5
    assert content(request) == {"t1": (7, 3, True, [("a", 0), ("a", 2), ("b", 1)])}


def test_an_implicit_add_is_sent_with_verify_only_false():
    broker = FakeBroker()

    async def scenario():
        verifier = make_verifier(broker)
        check = asyncio.ensure_future(ask(verifier, "t1", [("a", 0)], add=True))
        await broker.held(1)
        broker.answer(0)
        return await check
    assert run(scenario()) == {("a", 0): E.none}
    assert content(broker.requests[0])["t1"][2] is False


def test_checks_arriving_during_a_request_share_the_next_one():
    broker = FakeBroker()

    async def scenario():
        verifier = make_verifier(broker)
        first = asyncio.ensure_future(ask(verifier, "t1", [("a", 0)]))
        await broker.held(1)
        later = [asyncio.ensure_future(ask(verifier, tid, [("a", i)], pid=10 + i))
                 for i, tid in enumerate(["t2", "t3", "t4"])]
        await asyncio.sleep(0)
        assert len(broker.requests) == 1, "one request in flight per coordinator broker"
        broker.answer(0)
        await broker.held(2)
        broker.answer(1, {("a", 1): E.producer_fenced})
        return await first, await asyncio.gather(*later)
    first, later = run(scenario())
    assert first == {("a", 0): E.none}
    assert later == [{("a", 0): E.none}, {("a", 1): E.producer_fenced}, {("a", 2): E.none}]
    assert len(broker.requests) == 2
    assert content(broker.requests[1]) == {"t2": (10, 0, True, [("a", 0)]), "t3": (11, 0, True, [("a", 1)]),
                                           "t4": (12, 0, True, [("a", 2)])}
    assert len(broker.peers) == 1, "the connection is kept between requests"


def test_the_same_partition_asked_twice_while_waiting_is_asked_once():
    broker = FakeBroker()

    async def scenario():
        verifier = make_verifier(broker)
        blocker = asyncio.ensure_future(ask(verifier, "t0", [("x", 0)]))
        await broker.held(1)
        one = asyncio.ensure_future(ask(verifier, "t1", [("a", 0)]))
        two = asyncio.ensure_future(ask(verifier, "t1", [("a", 0), ("a", 1)]))
        await asyncio.sleep(0)
        broker.answer(0)
        await broker.held(2)
        broker.answer(1, {("a", 0): E.transaction_abortable})
        return await blocker, await one, await two
    _, one, two = run(scenario())
    assert one == {("a", 0): E.transaction_abortable}
    assert two == {("a", 0): E.transaction_abortable, ("a", 1): E.none}
    assert content(broker.requests[1]) == {"t1": (7, 0, True, [("a", 0), ("a", 1)])}


def test_a_check_does_not_join_an_answer_already_on_its_way():
    """Asked after the request left, its guard is newer than that question: it is asked again."""
    broker = FakeBroker()

    async def scenario():
        verifier = make_verifier(broker)
        first = asyncio.ensure_future(ask(verifier, "t1", [("a", 0)]))
        await broker.held(1)
        again = asyncio.ensure_future(ask(verifier, "t1", [("a", 0)]))
        await asyncio.sleep(0)
        broker.answer(0)
        await broker.held(2)
        broker.answer(1, {("a", 0): E.transaction_abortable})
        return await first, await again
    assert run(scenario()) == ({("a", 0): E.none}, {("a", 0): E.transaction_abortable})


def test_another_epoch_of_the_same_id_displaces_the_older_as_kafka():
    broker = FakeBroker()

    async def scenario():
        verifier = make_verifier(broker)
        blocker = asyncio.ensure_future(ask(verifier, "t0", [("x", 0)]))
        await broker.held(1)
        old = asyncio.ensure_future(ask(verifier, "t1", [("a", 0)], epoch=1))
        await asyncio.sleep(0)
        new = asyncio.ensure_future(ask(verifier, "t1", [("a", 1)], epoch=2))
        await asyncio.sleep(0)
        older = await ask(verifier, "t1", [("a", 2)], epoch=0)
        same_epoch_add = asyncio.ensure_future(ask(verifier, "t1", [("a", 3)], epoch=2, add=True))
        await asyncio.sleep(0)
        broker.answer(0)
        await broker.held(2)
        broker.answer(1)
        return await blocker, await old, await new, older, await same_epoch_add
    _, old, new, older, same_epoch_add = run(scenario())
    assert old == {("a", 0): E.invalid_producer_epoch}
    assert older == {("a", 2): E.invalid_producer_epoch}
    assert new == {("a", 1): E.network_exception}, "an equal epoch gives way retriably"
    assert same_epoch_add == {("a", 3): E.none}
    assert content(broker.requests[1]) == {"t1": (7, 2, False, [("a", 3)])}


@pytest.mark.parametrize("top, partition_error, expected", [
    (E.cluster_authorization_failed, E.none, E.invalid_txn_state),
    (E.coordinator_not_available, E.none, E.coordinator_not_available),
    (E.none, E.not_coordinator, E.not_coordinator),
    (E.none, E.concurrent_transactions, E.concurrent_transactions),
])
def test_answers_map_as_kafka(top, partition_error, expected):
    broker = FakeBroker()

    async def scenario():
        verifier = make_verifier(broker)
        check = asyncio.ensure_future(ask(verifier, "t1", [("a", 0)]))
        await broker.held(1)
        broker.answer(0, {("a", 0): partition_error}, top=top)
        return await check
    assert run(scenario()) == {("a", 0): expected}


def test_an_id_left_out_of_the_answer_is_a_network_error():
    broker = FakeBroker()

    async def scenario():
        verifier = make_verifier(broker)
        check = asyncio.ensure_future(ask(verifier, "t1", [("a", 0)]))
        await broker.held(1)
        broker.answer(0, missing=frozenset({"t1"}))
        return await check
    assert run(scenario()) == {("a", 0): E.network_exception}


def test_no_coordinator_and_a_local_coordinator_need_no_request():
    broker = FakeBroker()
    local = LocalAnswers()

    async def scenario():
        verifier = make_verifier(broker, local)
        nobody = await ask(verifier, "none-1", [("a", 0)])
        mine = await ask(verifier, "mine-1", [("a", 0)], add=True)
        without_coordinator = await ask(make_verifier(broker, None), "mine-1", [("a", 0)])
        return nobody, mine, without_coordinator
    nobody, mine, without_coordinator = run(scenario())
    assert nobody == {("a", 0): E.coordinator_not_available}
    assert mine == {("a", 0): E.none} and local.asked == [("mine-1", [("a", 0)], True)]
    assert without_coordinator == {("a", 0): E.coordinator_not_available}
    assert broker.requests == []


def test_a_coordinator_that_does_not_answer_in_time_is_a_network_error_and_the_next_check_reconnects():
    broker = FakeBroker()

    async def scenario():
        verifier = make_verifier(broker, timeout_s=0.05)
        timed_out = await ask(verifier, "t1", [("a", 0)])
        next_check = asyncio.ensure_future(ask(verifier, "t1", [("a", 0)]))
        await broker.held(2)
        broker.answer(1)
        return timed_out, await next_check
    timed_out, next_check = run(scenario())
    assert timed_out == {("a", 0): E.network_exception}
    assert next_check == {("a", 0): E.none}
    assert [p.closed for p in broker.peers] == [True, False]


def test_an_unreachable_coordinator_or_a_broken_connection_is_a_network_error():
    broker = FakeBroker()

    async def scenario():
        verifier = make_verifier(broker)
        broker.refuse_connect = True
        unreachable = await ask(verifier, "t1", [("a", 0)])
        broker.refuse_connect = False
        check = asyncio.ensure_future(ask(verifier, "t1", [("a", 0)]))
        await broker.held(1)
        broker.waiting[0][1].set_result(PeerError("connection closed"))
        return unreachable, await check
    assert run(scenario()) == ({("a", 0): E.network_exception}, {("a", 0): E.network_exception})
    assert broker.peers[0].closed


def test_waiting_checks_are_bounded_per_broker():
    broker = FakeBroker()

    async def scenario():
        verifier = make_verifier(broker, max_pending=2)
        blocker = asyncio.ensure_future(ask(verifier, "t0", [("x", 0)]))
        await broker.held(1)
        queued = asyncio.ensure_future(ask(verifier, "t1", [("a", 0), ("a", 1)]))
        await asyncio.sleep(0)
        over = await ask(verifier, "t2", [("a", 2)])
        broker.answer(0)
        await broker.held(2)
        broker.answer(1)
        return await blocker, await queued, over
    _, queued, over = run(scenario())
    assert queued == {("a", 0): E.none, ("a", 1): E.none}
    assert over == {("a", 2): E.network_exception}


def test_close_answers_every_waiting_check():
    broker = FakeBroker()

    async def scenario():
        verifier = make_verifier(broker)
        in_flight = asyncio.ensure_future(ask(verifier, "t0", [("x", 0)]))
        await broker.held(1)
        queued = asyncio.ensure_future(ask(verifier, "t1", [("a", 0)]))
        await asyncio.sleep(0)
        verifier.close()
        return await in_flight, await queued
    assert run(scenario()) == ({("x", 0): E.network_exception}, {("a", 0): E.network_exception})
    assert broker.peers[0].closed


def test_after_the_coordinator_moved_the_next_check_asks_its_new_broker():
    """NOT_COORDINATOR from the old broker reaches the producer (retriable); its retry finds the
    coordinator again in the view, and the question goes to the new broker."""
    old, new = FakeBroker(), FakeBroker()
    where = {"t1": BrokerEndpoint(OTHER, "other", 2)}

    async def connect(host, port):
        return await (old if port == 2 else new).connect(host, port)

    async def scenario():
        verifier = ClusterTxnVerifier(ME, where.get, lambda: None, connect)
        first = asyncio.ensure_future(ask(verifier, "t1", [("a", 0)]))
        await old.held(1)
        where["t1"] = BrokerEndpoint(THIRD, "third", 3)
        old.answer(0, {("a", 0): E.not_coordinator})
        retry = asyncio.ensure_future(ask(verifier, "t1", [("a", 0)]))
        await new.held(1)
        new.answer(0)
        return await first, await retry
    assert run(scenario()) == ({("a", 0): E.not_coordinator}, {("a", 0): E.none})
    assert len(old.requests) == 1 and len(new.requests) == 1
