"""ReplicaManager on real logs: leader roles, acks=all waits, ISR shrink and expand by
compare-and-swap, fencing, and produce checks with min.insync.replicas."""

from __future__ import annotations

import asyncio
import functools

import pytest
from replica_world import LAG_MS, TP, Store, manager, open_logs, produce, settle

from kavka.clock import ManualClock
from kavka.protocol.errors import ErrorCode

ME, OTHER, THIRD = 1, 2, 3


@pytest.fixture
def world(tmp_path):
    clock = ManualClock()
    logs = open_logs(tmp_path / "data", clock)
    yield clock, logs, Store()
    logs.close()


def asynchronous(test):
    """Run an async test on a fresh loop, bounded (there is no pytest-asyncio)."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        async def bounded():
            async with asyncio.timeout(10):
                return await test(*args, **kwargs)
        return asyncio.run(bounded())
    return run


def lead(world, isr=(ME, OTHER), replicas=None, epoch=1):
    """A manager of broker ME leading TP with ``isr``."""
    clock, logs, store = world
    m = manager(ME, logs, clock, store)
    m.apply(TP, store.set(TP, replicas or tuple(sorted({ME, OTHER, *isr})), ME, epoch, isr))
    return m


def plog(logs):
    return logs.partition(*TP).log


# -- roles ---------------------------------------------------------------------------------

def test_a_leader_starts_its_epoch_at_the_log_end(world):
    clock, logs, _ = world
    produce(logs, clock, b"a", b"b")                     # written before this broker led
    m = lead(world, epoch=4)
    assert m.leader_error(TP) == ErrorCode.none
    assert plog(logs).leader_epoch_entries()[-1] == (4, 2)
    assert not plog(logs).hw_follows_leo                 # a follower in the ISR holds the HW back
    produce(logs, clock, b"c")
    assert plog(logs).end_offset_for_epoch(4) == (4, 3)


def test_a_lone_leader_moves_the_high_watermark_with_its_log(world):
    clock, logs, _ = world
    lead(world, isr=(ME,), replicas=(ME, OTHER))
    assert plog(logs).hw_follows_leo
    produce(logs, clock, b"a", b"b")
    assert plog(logs).high_watermark == 2


def test_not_a_replica_or_a_partition_gone_means_no_role(world):
    clock, logs, store = world
    m = manager(ME, logs, clock, store)
    m.apply(TP, store.set(TP, (ME,), ME, 1, (ME,)))
    assert TP in m.leaders
    m.apply(TP, store.set(TP, (OTHER, THIRD), OTHER, 2, (OTHER, THIRD)))
    assert TP not in m.leaders and TP not in m.followers
    assert m.leader_error(TP) == ErrorCode.not_leader_or_follower
    m.apply(TP, store.set(TP, (ME,), ME, 3, (ME,)))
    m.apply(TP, None)
    assert TP not in m.leaders
    m.apply(("elsewhere", 0), store.set(("elsewhere", 0), (ME,), ME, 1, (ME,)))   # no local log: nothing
    assert ("elsewhere", 0) not in m.leaders


def test_a_follower_refuses_produce_and_a_partition_without_leader_is_not_fetched(world):
    clock, logs, store = world
    m = manager(ME, logs, clock, store)
    m.apply(TP, store.set(TP, (ME, OTHER), -1, 2, (ME, OTHER)))   # no leader elected
    assert TP in m.followers and not m.fetchers
    assert m.produce_check(TP, 1, 1) == ErrorCode.not_leader_or_follower
    assert m.follower_fetch(TP, OTHER, 0) == ErrorCode.not_leader_or_follower
    assert not plog(logs).hw_follows_leo


# -- produce checks and acks=all -----------------------------------------------------------

def test_produce_check_with_min_insync_replicas(world):
    m = lead(world, replicas=(ME, OTHER, THIRD))
    assert m.produce_check(TP, -1, 2) == ErrorCode.none
    assert m.produce_check(TP, -1, 3) == ErrorCode.not_enough_replicas
    assert m.produce_check(TP, 1, 3) == ErrorCode.none      # only acks=all counts the ISR
    assert m.produce_check(TP, 0, 3) == ErrorCode.none
    assert m.produce_check(("t", 9), 1, 1) == ErrorCode.not_leader_or_follower


@asynchronous
async def test_acks_all_waits_until_every_isr_member_has_the_records(world):
    clock, logs, _ = world
    m = lead(world, isr=(ME, OTHER, THIRD))
    info = produce(logs, clock, b"a", b"b", b"c")
    waiting = m.wait_replicated(TP, info.last_offset + 1, 2)
    assert isinstance(waiting, asyncio.Future)
    assert m.follower_fetch(TP, OTHER, 3) == ErrorCode.none
    assert plog(logs).high_watermark == 0 and not waiting.done()   # THIRD has nothing yet
    m.follower_fetch(TP, THIRD, 2)
    assert plog(logs).high_watermark == 2 and not waiting.done()
    m.follower_fetch(TP, THIRD, 3)
    assert plog(logs).high_watermark == 3
    assert await waiting == ErrorCode.none
    # already replicated: answered at once
    assert m.wait_replicated(TP, 3, 2) == ErrorCode.none
    assert m.wait_replicated(TP, 3, 4) == ErrorCode.not_enough_replicas_after_append


def test_a_high_watermark_advance_wakes_long_polling_consumers(world):
    clock, logs, _ = world
    m = lead(world)
    produce(logs, clock, b"a")
    woken = []
    plog(logs).listeners.append(lambda log: woken.append(log.high_watermark))
    m.follower_fetch(TP, OTHER, 0)
    assert woken == []
    m.follower_fetch(TP, OTHER, 1)
    assert woken == [1]


def test_fetches_from_strangers_and_for_unled_partitions_are_refused(world):
    m = lead(world)
    assert m.follower_fetch(TP, 7, 0) == ErrorCode.replica_not_available
    assert m.follower_fetch(("t", 5), OTHER, 0) == ErrorCode.not_leader_or_follower


# -- ISR changes ---------------------------------------------------------------------------

@asynchronous
async def test_a_lagging_follower_leaves_the_isr_through_the_store(world):
    clock, logs, store = world
    m = lead(world, isr=(ME, OTHER, THIRD))
    produce(logs, clock, b"a", b"b")
    waiting = m.wait_replicated(TP, 2, 1)
    m.follower_fetch(TP, OTHER, 2)                 # OTHER keeps up; THIRD never fetches
    clock.advance(LAG_MS // 2)
    m.check_isr()
    await settle()
    assert store.proposals == [] and not waiting.done()
    clock.advance(LAG_MS // 2 + 1)
    m.follower_fetch(TP, OTHER, 2)
    m.check_isr()
    await settle()
    assert store.proposals == [(TP, (ME, OTHER), 1, 1)]
    assert m.leaders[TP].state.isr == {ME, OTHER}   # applied once the store took it
    assert m.leaders[TP].assignment.version == store.states[TP].version == 2
    assert plog(logs).high_watermark == 2           # no longer held back by THIRD
    assert await waiting == ErrorCode.none


@asynchronous
async def test_a_refused_isr_change_changes_nothing_here(world):
    clock, logs, store = world
    m = lead(world)
    produce(logs, clock, b"a")
    store.refuse = True                             # e.g. a new leader was elected meanwhile
    clock.advance(LAG_MS + 1)
    m.check_isr()
    await settle()
    assert len(store.proposals) == 1
    assert m.leaders[TP].state.isr == {ME, OTHER} and not m.leaders[TP].proposing
    assert plog(logs).high_watermark == 0           # cannot acknowledge alone
    assert isinstance(m.wait_replicated(TP, 1, 1), asyncio.Future)   # still waiting


@asynchronous
async def test_a_caught_up_follower_rejoins_the_isr(world):
    clock, logs, store = world
    m = lead(world, isr=(ME,), replicas=(ME, OTHER))
    produce(logs, clock, b"a", b"b", b"c")
    assert plog(logs).high_watermark == 3
    m.follower_fetch(TP, OTHER, 1)                  # behind the high watermark: stays out
    await settle()
    assert store.proposals == []
    m.follower_fetch(TP, OTHER, 3)
    await settle()
    assert store.proposals == [(TP, (ME, OTHER), 1, 1)]
    assert m.leaders[TP].state.isr == {ME, OTHER}
    assert not plog(logs).hw_follows_leo            # the follower now holds the HW
    produce(logs, clock, b"d")
    assert plog(logs).high_watermark == 3
    m.follower_fetch(TP, OTHER, 4)
    assert plog(logs).high_watermark == 4


def test_an_isr_change_from_the_controller_is_taken_without_a_new_epoch(world):
    clock, logs, store = world
    m = lead(world)
    produce(logs, clock, b"a")
    entries = plog(logs).leader_epoch_entries()
    m.apply(TP, store.set(TP, (ME, OTHER), ME, 1, (ME,)))
    assert plog(logs).high_watermark == 1 and plog(logs).hw_follows_leo
    assert plog(logs).leader_epoch_entries() == entries


# -- leadership lost and fencing -------------------------------------------------------------

@pytest.mark.parametrize("new_leader, epoch", [(OTHER, 2), (ME, 3)])
@asynchronous
async def test_a_new_leader_epoch_fails_the_waiting_produces(world, new_leader, epoch):
    """Another broker leads now, or this one again in a newer epoch: the old role's waits end."""
    clock, logs, store = world
    m = lead(world)
    produce(logs, clock, b"a")
    waiting = m.wait_replicated(TP, 1, 1)
    m.apply(TP, store.set(TP, (ME, OTHER), new_leader, epoch, (ME, OTHER)))
    assert await waiting == ErrorCode.not_leader_or_follower
    if new_leader == ME:
        assert plog(logs).leader_epoch_entries()[-1] == (epoch, 1)
        assert m.leaders[TP].assignment.leader_epoch == epoch
    else:
        assert TP in m.followers and new_leader in m.fetchers
    await m.stop()


