"""Guarded metadata writes: a stale or fenced controller, or a stale leader, cannot write."""

from __future__ import annotations

import uuid

import pytest
from cluster_helpers import broker, eventually, run, shutdown

from kavka.cluster.election import ControllerElection
from kavka.cluster.errors import (ConcurrentUpdate, ControllerFenced, NotLeader, SessionLost,
                                  StaleControllerEpoch)
from kavka.cluster.model import PartitionState, TopicAssignment
from kavka.cluster.state_store import ClusterStore


async def _controller(session, layout):
    election = ControllerElection(session.etcd, layout, session)
    claim, _ = await election.campaign()
    assert claim is not None
    return election, claim


def _topic(name="orders", partitions=2):
    replicas = {p: (1, 2, 3) for p in range(partitions)}
    return TopicAssignment(name, str(uuid.uuid4()), replicas)


def _state(leader=1, epoch=0, isr=(1, 2, 3)):
    return PartitionState(leader, epoch, tuple(isr), controller_epoch=0)


def test_create_topic_and_read_back(etcd, layout):
    async def main():
        a = await broker(etcd, layout, 1)
        _, claim = await _controller(a, layout)
        store = ClusterStore(a.etcd, layout)
        topic = _topic()
        await store.create_topic(claim, topic, {0: _state(1), 1: _state(2, isr=(2, 3, 1))})
        assert (await store.topic("orders")).value == topic
        assert list(await store.topics()) == ["orders"]
        parts = await store.partitions("orders")
        assert parts[0].value == PartitionState(1, 0, (1, 2, 3), controller_epoch=claim.epoch)
        assert parts[1].value.leader == 2
        with pytest.raises(ConcurrentUpdate):  # exists already
            await store.create_topic(claim, topic, {})
        await shutdown(a)
    run(main())


def test_partition_cas_on_mod_revision(etcd, layout):
    async def main():
        a = await broker(etcd, layout, 1)
        _, claim = await _controller(a, layout)
        store = ClusterStore(a.etcd, layout)
        await store.create_topic(claim, _topic(partitions=1), {0: _state()})
        current = await store.partition("orders", 0)
        rev = await store.write_partition(claim, "orders", 0, _state(2, 1, (2, 3)),
                                          current.mod_revision)
        assert rev > current.mod_revision
        with pytest.raises(ConcurrentUpdate) as info:  # wrote from a stale read
            await store.write_partition(claim, "orders", 0, _state(3, 1, (3,)),
                                        current.mod_revision)
        assert info.value.current.value.leader == 2
        assert info.value.current.mod_revision == rev
        await shutdown(a)
    run(main())


def test_stale_controller_write_rejected_after_failover(etcd, layout):
    async def main():
        a, b = await broker(etcd, layout, 1), await broker(etcd, layout, 2)
        _, old = await _controller(a, layout)
        store_a, store_b = ClusterStore(a.etcd, layout), ClusterStore(b.etcd, layout)
        await store_a.create_topic(old, _topic(partitions=1), {0: _state()})
        read = await store_a.partition("orders", 0)
        # a's lease goes (e.g. a long GC pause); b takes over with epoch + 1
        await b.etcd.revoke(a.lease_id)
        new_election = ControllerElection(b.etcd, layout, b)

        async def won():
            return (await new_election.campaign())[0]
        new = await eventually(won, 5, "b to win")
        assert new.epoch == old.epoch + 1
        with pytest.raises(StaleControllerEpoch) as info:
            await store_a.write_partition(old, "orders", 0, _state(3, 1, (3,)), read.mod_revision)
        assert (info.value.expected, info.value.current) == (old.epoch, new.epoch)
        # the new controller's write with the same expectations goes through
        await store_b.write_partition(new, "orders", 0, _state(2, 1, (2, 3)), read.mod_revision)
        assert (await store_b.partition("orders", 0)).value.controller_epoch == new.epoch
        await shutdown(a, b)
    run(main())


def test_controller_fenced_when_its_lease_lapses_before_any_successor(etcd, layout):
    async def main():
        a = await broker(etcd, layout, 1)
        _, claim = await _controller(a, layout)
        store = ClusterStore(a.etcd, layout)
        await store.create_topic(claim, _topic(partitions=1), {0: _state()})
        read = await store.partition("orders", 0)
        await a.etcd.revoke(a.lease_id)  # no other broker: the epoch stays, the key goes
        with pytest.raises(ControllerFenced):
            await store.write_partition(claim, "orders", 0, _state(2, 1), read.mod_revision)
        await shutdown(a)
    run(main())


@pytest.mark.slow
def test_leader_isr_update_guarded_by_its_registration(etcd, layout):
    async def main():
        # b keeps alive only every 2 s, so it does not notice the revoke below at once
        a, b = await broker(etcd, layout, 1), await broker(etcd, layout, 2, ttl=6)
        _, claim = await _controller(a, layout)
        store_a, store_b = ClusterStore(a.etcd, layout), ClusterStore(b.etcd, layout)
        await store_a.create_topic(claim, _topic(partitions=1), {0: _state(leader=2)})
        read = await store_b.partition("orders", 0)
        with pytest.raises(NotLeader):
            await store_a.leader_update_isr(a, "orders", 0, read, [1])
        rev = await store_b.leader_update_isr(b, "orders", 0, read, [2, 3])  # shrink
        after = await store_b.partition("orders", 0)
        assert after.value.isr == (2, 3) and after.mod_revision == rev
        assert after.value.leader_epoch == read.value.leader_epoch
        with pytest.raises(ConcurrentUpdate):  # from the stale read
            await store_b.leader_update_isr(b, "orders", 0, read, [2, 1])
        # b's registration goes: etcd refuses its ISR write even before b knows
        await a.etcd.revoke(b.lease_id)
        assert b.is_live
        with pytest.raises(SessionLost):
            await store_b.leader_update_isr(b, "orders", 0, after, [2, 3, 1])
        await eventually(lambda: b.lost.is_set(), 6 + 2, "b to learn it is lost")
        with pytest.raises(SessionLost):
            await store_b.leader_update_isr(b, "orders", 0, after, [2, 3, 1])
        await shutdown(a, b)
    run(main())


def test_delete_topic_removes_partitions(etcd, layout):
    async def main():
        a = await broker(etcd, layout, 1)
        _, claim = await _controller(a, layout)
        store = ClusterStore(a.etcd, layout)
        await store.create_topic(claim, _topic(partitions=3), {p: _state() for p in range(3)})
        topic = await store.topic("orders")
        await store.delete_topic(claim, "orders", topic.mod_revision)
        assert await store.topic("orders") is None
        assert await store.partitions("orders") == {}
        await shutdown(a)
    run(main())
