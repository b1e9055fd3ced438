"""Apache Kafka's ``kafka-reassign-partitions`` tool
(``org.apache.kafka.tools.reassign.ReassignPartitionsCommand``) against kavka: on three
brokers on etcd that a fourth, empty one has joined, --generate proposes moving a topic off
broker 1, --execute starts the moves, --list shows them, --verify reports them complete and
the metadata, read through confluent-kafka, names the new replicas; with --throttle the rates become every broker's dynamic settings
until --verify sees the move done and removes them.

The tool runs in a JVM of its own from the Java test client's build, as in test_kafka_tools.py
(whose :func:`tool` runs it).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from test_kafka_tools import tool

from kavka.cluster.etcd_server import EtcdServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cluster"))  # the cluster tests' helpers
from admin_targets import scaled_out  # noqa: E402

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

REASSIGN = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
TOPIC = "tool-move"
LAYOUT = [[1, 2, 3], [2, 3, 1]]


@pytest.fixture(scope="module")
def java(client_build):
    return client_build("java")


@pytest.fixture
def four(tmp_path):
    with EtcdServer(tmp_path / "etcd") as etcd, scaled_out(etcd.endpoint, tmp_path) as target:
        yield target


def reassign(java, bootstrap: str, *args: str, expect_exit: int = 0) -> str:
    return tool(java, REASSIGN, "--bootstrap-server", bootstrap, *args, expect_exit=expect_exit)


def replicas(admin: AdminClient) -> dict[int, list[int]]:
    topic = admin.list_topics(TOPIC, timeout=10).topics[TOPIC]
    return {p: list(m.replicas) for p, m in topic.partitions.items()}


def test_generate_execute_list_and_verify(java, four, tmp_path):
    bootstrap = four.bootstrap()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, len(LAYOUT), replica_assignment=LAYOUT)])[TOPIC].result(15)
    moving = tmp_path / "topics.json"
    moving.write_text(json.dumps({"version": 1, "topics": [{"topic": TOPIC}]}))
    generated = reassign(java, bootstrap, "--generate", "--topics-to-move-json-file", str(moving),
                         "--broker-list", "2,3,4")
    current, proposed = [json.loads(line) for line in generated.splitlines() if line.startswith("{")]
    assert {(e["partition"], tuple(e["replicas"])) for e in current["partitions"]} == {
        (p, tuple(r)) for p, r in enumerate(LAYOUT)}
    assert all(sorted(e["replicas"]) == [2, 3, 4] for e in proposed["partitions"])

    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(proposed))
    started = reassign(java, bootstrap, "--execute", "--reassignment-json-file", str(plan))
    assert f"Successfully started partition reassignments for {TOPIC}-0,{TOPIC}-1" in started
    reassign(java, bootstrap, "--list")   # in progress or already done: the broker answers either way
    verified = verify_until_done(java, bootstrap, plan)
    for p in range(len(LAYOUT)):
        assert f"Reassignment of partition {TOPIC}-{p} is completed." in verified, verified
    assert reassign(java, bootstrap, "--list").strip().endswith("No partition reassignments found.")
    assert replicas(admin) == {e["partition"]: e["replicas"] for e in proposed["partitions"]}


def test_a_throttled_move_sets_the_rates_and_verify_clears_them(java, four, tmp_path):
    bootstrap = four.bootstrap()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, len(LAYOUT), replica_assignment=LAYOUT)])[TOPIC].result(15)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": TOPIC, "partition": 0, "replicas": [4, 2, 3]}]}))
    started = reassign(java, bootstrap, "--execute", "--reassignment-json-file", str(plan), "--throttle", "1000000")
    assert "The inter-broker throttle limit was set to 1000000 B/s" in started
    assert throttle_rates(admin, 4) == {"leader.replication.throttled.rate": "1000000",
                                        "follower.replication.throttled.rate": "1000000"}
    verify_until_done(java, bootstrap, plan)
    assert throttle_rates(admin, 4) == {}
    assert replicas(admin)[0] == [4, 2, 3]


def throttle_rates(admin: AdminClient, broker_id: int) -> dict[str, str]:
    """The throttle rates broker ``broker_id`` holds as dynamic settings."""
    from confluent_kafka.admin import ConfigResource, ConfigSource
    (future,) = admin.describe_configs([ConfigResource("broker", str(broker_id))]).values()
    return {name: entry.value for name, entry in future.result(15).items()
            if name.endswith(".replication.throttled.rate") and entry.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value}


def verify_until_done(java, bootstrap: str, plan: Path) -> str:
    """--verify until no partition is still moving (it clears the throttles then); its output."""
    deadline = time.monotonic() + 60
    while True:
        verified = reassign(java, bootstrap, "--verify", "--reassignment-json-file", str(plan))
        if "is still in progress" not in verified or time.monotonic() > deadline:
            return verified
        time.sleep(0.5)
