"""The asyncio glue: parked requests become futures, the next deadline one timer."""

from __future__ import annotations

import asyncio

from group_helpers import SESSION, Harness

from kavka.group.join import JoinRequest
from kavka.group.runner import GroupRunner
from kavka.protocol.errors import ErrorCode as E


def join_request(member_id: str = "", client: str = "c") -> JoinRequest:
    return JoinRequest("g", member_id, None, client, "/127.0.0.1", SESSION, 20_000, "consumer",
                       (("range", b""),), require_known_member_id=False)


def test_parked_join_resolves_when_the_rebalance_completes():
    h = Harness()

    async def scenario():
        runner = GroupRunner(h.coordinator)
        first = await runner.run(lambda c: c.join(join_request()))       # completes at once
        assert first.error == E.none
        second = runner.run(lambda c: c.join(join_request(client="d")))  # waits for the first to rejoin
        assert isinstance(second, asyncio.Future) and not second.done()
        again = await runner.run(lambda c: c.join(join_request(first.member_id)))
        assert (await second).generation == again.generation == 2
        assert runner.timer.due == h.coordinator.next_deadline()
        runner.close()

    asyncio.run(scenario())


def test_the_timer_runs_tick_and_close_answers_parked_requests():
    h = Harness()

    async def scenario():
        runner = GroupRunner(h.coordinator)
        first = await runner.run(lambda c: c.join(join_request()))
        parked = runner.run(lambda c: c.join(join_request(client="d")))
        h.clock.advance(20_000)  # the first member never rejoins: the join deadline passes
        runner.timer.fire()
        assert parked.done() and (await parked).generation == 2
        assert first.member_id not in h.coordinator.groups["g"].members
        waiting = runner.run(lambda c: c.join(join_request(client="e")))
        runner.close()
        assert (await waiting).error == E.not_coordinator
        assert not runner.timer.armed
        assert runner.run(lambda c: c.heartbeat("g", "x", None, 1)) == E.not_coordinator

    asyncio.run(scenario())
