"""RackAwareReplicaSelector's rule (kavka.replication.replica_selector) as a pure function."""

from __future__ import annotations

from kavka.replication.replica_selector import ReplicaView, rack_aware

LEADER = ReplicaView(1, "r1", 10, 0)


def test_no_client_rack_or_the_leaders_rack_means_the_leader():
    follower = ReplicaView(2, "r2", 10, 0)
    assert rack_aware("", LEADER, [follower]) is LEADER
    assert rack_aware("r1", LEADER, [follower, ReplicaView(3, "r1", 10, 0)]) is LEADER


def test_no_replica_in_the_client_rack_means_the_leader():
    assert rack_aware("r9", LEADER, [ReplicaView(2, "r2", 10, 0), ReplicaView(3, None, 10, 0)]) is LEADER
    assert rack_aware("r2", LEADER, []) is LEADER


def test_the_follower_of_the_client_rack_is_chosen_over_other_racks():
    near, far = ReplicaView(2, "r2", 5, 0), ReplicaView(3, "r3", 10, 0)
    assert rack_aware("r2", LEADER, [far, near]) is near


def test_in_one_rack_the_highest_log_end_then_the_most_recently_caught_up_then_the_lowest_id():
    behind, ahead = ReplicaView(4, "r2", 7, 0), ReplicaView(5, "r2", 9, 500)
    assert rack_aware("r2", LEADER, [behind, ahead]) is ahead
    stale, fresh = ReplicaView(4, "r2", 9, 900), ReplicaView(5, "r2", 9, 100)
    assert rack_aware("r2", LEADER, [stale, fresh]) is fresh
    high, low = ReplicaView(6, "r2", 9, 100), ReplicaView(5, "r2", 9, 100)
    assert rack_aware("r2", LEADER, [high, low]) is low
