"""Transactional offset commits (TxnOffsetCommit): pending per producer until the marker.

The coordinator never asks the transaction coordinator anything: the marker in the group's
``__consumer_offsets`` partition decides (``transaction_ended`` live, the journal's marker
entries at load).  Every test reads through ``fetch_offsets``, as OffsetFetch does.
"""

from __future__ import annotations

import random

import pytest
from group_helpers import Harness, subscription

from kavka.group.consumer_group import HeartbeatRequest
from kavka.group.log_format import partition_for
from kavka.group.offsets import OffsetCommit
from kavka.protocol.errors import ErrorCode as E

PID, EPOCH = 4242, 3


def txn_commit(h: Harness, group: str = "g", offsets=(("t", 0, 5),), producer_id: int = PID,
               generation: int = -1, member_id: str = "", instance=None, metadata: str = ""):
    commits = [OffsetCommit(t, p, o, -1, metadata) for t, p, o in offsets]
    return h._settle(h.coordinator.commit_txn_offsets(group, producer_id, EPOCH, generation, member_id, instance,
                                                      commits))


def marker(h: Harness, commit: bool, group: str = "g", producer_id: int = PID) -> None:
    """The transaction coordinator's marker lands in the group's partition, as the marker
    writers do it: into the log, then the coordinator is told."""
    index = partition_for(group, h.journal.partitions)
    h.journal.append_marker(index, producer_id, commit)
    h._settle(h.coordinator.transaction_ended(index, producer_id, commit))


def committed(coordinator, group: str = "g", partitions=(("t", 0),), stable: bool = False):
    """{(topic, partition): (offset or None, error)} as OffsetFetch answers."""
    error, found = coordinator.fetch_offsets(group, [(t, [p]) for t, p in partitions], require_stable=stable)
    assert error == E.none
    return {(t, p): (v.offset if v else None, e) for t, parts in found for p, v, e in parts}


def test_pending_offsets_show_only_after_the_commit_marker(h):
    assert txn_commit(h, offsets=[("t", 0, 5), ("t", 1, 8)]) == {("t", 0): E.none, ("t", 1): E.none}
    assert committed(h.coordinator, partitions=[("t", 0), ("t", 1)]) == {("t", 0): (None, E.none),
                                                                          ("t", 1): (None, E.none)}
    marker(h, commit=True)
    assert committed(h.coordinator, partitions=[("t", 0), ("t", 1)]) == {("t", 0): (5, E.none),
                                                                          ("t", 1): (8, E.none)}
    assert not h.coordinator.offsets.has_pending("g")


def test_an_abort_marker_drops_them_and_keeps_the_earlier_commit(h):
    h.commit(offsets=[("t", 0, 2)])
    txn_commit(h, offsets=[("t", 0, 5)])
    marker(h, commit=False)
    assert committed(h.coordinator) == {("t", 0): (2, E.none)}
    assert h.coordinator.offsets.pending_snapshot() == {}


def test_require_stable_answers_unstable_while_pending(h):
    h.commit(offsets=[("t", 0, 2)])
    txn_commit(h, offsets=[("t", 0, 5)])
    assert committed(h.coordinator, partitions=[("t", 0), ("t", 1)], stable=True) == {
        ("t", 0): (None, E.unstable_offset_commit), ("t", 1): (None, E.none)}
    assert committed(h.coordinator) == {("t", 0): (2, E.none)}, "without require_stable: the committed one"
    _, everything = h.coordinator.fetch_offsets("g", None, require_stable=True)
    assert everything == [("t", [(0, None, E.unstable_offset_commit)])]
    marker(h, commit=True)
    assert committed(h.coordinator, stable=True) == {("t", 0): (5, E.none)}


def test_a_commit_marker_overrides_earlier_plain_commits_but_not_later_ones(h):
    h.commit(offsets=[("t", 0, 1), ("t", 1, 1)])
    txn_commit(h, offsets=[("t", 0, 5), ("t", 1, 5)])
    h.commit(offsets=[("t", 1, 9)])        # written after the transactional record: it wins
    marker(h, commit=True)
    assert committed(h.coordinator, partitions=[("t", 0), ("t", 1)]) == {("t", 0): (5, E.none),
                                                                          ("t", 1): (9, E.none)}