@asynchronous
async def test_a_fenced_broker_leads_nothing_until_unfenced(world):
    clock, logs, store = world
    m = manager(ME, logs, clock, store)
    a = store.set(TP, (ME, OTHER), ME, 1, (ME, OTHER))
    m.apply(TP, a)
    produce(logs, clock, b"a")
    waiting = m.wait_replicated(TP, 1, 1)
    m.fence()
    assert await waiting == ErrorCode.not_leader_or_follower
    assert m.leader_error(TP) == ErrorCode.not_leader_or_follower
    assert m.produce_check(TP, -1, 1) == ErrorCode.not_leader_or_follower
    m.apply(TP, a)                                 # the store still names it: it may not lead
    assert TP not in m.leaders
    m.unfence()
    m.apply(TP, a)
    assert m.leader_error(TP) == ErrorCode.none
    await m.stop()


@asynchronous
async def test_stop_fails_waiters_and_ends_fetchers(world):
    clock, logs, store = world
    m = manager(ME, logs, clock, store)
    m.start()
    m.apply(TP, store.set(TP, (ME, OTHER), ME, 1, (ME, OTHER)))
    produce(logs, clock, b"a")
    waiting = m.wait_replicated(TP, 1, 1)
    await m.stop()
    assert waiting.result() == ErrorCode.not_leader_or_follower
    assert m.fetchers == {}


