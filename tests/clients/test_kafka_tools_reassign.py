"""Apache Kafka's ``kafka-reassign-partitions`` tool
(``org.apache.kafka.tools.reassign.ReassignPartitionsCommand``) against kavka: on three
brokers on etcd that a fourth, empty one has joined, --generate proposes moving a topic off
broker 1, --execute starts the moves, --list shows them, --verify reports them complete and
the metadata, read through confluent-kafka, names the new replicas; --throttle is refused
(the rates are static broker settings in kavka) before anything moves.

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
    deadline = time.monotonic() + 60
    while True:
        verified = reassign(java, bootstrap, "--verify", "--reassignment-json-file", str(plan))
        if "is still in progress" not in verified or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for p in range(len(LAYOUT)):
        assert f"Reassignment of partition {TOPIC}-{p} is completed." in verified, verified
    assert reassign(java, bootstrap, "--list").strip().endswith("No partition reassignments found.")
    assert replicas(admin) == {e["partition"]: e["replicas"] for e in proposed["partitions"]}


def test_a_throttled_execute_is_refused_before_anything_moves(java, four, tmp_path):
    """The throttle rates are static broker settings in kavka: --throttle cannot set them."""
    bootstrap = four.bootstrap()
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, len(LAYOUT), replica_assignment=LAYOUT)])[TOPIC].result(15)
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": TOPIC, "partition": 0, "replicas": [4, 2, 3]}]}))
    refused = reassign(java, bootstrap, "--execute", "--reassignment-json-file", str(plan), "--throttle", "1000000",
                       expect_exit=1)
    assert "Dynamic broker configs are not supported" in refused
    assert reassign(java, bootstrap, "--list").strip().endswith("No partition reassignments found.")
    assert replicas(admin) == dict(enumerate(LAYOUT))
