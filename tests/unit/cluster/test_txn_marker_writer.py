"""ClusterMarkerWriter (cluster/txn_markers.py): a job's partitions grouped by leader, one
WriteTxnMarkers per remote leader over a kept connection, and each answer mapped to what the
runner retries or settles."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from kavka.cluster import txn_markers
from kavka.cluster.model import NO_LEADER
from kavka.protocol.errors import ErrorCode as E
from kavka.replication.peer import PeerError
from kavka.txn.coordinator import MarkerJob

ME = 1


class FakePeer:
    """Answers each partition with ``answers[(topic, index)]`` (NONE by default)."""

    def __init__(self, broker, answers, fail):
        self.broker, self.answers, self.fail, self.requests, self.closed = broker, answers, fail, [], False

    async def request(self, body, timeout):
        if self.fail.pop(self.broker, False):
            raise PeerError("connection reset")
        self.requests.append(body)
        (marker,) = body.markers
        return SimpleNamespace(markers=(SimpleNamespace(topics=tuple(
            SimpleNamespace(name=t.name, partitions=tuple(
                SimpleNamespace(partition_index=p, error_code=self.answers.get((t.name, p), E.none))
                for p in t.partition_indexes)) for t in marker.topics)),))

    def close(self):
        self.closed = True


@pytest.fixture
def net(monkeypatch):
    state = SimpleNamespace(peers=[], answers={}, fail={})

    async def connect(host, port, client_id, security=None):
        peer = FakePeer(port, state.answers, state.fail)
        state.peers.append(peer)
        return peer

    monkeypatch.setattr(txn_markers.Peer, "connect", staticmethod(connect))
    return state


def node(leaders):
    """A node whose view has ``leaders`` (tp -> leader id); broker b listens on port b."""
    metadata = SimpleNamespace(partition=lambda t, i: None if (t, i) not in leaders
                               else SimpleNamespace(leader=leaders[(t, i)]))
    return SimpleNamespace(broker_id=ME, metadata=metadata, address_of=lambda b: ("127.0.0.1", b),
                           peer_security=None)


def job(*tps):
    return MarkerJob("tx", 7, 2, True, 5, frozenset(tps))


def test_one_request_per_leader_and_the_connection_kept(net):
    writer = txn_markers.ClusterMarkerWriter(node({("a", 0): 2, ("a", 1): 2, ("b", 0): 3}), clock=None)
    net.answers[("a", 1)] = E.not_leader_or_follower

    async def scenario():
        first = await writer.write_markers(job(("a", 0), ("a", 1), ("b", 0)))
        second = await writer.write_markers(job(("a", 1)))
        return first, second

    first, second = asyncio.run(scenario())
    assert first == {("a", 0): E.none, ("a", 1): E.not_leader_or_follower, ("b", 0): E.none}
    assert second == {("a", 1): E.not_leader_or_follower}
    assert sorted(p.broker for p in net.peers) == [2, 3], "one connection per leader, kept between jobs"
    to_2 = next(p for p in net.peers if p.broker == 2).requests[0].markers[0]
    assert (to_2.producer_id, to_2.producer_epoch, to_2.transaction_result, to_2.coordinator_epoch) == (7, 2, True, 5)
    assert [(t.name, tuple(t.partition_indexes)) for t in to_2.topics] == [("a", (0, 1))]


def test_answers_mapped_for_the_runner(net):
    leaders = {("gone-here", 0): 2, ("leaderless", 0): NO_LEADER, ("fenced", 0): 2, ("down", 0): 3}
    writer = txn_markers.ClusterMarkerWriter(node(leaders), clock=None)
    net.answers[("gone-here", 0)] = E.unknown_topic_or_partition     # the leader's view lags
    net.answers[("fenced", 0)] = E.transaction_coordinator_fenced
    net.fail[3] = True

    async def scenario():
        answered = await writer.write_markers(job(*leaders, ("deleted", 0)))
        again = await writer.write_markers(job(("down", 0)))      # a new connection after the failure
        return answered, again

    answered, again = asyncio.run(scenario())
    assert answered == {("gone-here", 0): E.not_leader_or_follower, ("leaderless", 0): E.not_leader_or_follower,
                        ("fenced", 0): E.transaction_coordinator_fenced, ("down", 0): E.not_leader_or_follower,
                        ("deleted", 0): E.unknown_topic_or_partition}
    assert again == {("down", 0): E.none}
    assert [p.closed for p in net.peers if p.broker == 3] == [True, False]
