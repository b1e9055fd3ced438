"""Apache Kafka's ``kafka-leader-election`` tool (``org.apache.kafka.tools.LeaderElectionCommand``)
against kavka: on a lone broker every election is "not needed", on a three-broker cluster on
etcd a preferred election gives leadership back to a restarted broker.

The tool runs in a JVM of its own from the Java test client's build, as in test_kafka_tools.py
(whose :func:`tool` runs it).  A test asserts on what the tool printed and its exit status, and
on the cluster reads the leaders back through confluent-kafka.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from test_kafka_tools import tool

from kavka.cluster.etcd_server import EtcdServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cluster"))  # the cluster tests' helpers
from leadership import admin_of, lose_broker_1s_leaderships, partitions, start_without_rebalance  # noqa: E402

pytestmark = pytest.mark.timeout(180)

ELECTION = "org.apache.kafka.tools.LeaderElectionCommand"


@pytest.fixture(scope="module")
def java(client_build):
    return client_build("java")


def elect(java, bootstrap: str, *args: str, expect_exit: int = 0) -> list[str]:
    """The lines kafka-leader-election printed (with stderr when it is expected to fail)."""
    return tool(java, ELECTION, "--bootstrap-server", bootstrap, *args, expect_exit=expect_exit).splitlines()


def test_a_lone_broker_needs_no_election(java, kavka_broker):
    bootstrap = kavka_broker.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic("lone-e", 2)])["lone-e"].result(10)
    assert elect(java, bootstrap, "--election-type", "PREFERRED", "--topic", "lone-e", "--partition", "0") == [
        "Valid replica already elected for partitions lone-e-0"]
    assert elect(java, bootstrap, "--election-type", "UNCLEAN", "--topic", "lone-e", "--partition", "1") == [
        "Valid replica already elected for partitions lone-e-1"]
    # every partition: the broker answers only those where an election was needed, none here
    assert elect(java, bootstrap, "--election-type", "PREFERRED", "--all-topic-partitions") == []
    failed = elect(java, bootstrap, "--election-type", "PREFERRED", "--topic", "lone-e", "--partition", "7",
                   expect_exit=1)
    assert ("Error completing leader election (PREFERRED) for partition: lone-e-7: "
            "org.apache.kafka.common.errors.UnknownTopicOrPartitionException: The partition lone-e-7 does not exist."
            ) in failed
    assert any(line.endswith("1 replica(s) could not be elected") for line in failed), failed


@pytest.fixture
def cluster(tmp_path):
    with EtcdServer(tmp_path / "etcd") as etcd:
        target = start_without_rebalance(etcd.endpoint, tmp_path)
        try:
            yield target.brokers, target.restart
        finally:
            target.stop()


@pytest.mark.slow
def test_a_preferred_election_gives_leadership_back_to_a_restarted_broker(java, cluster):
    brokers, start = cluster
    bootstrap = ",".join(b.bootstrap_servers for b in brokers.values())

    def while_down(others, mine):
        survivors = ",".join(brokers[i].bootstrap_servers for i in (2, 3))
        failed = elect(java, survivors, "--election-type", "PREFERRED", "--topic", "tool-e",
                       "--partition", str(mine[0]), expect_exit=1)
        assert (f"Error completing leader election (PREFERRED) for partition: tool-e-{mine[0]}: "
                "org.apache.kafka.common.errors.PreferredLeaderNotAvailableException: ") in "\n".join(failed)

    preferred, mine = lose_broker_1s_leaderships(brokers, start, admin_of(brokers), "tool-e", while_down)
    (done,) = elect(java, bootstrap, "--election-type", "PREFERRED", "--all-topic-partitions")
    head, _, elected = done.partition(" for partitions ")
    assert head == "Successfully completed leader election (PREFERRED)", done
    assert sorted(elected.split(", ")) == [f"tool-e-{p}" for p in mine], done
    assert {p: m.leader for p, m in partitions(admin_of(brokers), "tool-e").items()} == preferred
    assert elect(java, bootstrap, "--election-type", "PREFERRED", "--topic", "tool-e", "--partition",
                 str(mine[0])) == [f"Valid replica already elected for partitions tool-e-{mine[0]}"]
