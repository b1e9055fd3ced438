"""Replica placement and leader election decisions (pure)."""

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kavka.cluster.decisions import PlacementError, after_broker_change, initial_state, place, preferred, unclean
from kavka.cluster.model import NO_LEADER, PartitionState


@given(n=st.integers(1, 7), data=st.data(), partitions=st.integers(1, 40), topic=st.text(min_size=1, max_size=10))
def test_placement_is_valid_and_spreads_leaders(n, data, partitions, topic):
    rf = data.draw(st.integers(1, n))
    brokers = [b * 10 for b in range(1, n + 1)]
    got = place(topic, range(partitions), rf, brokers)
    assert sorted(got) == list(range(partitions))
    for replicas in got.values():
        assert len(replicas) == rf == len(set(replicas)) and set(replicas) <= set(brokers)
    leaders = Counter(r[0] for r in got.values())
    assert max(leaders.values()) - min(leaders.get(b, 0) for b in brokers) <= 1
    replicas_per_broker = Counter(b for r in got.values() for b in r)
    spread = max(replicas_per_broker.values()) - min(replicas_per_broker.get(b, 0) for b in brokers)
    assert spread == 0 if partitions % n == 0 else spread <= rf   # every full turn places rf on each


def test_too_few_brokers():
    with pytest.raises(PlacementError, match="larger than available brokers: 2"):
        place("t", range(3), 3, [1, 2])


def test_new_partitions_start_with_the_live_replicas():
    assert initial_state((2, 3, 1), {1, 2, 3}, 7) == PartitionState(2, 0, (2, 3, 1), 7)
    assert initial_state((2, 3, 1), {1, 3}, 7) == PartitionState(3, 0, (3, 1), 7)


def test_a_dead_leader_is_replaced_from_the_isr_in_replica_order():
    s = PartitionState(1, 4, (1, 2, 3), 1)
    assert after_broker_change(s, (1, 2, 3), {1, 2, 3}, 2) is None
    assert after_broker_change(s, (1, 3, 2), {2, 3}, 2) == PartitionState(3, 5, (3, 2), 2)
    # Only ISR members qualify: 3 is alive but out of sync.
    lagging = PartitionState(1, 4, (1, 2), 1)
    assert after_broker_change(lagging, (1, 3, 2), {3}, 2) == PartitionState(NO_LEADER, 5, (1, 2), 2)
    assert after_broker_change(lagging, (1, 3, 2), {3}, 2, unclean=True) == PartitionState(3, 5, (3,), 2)


def test_an_offline_partition_comes_back_with_its_last_isr_member():
    offline = PartitionState(NO_LEADER, 5, (1,), 2)
    assert after_broker_change(offline, (1, 2, 3), {2, 3}, 3) is None
    assert after_broker_change(offline, (1, 2, 3), {1, 2, 3}, 3) == PartitionState(1, 6, (1,), 3)


def test_preferred_leader_election():
    s = PartitionState(2, 6, (1, 2, 3), 3)
    assert preferred(s, (1, 2, 3), {1, 2, 3}, 3) == PartitionState(1, 7, (1, 2, 3), 3)
    assert preferred(s, (1, 2, 3), {2, 3}, 3) is None
    assert preferred(PartitionState(2, 6, (2, 3), 3), (1, 2, 3), {1, 2, 3}, 3) is None


def test_requested_unclean_election():
    offline = PartitionState(NO_LEADER, 5, (1,), 2)
    assert unclean(offline, (1, 2, 3), {3}, 4) == PartitionState(3, 6, (3,), 4)     # outside the ISR
    assert unclean(offline, (1, 2, 3), {1, 3}, 4) == PartitionState(1, 6, (1,), 4)  # the ISR first
    assert unclean(offline, (1, 2, 3), set(), 4) is None                              # nobody live
    assert unclean(PartitionState(2, 5, (2,), 2), (1, 2, 3), {2, 3}, 4) is None       # a live leader
    assert unclean(PartitionState(2, 5, (2,), 2), (1, 2, 3), {3}, 4) == PartitionState(3, 6, (3,), 4)
