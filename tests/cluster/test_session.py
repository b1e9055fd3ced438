"""Broker registration under a lease: expiry, duplicates, keepalive, loss detection."""

from __future__ import annotations

import asyncio
import time

import pytest
from cluster_helpers import TTL, broker, connect, eventually, run, shutdown

from kavka.cluster.election import ControllerElection
from kavka.cluster.errors import BrokerIdInUse, SessionLost
from kavka.cluster.model import BrokerInfo
from kavka.cluster.session import BrokerSession
from kavka.cluster.state_store import ClusterStore


@pytest.mark.slow
def test_registration_visible_and_gone_when_lease_expires(etcd, layout):
    async def main():
        a = await broker(etcd, layout, 1)
        store = ClusterStore(a.etcd, layout)
        brokers = await store.brokers()
        assert list(brokers) == [1]
        assert brokers[1].value == BrokerInfo(1, "127.0.0.1", 9001)
        assert brokers[1].create_revision == a.broker_epoch > 0
        # the process "dies": keepalives stop, the lease is not revoked
        await a.close(revoke=False)
        t0 = time.monotonic()
        await eventually(lambda: _no_brokers(store), 3 * TTL + 2, "lease expiry")
        assert time.monotonic() - t0 >= TTL - 1.0  # not before the lease could expire
        await a.etcd.close()
    run(main())


async def _no_brokers(store):
    return not await store.brokers()


@pytest.mark.slow  # sleeps 1.75 session TTLs (~3.5 s)
def test_keepalive_holds_registration_past_ttl(etcd, layout):
    async def main():
        a = await broker(etcd, layout, 1)
        store = ClusterStore(a.etcd, layout)
        await asyncio.sleep(1.75 * TTL)  # the property under test is "still there after TTL"
        assert list(await store.brokers()) == [1]
        assert a.is_live
        await shutdown(a)
        assert not await store.brokers()  # close() revokes: gone at once
    run(main())


def test_duplicate_broker_id_refused(etcd, layout):
    async def main():
        a = await broker(etcd, layout, 7)
        etcd2 = await connect(etcd)
        b = BrokerSession(etcd2, layout, BrokerInfo(7, "127.0.0.1", 9999), ttl=TTL)
        with pytest.raises(BrokerIdInUse) as info:
            await b.register()
        assert info.value.broker_id == 7
        assert b"9007" in info.value.holder  # the live holder's registration
        # the live registration is untouched
        brokers = await ClusterStore(etcd2, layout).brokers()
        assert brokers[7].value.port == 9007
        await shutdown(a)
        await etcd2.close()
    run(main())


@pytest.mark.slow  # waits out a stale lease (~2.7 s)
def test_restarted_broker_waits_for_its_stale_registration(etcd, layout):
    async def main():
        a = await broker(etcd, layout, 3)
        await a.close(revoke=False)  # crashed: registration lingers until the lease expires
        etcd2 = await connect(etcd)
        b = BrokerSession(etcd2, layout, BrokerInfo(3, "127.0.0.1", 9003), ttl=TTL)
        epoch = await b.register(retry_for=3 * TTL + 2)
        assert epoch > a.broker_epoch  # a new registration is a new broker epoch
        await shutdown(b)
        await a.etcd.close()
    run(main())


def test_revoked_lease_is_detected_as_lost(etcd, layout):
    async def main():
        a = await broker(etcd, layout, 1)
        fired = []
        a.on_lost(lambda: fired.append(True))
        other = await connect(etcd)
        await other.revoke(a.lease_id)
        await asyncio.wait_for(a.lost.wait(), TTL + 2)
        assert fired == [True] and not a.is_live
        with pytest.raises(SessionLost):
            a.check()
        await shutdown(a)
        await other.close()
    run(main())


@pytest.mark.slow
def test_cut_off_from_etcd_is_detected_within_ttl(private_etcd, layout):
    """SIGSTOP etcd: keepalives hang; the session must declare itself lost by its deadline,
    and a controller on that session must stop being controller with it."""
    async def main():
        a = await broker(private_etcd, layout, 1)
        election = ControllerElection(a.etcd, layout, a, recheck=0.5)
        await election.start()
        await election.wait_controller(5)
        changes = []
        election.on_change(changes.append)
        fired = []
        a.on_lost(lambda: fired.append(time.monotonic()))
        private_etcd.pause()
        t0 = time.monotonic()
        try:
            await asyncio.wait_for(a.lost.wait(), TTL + 2)
        finally:
            private_etcd.resume()
        assert fired and fired[0] - t0 <= TTL + 0.5
        assert not a.is_live and not election.is_controller
        await eventually(lambda: changes == [None], 2, "the election to report the loss")
        # once etcd runs again the registration goes (revoked by the session, or expired)
        store = ClusterStore(await connect(private_etcd), layout)
        await eventually(lambda: _no_brokers(store), 3 * TTL + 2, "registration removal")
        await election.stop(resign=False)
        await shutdown(a, revoke=False)
        await store.etcd.close()
    run(main())