def test_a_marker_ends_only_its_producer_in_its_partition(h):
    other = next(g for g in (f"o{n}" for n in range(50))
                 if partition_for(g, h.journal.partitions) != partition_for("g", h.journal.partitions))
    txn_commit(h, offsets=[("t", 0, 5)])
    txn_commit(h, offsets=[("t", 1, 6)], producer_id=PID + 1)
    txn_commit(h, group=other, offsets=[("t", 0, 7)])
    marker(h, commit=True)
    assert committed(h.coordinator, partitions=[("t", 0), ("t", 1)], stable=True) == {
        ("t", 0): (5, E.none), ("t", 1): (None, E.unstable_offset_commit)}
    assert committed(h.coordinator, group=other, stable=True) == {("t", 0): (None, E.unstable_offset_commit)}
    marker(h, commit=True, group=other)
    assert committed(h.coordinator, group=other) == {("t", 0): (7, E.none)}


def test_a_restart_keeps_pending_offsets_pending_until_their_marker(h):
    h.commit(offsets=[("t", 0, 2)])
    txn_commit(h, offsets=[("t", 0, 5), ("t", 1, 6)])
    txn_commit(h, offsets=[("t", 2, 7)], producer_id=PID + 1)
    marker(h, commit=False, producer_id=PID + 1)
    rebuilt = h.rebuilt()
    assert rebuilt.snapshot() == h.coordinator.snapshot()
    assert committed(rebuilt, partitions=[("t", 0), ("t", 1), ("t", 2)], stable=True) == {
        ("t", 0): (None, E.unstable_offset_commit), ("t", 1): (None, E.unstable_offset_commit),
        ("t", 2): (None, E.none)}
    h.coordinator = rebuilt          # the marker the transaction coordinator sends again
    marker(h, commit=True)
    assert committed(h.coordinator, partitions=[("t", 0), ("t", 1)]) == {("t", 0): (5, E.none),
                                                                          ("t", 1): (6, E.none)}
    assert h.rebuilt().snapshot() == h.coordinator.snapshot()


def test_deleting_the_group_deletes_pending_offsets_too(h):
    txn_commit(h, offsets=[("t", 0, 5)])
    assert h._settle(h.coordinator.delete_groups(["g"])) == {"g": E.none}
    assert h.group() is None and not h.coordinator.offsets.has_pending("g")
    marker(h, commit=True)
    assert committed(h.coordinator) == {("t", 0): (None, E.none)}, "the tombstone came first"
    assert h.rebuilt().snapshot() == h.coordinator.snapshot()


def test_offset_delete_writes_a_tombstone_for_a_pending_partition(h):
    txn_commit(h, offsets=[("t", 0, 5)])
    before = h.journal.count()
    assert h._settle(h.coordinator.delete_offsets("g", [("t", 0)])) == (E.none, {("t", 0): E.none})
    assert h.journal.count() == before + 1
    marker(h, commit=True)
    assert committed(h.coordinator) == {("t", 0): (None, E.none)}


def test_expiry_keeps_partitions_and_groups_with_pending_offsets(harness):
    h = harness(retention_ms=60_000, retention_check_interval_ms=1_000)
    h.commit(offsets=[("t", 0, 1), ("t", 1, 1)])
    txn_commit(h, offsets=[("t", 0, 5)])
    h.advance(61_000)
    assert committed(h.coordinator, partitions=[("t", 0), ("t", 1)]) == {("t", 0): (1, E.none),
                                                                          ("t", 1): (None, E.none)}
    assert h.group() is not None
    marker(h, commit=False)
    h.advance(61_000)
    assert h.group() is None and committed(h.coordinator) == {("t", 0): (None, E.none)}


