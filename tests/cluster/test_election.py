"""Controller election: one controller, failover with epoch + 1, strictly growing epochs."""

from __future__ import annotations

import asyncio

import pytest

from cluster_helpers import TTL, broker, eventually, run, shutdown

from kavka.cluster.election import ControllerElection
from kavka.cluster.state_store import ClusterStore


async def _cluster(etcd, layout, ids, recheck=1.0):
    sessions = [await broker(etcd, layout, i) for i in ids]
    elections = [ControllerElection(s.etcd, layout, s, recheck=recheck) for s in sessions]
    for e in elections:
        await e.start()
    return sessions, elections


async def _stop(sessions, elections, revoke=True):
    for e in elections:
        await e.stop(resign=revoke)
    await shutdown(*sessions, revoke=revoke)


def _one_controller(elections):
    winners = [e for e in elections if e.is_controller]
    return winners[0] if len(winners) == 1 else None


def test_exactly_one_controller_among_three(etcd, layout):
    async def main():
        sessions, elections = await _cluster(etcd, layout, [1, 2, 3])
        winner = await eventually(lambda: _one_controller(elections), 5, "a controller")
        await asyncio.sleep(0.5)  # and it stays one
        assert [e for e in elections if e.is_controller] == [winner]
        store = ClusterStore(sessions[0].etcd, layout)
        stored = await store.controller()
        assert stored.value.broker_id == winner.claim.broker_id
        assert stored.value.epoch == winner.claim.epoch == 1
        assert stored.create_revision == winner.claim.create_revision
        assert await store.controller_epoch() == 1
        await _stop(sessions, elections)
    run(main())


def test_election_and_failover_on_uvloop(etcd, layout):
    """The broker runs on uvloop: gRPC's asyncio integration must work there too."""
    async def main():
        sessions, elections = await _cluster(etcd, layout, [1, 2])
        first = await eventually(lambda: _one_controller(elections), 5, "a controller")
        await first.stop(resign=True)
        second = await eventually(lambda: _one_controller(elections), 5, "handover")
        assert second is not first and second.claim.epoch == 2
        await _stop(sessions, elections)
    run(main(), uvloop=True)


def test_failover_on_revoked_lease_bumps_epoch(etcd, layout):
    async def main():
        sessions, elections = await _cluster(etcd, layout, [1, 2, 3])
        first = await eventually(lambda: _one_controller(elections), 5, "a controller")
        loser_session = first.session
        changes = []
        first.on_change(changes.append)
        await sessions[0].etcd.revoke(loser_session.lease_id)  # its broker "dies" for etcd
        rest = [e for e in elections if e is not first]
        second = await eventually(lambda: _one_controller(rest), TTL + 5, "a new controller")
        assert first.claim is None or first.claim.epoch == 1
        assert second.claim.epoch == 2  # the first election of a fresh cluster id won epoch 1
        await eventually(lambda: not first.is_controller, TTL + 2, "old controller to step down")
        assert changes[-1] is None
        store = ClusterStore(second.session.etcd, layout)
        assert (await store.controller()).value.broker_id == second.claim.broker_id
        assert await store.controller_epoch() == 2
        await _stop(sessions, elections)
    run(main())


@pytest.mark.slow
def test_failover_on_lease_expiry_and_on_resign(etcd, layout):
    async def main():
        sessions, elections = await _cluster(etcd, layout, [1, 2, 3])
        first = await eventually(lambda: _one_controller(elections), 5, "a controller")
        # the controller's process dies: no resign, no revoke; its lease must expire
        await first.stop(resign=False)
        await first.session.close(revoke=False)
        rest = [e for e in elections if e is not first]
        second = await eventually(lambda: _one_controller(rest), 3 * TTL + 3, "failover")
        assert second.claim.epoch == 2
        # a clean resign hands over at once
        await second.stop(resign=True)
        third = await eventually(lambda: _one_controller([e for e in rest if e is not second]),
                                 3, "handover after resign")
        assert third.claim.epoch == 3
        await _stop([s for s in sessions if s is not first.session],
                    [e for e in elections if e is not first])
        await first.session.etcd.close()
    run(main())


def test_racing_campaigns_never_reuse_an_epoch(etcd, layout):
    async def main():
        sessions = [await broker(etcd, layout, i) for i in range(1, 6)]
        elections = [ControllerElection(s.etcd, layout, s) for s in sessions]
        won = []
        for _ in range(4):
            results = await asyncio.gather(*(e.campaign() for e in elections))
            claims = [c for c, _ in results if c is not None]
            assert len(claims) == 1
            won.append(claims[0])
            winner = elections[[c for c, _ in results].index(claims[0])]
            assert await winner.resign(claims[0])
        assert [c.epoch for c in won] == [1, 2, 3, 4]
        await shutdown(*sessions)
    run(main())


def test_campaign_reclaims_a_key_held_by_its_own_session(etcd, layout):
    """After an etcd hiccup the election loop campaigns again while its key still exists:
    it must recognise the key as its own instead of waiting for it to go."""
    async def main():
        a, b = await broker(etcd, layout, 1), await broker(etcd, layout, 2)
        claim, _ = await ControllerElection(a.etcd, layout, a).campaign()
        again, _ = await ControllerElection(a.etcd, layout, a).campaign()
        assert again == claim
        other, seen = await ControllerElection(b.etcd, layout, b).campaign()
        assert other is None and seen >= claim.create_revision
        await shutdown(a, b)
    run(main())


@pytest.mark.slow  # restarts a private etcd (~4 s)
def test_controller_survives_a_short_etcd_restart(private_etcd, layout):
    async def main():
        sessions = [await broker(private_etcd, layout, i, ttl=4) for i in (1, 2)]
        elections = [ControllerElection(s.etcd, layout, s, recheck=0.5, retry_backoff=0.1)
                     for s in sessions]
        for e in elections:
            await e.start()
        first = await eventually(lambda: _one_controller(elections), 5, "a controller")
        private_etcd.crash()  # down for a second, shorter than the TTL
        await asyncio.sleep(1.0)  # the elections see broken streams and failed calls
        private_etcd.restart()
        again = await eventually(lambda: _one_controller(elections), 10, "a controller again")
        assert again is first and again.claim.epoch == 1  # reclaimed, not re-elected
        assert all(s.is_live for s in sessions)
        await _stop(sessions, elections)
    run(main())
