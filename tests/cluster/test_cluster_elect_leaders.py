"""ElectLeaders in a cluster of three in-process brokers on etcd, asked by confluent-kafka's
AdminClient: the controller moves leadership back to the preferred replica, or to any live
replica of a partition left without a leader (unclean), and answers Kafka's errors.

``auto.leader.rebalance.enable`` is off, so only the requested election moves leaders back
(leadership.py).
"""

from __future__ import annotations

import pytest
from confluent_kafka import ElectionType, TopicPartition
from confluent_kafka.admin import NewTopic

from admin_targets import wait_until as wait
from leadership import admin_of, lose_broker_1s_leaderships, partitions, start_without_rebalance

from kavka.cli.main import main

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def cluster(etcd, tmp_path):
    target = start_without_rebalance(etcd.endpoint, tmp_path)
    yield target.brokers, target.restart
    target.stop()


def elect(admin, election_type, topic, *indexes):
    """{partition: error code name or None} of one election request."""
    answer = admin.elect_leaders(election_type, [TopicPartition(topic, p) for p in indexes]).result(20)
    return {tp.partition: None if error is None else error.name() for tp, error in answer.items()}


def test_preferred_election_gives_leadership_back_to_the_first_replica(cluster):
    brokers, start = cluster
    admin = admin_of(brokers)

    def while_down(others, mine):
        assert elect(others, ElectionType.PREFERRED, "pref", *mine) == {
            p: "PREFERRED_LEADER_NOT_AVAILABLE" for p in mine}
        wait(lambda: all(brokers[2].node.metadata.partition("pref", p) for p in mine), 5, "the topic on broker 2")
        epochs.update({p: brokers[2].node.metadata.partition("pref", p).leader_epoch for p in mine})

    epochs = {}
    preferred, mine = lose_broker_1s_leaderships(brokers, start, admin, "pref", while_down)
    answer = elect(admin, ElectionType.PREFERRED, "pref", 0, 1, 2)
    assert answer == {p: None if p in mine else "ELECTION_NOT_NEEDED" for p in range(3)}
    assert {p: m.leader for p, m in partitions(admin, "pref").items()} == preferred
    for p in mine:   # a new leader epoch, seen by every broker
        wait(lambda: all(b.node.metadata.partition("pref", p).leader_epoch > epochs[p] for b in brokers.values()),
             5, "the new leader epoch everywhere")
    assert elect(admin, ElectionType.PREFERRED, "pref", *mine) == {p: "ELECTION_NOT_NEEDED" for p in mine}


def test_the_cli_through_a_broker_that_forwards_to_the_controller(cluster, capsys):
    brokers, start = cluster
    admin = admin_of(brokers)
    preferred, mine = lose_broker_1s_leaderships(brokers, start, admin, "cli")
    other = next(i for i in brokers if i != brokers[2].node.controller_id())
    assert main(["cluster", "elect-leaders", "-b", brokers[other].bootstrap_servers, "--topic", "cli"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"cli-{p}: elected (preferred)" if p in mine else f"cli-{p}: no election needed" for p in range(3)]
    assert {p: m.leader for p, m in partitions(admin_of(brokers, other), "cli").items()} == preferred


def test_election_errors(cluster):
    brokers, _ = cluster
    admin = admin_of(brokers)
    admin.create_topics([NewTopic("errs", 2, 3)])["errs"].result(10)
    assert elect(admin, ElectionType.UNCLEAN, "errs", 0, 1) == {0: "ELECTION_NOT_NEEDED", 1: "ELECTION_NOT_NEEDED"}
    assert elect(admin, ElectionType.PREFERRED, "errs", 5) == {5: "UNKNOWN_TOPIC_OR_PART"}
    assert elect(admin, ElectionType.PREFERRED, "nowhere", 0) == {0: "UNKNOWN_TOPIC_OR_PART"}
    assert admin.elect_leaders(ElectionType.PREFERRED, None).result(20) == {}   # nothing needed anywhere


def test_unclean_election_picks_a_live_replica_outside_the_isr(cluster):
    brokers, start = cluster
    admin = admin_of(brokers)
    admin.create_topics([NewTopic("dirty", 1, replica_assignment=[[2, 3]])])["dirty"].result(10)
    wait(lambda: sorted(partitions(admin, "dirty")[0].isrs) == [2, 3], 10, "both replicas in the ISR")
    brokers[3].stop()
    lone = admin_of(brokers, 1)
    wait(lambda: partitions(lone, "dirty")[0].isrs == [2], 10, "broker 3 out of the ISR")
    brokers[2].stop()
    wait(lambda: partitions(lone, "dirty")[0].leader == -1, 10, "no leader left")
    assert elect(lone, ElectionType.UNCLEAN, "dirty", 0) == {0: "ELIGIBLE_LEADERS_NOT_AVAILABLE"}
    start(3)
    wait(lambda: 3 in brokers[1].node.view.brokers, 10, "broker 3 registered again")
    assert partitions(lone, "dirty")[0].leader == -1   # 3 is not in the ISR: no clean election
    assert elect(lone, ElectionType.PREFERRED, "dirty", 0) == {0: "PREFERRED_LEADER_NOT_AVAILABLE"}
    assert elect(lone, ElectionType.UNCLEAN, "dirty", 0) == {0: None}
    meta = partitions(lone, "dirty")[0]
    assert (meta.leader, meta.isrs) == (3, [3])
    assert elect(lone, ElectionType.UNCLEAN, "dirty", 0) == {0: "ELECTION_NOT_NEEDED"}
