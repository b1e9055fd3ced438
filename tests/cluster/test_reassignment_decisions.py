"""The controller's reassignment rules (cluster/decisions.py) and their etcd encoding, without etcd."""

from __future__ import annotations

from kavka.cluster import decisions
from kavka.cluster.model import NO_LEADER, PartitionState, TopicAssignment


def test_replicas_are_the_target_then_the_removed_ones_sorted():
    assert decisions.reassignment((3, 1, 2), (2, 5, 4)) == ((2, 5, 4, 1, 3), (4, 5), (1, 3))
    assert decisions.reassignment((1, 2, 3), (3, 2, 1)) == ((3, 2, 1), (), ())


def test_completes_only_when_every_target_replica_is_in_sync():
    moving = PartitionState(1, 4, (1, 2, 3), 7)
    assert decisions.complete_reassignment(moving, (4, 2, 3, 1), (1,), {1, 2, 3, 4}, 8) is None
    caught_up = PartitionState(1, 4, (1, 2, 3, 4), 7)
    target, state = decisions.complete_reassignment(caught_up, (4, 2, 3, 1), (1,), {1, 2, 3, 4}, 8)
    assert target == (4, 2, 3)
    assert state == PartitionState(4, 5, (2, 3, 4), 8)   # the removed leader hands over, epoch + 1


def test_a_leader_that_stays_keeps_its_epoch_and_dead_candidates_are_skipped():
    s = PartitionState(2, 4, (1, 2, 4), 7)
    assert decisions.complete_reassignment(s, (4, 2, 1), (1,), {1, 2, 4}, 8) == ((4, 2), PartitionState(2, 4, (2, 4), 8))
    led_by_removed = PartitionState(1, 4, (1, 2, 4), 7)
    assert decisions.complete_reassignment(led_by_removed, (4, 2, 1), (1,), {1, 2}, 8)[1].leader == 2
    assert decisions.complete_reassignment(led_by_removed, (4, 1), (1,), {1}, 8) is None


def test_a_cancel_drops_the_adding_replicas_and_needs_unclean_when_only_they_are_in_sync():
    s = PartitionState(4, 5, (2, 4), 7)
    assert decisions.revert_reassignment(s, (4, 2, 3, 1), (4,), {1, 2, 3, 4}, 8, False) == (
        (2, 3, 1), PartitionState(2, 6, (2,), 8))
    only_new = PartitionState(4, 5, (4,), 7)
    assert decisions.revert_reassignment(only_new, (4, 1), (4,), {1, 4}, 8, False) is None
    assert decisions.revert_reassignment(only_new, (4, 1), (4,), {4}, 8, True) == ((1,), PartitionState(NO_LEADER, 6, (1,), 8))


def test_topic_encoding_keeps_the_sets_only_while_reassigning():
    plain = TopicAssignment("t", "id", {0: (1, 2)})
    assert b"adding_replicas" not in plain.encode()
    moving = TopicAssignment("t", "id", {0: (4, 2, 1), 1: (1, 2)}, {}, {0: (4,)}, {0: (1,)})
    decoded = TopicAssignment.decode(moving.encode())
    assert decoded == moving and decoded.reassigning(0) and not decoded.reassigning(1)
    assert decoded.target(0) == (4, 2) and decoded.target(1) == (1, 2)