def test_member_checks_of_a_classic_group(h):
    joined = h.answer(h.join(instance="i-a", client="a"))
    member = joined.member_id
    h.sync(member, joined.generation, instance="i-a", assignments={member: b"plan"})
    assert h.state() == "Stable"
    assert txn_commit(h, generation=1, member_id=member, instance="i-a") == {("t", 0): E.none}
    assert txn_commit(h) == {("t", 0): E.none}, "v0-2 name no member"
    assert txn_commit(h, generation=2, member_id=member) == {("t", 0): E.illegal_generation}
    assert txn_commit(h, generation=1, member_id="nobody") == {("t", 0): E.unknown_member_id}
    assert txn_commit(h, generation=1, member_id="nobody", instance="i-a") == {("t", 0): E.fenced_instance_id}
    assert txn_commit(h, generation=1, member_id=member, instance="i-b") == {("t", 0): E.unknown_member_id}
    assert txn_commit(h, group="none", generation=1, member_id="m") == {("t", 0): E.illegal_generation}


def test_metadata_too_large_fails_only_its_partition(harness):
    h = harness(metadata_max_bytes=4)
    result = txn_commit(h, offsets=[("t", 0, 1)], metadata="12345")
    assert result == {("t", 0): E.offset_metadata_too_large}
    assert not h.coordinator.offsets.has_pending("g")


def test_not_coordinator_when_the_partition_is_not_here(h):
    h.journal.local = False
    assert txn_commit(h) == {("t", 0): E.not_coordinator}


def test_a_stale_member_epoch_of_a_consumer_group_is_illegal_generation(h):
    h.topics = {}
    reply = h._settle(h.coordinator.consumer_heartbeat(HeartbeatRequest(
        "cg", "m1", 0, None, None, 30_000, ("t",), None, "uniform", {}), 0))
    assert reply.error == E.none
    epoch = reply.member_epoch
    assert txn_commit(h, group="cg", generation=epoch, member_id="m1") == {("t", 0): E.none}
    assert txn_commit(h, group="cg", generation=epoch + 1, member_id="m1") == {("t", 0): E.illegal_generation}
    assert txn_commit(h, group="cg", generation=epoch, member_id="m2") == {("t", 0): E.unknown_member_id}


@pytest.mark.parametrize("commit", [True, False])
def test_a_failed_append_leaves_nothing_pending(h, commit):
    h.journal.fail = OSError("disk full")
    assert txn_commit(h) == {("t", 0): E.unknown_server_error}
    h.journal.fail = None
    marker(h, commit=commit)
    assert committed(h.coordinator) == {("t", 0): (None, E.none)}


def test_a_member_of_a_subscribing_group_commits_in_a_transaction(h):
    ids = h.stable_group("a", protocols=(("range", subscription("t")),))
    assert txn_commit(h, generation=1, member_id=ids["a"]) == {("t", 0): E.none}
    marker(h, commit=True)
    assert committed(h.coordinator) == {("t", 0): (5, E.none)}


@pytest.mark.parametrize("seed", range(8))
def test_random_transactional_and_plain_commits_rebuild_the_same_state(seed):
    """Transactional commits of three producers, plain commits, markers, OffsetDelete and
    time in random order; a restart after every step rebuilds what the live coordinator holds."""
    rng = random.Random(seed)
    h = Harness(retention_ms=600_000, retention_check_interval_ms=60_000)
    for step in range(60):
        group = rng.choice(["s1", "s2", "s3"])
        action = rng.choice(["txn", "plain", "marker", "delete", "time"])
        offsets = [("t", rng.randrange(3), step)]
        if action == "txn":
            txn_commit(h, group=group, offsets=offsets, producer_id=rng.randrange(3))
        elif action == "plain":
            h.commit(group=group, offsets=offsets)
        elif action == "marker":
            marker(h, rng.random() < 0.6, group=group, producer_id=rng.randrange(3))
        elif action == "delete":
            h._settle(h.coordinator.delete_offsets(group, [offsets[0][:2]]))
        else:
            h.advance(rng.choice([1_000, 300_000]))
        assert h.rebuilt().snapshot() == h.coordinator.snapshot(), (seed, step, action)