# -- consumers reading from followers (KIP-392) ---------------------------------------------

RACKS = {ME: "r1", OTHER: "r2", THIRD: "r3"}
RACK_AWARE = "org.apache.kafka.common.replica.RackAwareReplicaSelector"


def lead_with_racks(world, selector=RACK_AWARE, isr=(ME, OTHER, THIRD)):
    clock, logs, store = world
    m = manager(ME, logs, clock, store, rack_of=RACKS.get, replica_selector=selector)
    m.apply(TP, store.set(TP, (ME, OTHER, THIRD), ME, 1, isr))
    return m


def test_a_follower_serves_consumers_only_from_fetch_v11(world):
    clock, logs, store = world
    m = manager(ME, logs, clock, store)
    m.apply(TP, store.set(TP, (ME, OTHER), -1, 2, (ME, OTHER)))   # a follower (no leader: no fetcher)
    assert m.read_error(TP, follower_reads=True) == ErrorCode.none
    assert m.read_error(TP, follower_reads=False) == ErrorCode.not_leader_or_follower
    assert m.read_error(("t", 9), follower_reads=True) == ErrorCode.not_leader_or_follower
    leader = lead(world)
    assert leader.read_error(TP, follower_reads=False) == ErrorCode.none


def test_the_leader_points_a_consumer_at_the_in_sync_follower_of_its_rack(world):
    clock, logs, _ = world
    produce(logs, clock, b"a", b"b", b"c")
    m = lead_with_racks(world)
    m.follower_fetch(TP, OTHER, 3)
    m.follower_fetch(TP, THIRD, 3)
    assert m.preferred_read_replica(TP, "r2", 3) == OTHER
    assert m.preferred_read_replica(TP, "r3", 0) == THIRD
    assert m.preferred_read_replica(TP, "r1", 0) == -1      # the leader's own rack
    assert m.preferred_read_replica(TP, "r9", 0) == -1      # no replica there
    assert m.preferred_read_replica(TP, "", 0) == -1


@asynchronous
async def test_a_follower_behind_the_fetch_offset_or_out_of_the_isr_is_not_preferred(world):
    clock, logs, store = world
    produce(logs, clock, b"a", b"b", b"c")
    m = lead_with_racks(world, isr=(ME, OTHER))
    store.refuse = True                                     # THIRD stays out of the ISR
    m.follower_fetch(TP, OTHER, 1)
    m.follower_fetch(TP, THIRD, 3)
    await settle()
    assert m.preferred_read_replica(TP, "r2", 2) == -1      # its log ends before offset 2
    assert m.preferred_read_replica(TP, "r2", 1) == OTHER
    assert m.preferred_read_replica(TP, "r3", 0) == -1      # caught up, but not in the ISR


def test_without_a_selector_or_not_leading_nobody_is_preferred(world):
    clock, logs, store = world
    m = lead_with_racks(world, selector=None)
    m.follower_fetch(TP, OTHER, 0)
    assert m.preferred_read_replica(TP, "r2", 0) == -1
    follower = manager(ME, logs, clock, store, rack_of=RACKS.get, replica_selector=RACK_AWARE)
    follower.apply(TP, store.set(TP, (ME, OTHER), -1, 3, (ME, OTHER)))
    assert follower.preferred_read_replica(TP, "r2", 0) == -1
