"""Kafka's ``kafka-log-dirs.sh`` (org.apache.kafka.tools.LogDirsCommand) against a kavka broker
with two log dirs: the JSON it prints names each dir and, per partition, the size of its
segment files on disk; after an AlterReplicaLogDirs move (kafka-python's admin client) it
finds the partition, at the same size, in the other dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from test_kafka_tools import java, produce, tool  # noqa: F401  (java: the build fixture)

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

TIMEOUT_MS = 15_000


@pytest.fixture
def broker(kavka_broker_factory, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    b = kavka_broker_factory({"log.dirs": f"{first},{second}"}, data_dir=first)
    b.dirs = (str(first), str(second))
    return b


def describe(build, broker, *args: str) -> dict:
    """The JSON LogDirsCommand prints after its two lines of progress."""
    out = tool(build, "LogDirsCommand", "--bootstrap-server", broker.bootstrap_servers, "--describe", *args)
    (line,) = [line for line in out.splitlines() if line.startswith("{")]
    return json.loads(line)


def sizes(answer: dict) -> dict[str, tuple[str, int]]:
    """partition name ("t-0") -> (log dir, size) from the tool's JSON; every entry current, no lag."""
    (only,) = answer["brokers"]
    assert only["broker"] == 0
    found = {}
    for log_dir in only["logDirs"]:
        assert log_dir["error"] is None
        for p in log_dir["partitions"]:
            assert (p["offsetLag"], p["isFuture"]) == (0, False)
            found[p["partition"]] = (log_dir["logDir"], p["size"])
    return found


def on_disk(log_dir: str, name: str) -> int:
    return sum(f.stat().st_size for f in (Path(log_dir) / name).glob("*.log"))


def test_kafka_log_dirs_describes_both_dirs_with_real_sizes(java, broker):  # noqa: F811
    first, second = broker.dirs
    broker.call(lambda: broker.logs.create_topic("tools-ld", 2))
    broker.call(lambda: broker.logs.create_topic("tools-other", 1))
    produce(broker.bootstrap_servers, "tools-ld", 300, partition=0)
    produce(broker.bootstrap_servers, "tools-ld", 20, partition=1)
    answer = describe(java, broker, "--topic-list", "tools-ld")
    assert sorted(d["logDir"] for d in answer["brokers"][0]["logDirs"]) == [first, second]  # the tool's map order
    found = sizes(answer)
    assert found == {"tools-ld-0": (first, on_disk(first, "tools-ld-0")),
                     "tools-ld-1": (second, on_disk(second, "tools-ld-1"))}
    assert found["tools-ld-0"][1] > 300 * len("value-0") and found["tools-ld-1"][1] > 20 * len("value-0")
    everything = sizes(describe(java, broker))
    assert everything["tools-other-0"] == (first, 0) and set(found) < set(everything)


def test_kafka_log_dirs_finds_a_moved_partition_in_its_new_dir(java, broker):  # noqa: F811
    kafka = pytest.importorskip("kafka")
    from kafka.admin import KafkaAdminClient
    from kafka.structs import TopicPartitionReplica

    first, second = broker.dirs
    broker.call(lambda: broker.logs.create_topic("tools-mv", 1))
    produce(broker.bootstrap_servers, "tools-mv", 100)
    before = sizes(describe(java, broker, "--topic-list", "tools-mv"))["tools-mv-0"]
    assert before == (first, on_disk(first, "tools-mv-0")) and before[1] > 0
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=TIMEOUT_MS)
    try:
        moved = admin.alter_replica_log_dirs({TopicPartitionReplica("tools-mv", 0, 0): second})
    finally:
        admin.close()
    assert moved == {TopicPartitionReplica("tools-mv", 0, 0): kafka.errors.NoError}
    assert sizes(describe(java, broker, "--topic-list", "tools-mv"))["tools-mv-0"] == (second, before[1])
    assert on_disk(second, "tools-mv-0") == before[1] and not (Path(first) / "tools-mv-0").exists()
