"""Apache Kafka's own command-line tools against a real kavka broker.

Each tool is the main class the ``kafka-*.sh`` script runs (``kafka-topics.sh`` runs
``org.apache.kafka.tools.TopicCommand``; ``kafka-configs.sh`` runs ``kafka.admin.ConfigCommand``
from Kafka's core jar), started in a JVM of its own from the Java test client's build
(java/pom.xml puts kafka-tools and kafka_2.13 on its class path).  A test asserts on what
the tool printed and, where the tool changed something, reads it back through
confluent-kafka, so a tool that reports success without the broker doing it fails.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

# Short-lived JVMs on 2 shared cores: the C1 compiler only and the serial collector start faster;
# the tools' client logging (slf4j-simple) only from warnings up.
JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
TOOL_TIMEOUT = 90   # seconds for one tool run
TOOLS = "org.apache.kafka.tools."
TIMEOUT = 15


@pytest.fixture(scope="module")
def java(client_build):
    return client_build("java")


@pytest.fixture
def kafka(java, kavka_broker_factory):
    """``kafka(main_class, *args)``: run a tool against a fresh broker; what it printed (see :func:`tool`)."""
    broker = kavka_broker_factory({"group.initial.rebalance.delay.ms": 0})

    def run(main_class: str, *args: str, stdin: str = "", expect_exit: int = 0) -> str:
        return tool(java, main_class, *args, stdin=stdin, expect_exit=expect_exit)

    run.bootstrap = broker.bootstrap_servers
    run.args = ("--bootstrap-server", broker.bootstrap_servers)
    run.broker = broker
    return run


def tool(build: Path, main_class: str, *args: str, stdin: str = "", expect_exit: int = 0) -> str:
    """Run a tool to its end: its stdout, or when it is expected to fail its stdout and stderr."""
    name = main_class if main_class.startswith(("org.", "kafka.")) else TOOLS + main_class
    result = subprocess.run(["java", *JVM_OPTIONS, "-cp", str(build / "lib" / "*"), name, *args], input=stdin,
                            capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    assert result.returncode == expect_exit, (
        f"{name} {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout if expect_exit == 0 else result.stdout + result.stderr


def produce(bootstrap: str, topic: str, count: int, partition: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, f"value-{i}".encode(), key=f"key-{i}".encode(), partition=partition)
    assert producer.flush(TIMEOUT) == 0


def partition_counts(bootstrap: str) -> dict[str, int]:
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=TIMEOUT).topics
    return {name: len(t.partitions) for name, t in topics.items() if not name.startswith("__")}


def committed(bootstrap: str, group: str, topic: str, partition: int = 0) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        (tp,) = consumer.committed([TopicPartition(topic, partition)], timeout=TIMEOUT)
        return tp.offset
    finally:
        consumer.close()


def table(output: str, first_column: str) -> list[dict[str, str]]:
    """The rows of a whitespace-aligned table the tools print (consumer groups), by header."""
    lines = [line.split() for line in output.splitlines() if line.strip()]
    header = next(i for i, cells in enumerate(lines) if cells and cells[0] == first_column)
    return [dict(zip(lines[header], cells)) for cells in lines[header + 1:] if len(cells) == len(lines[header])]


def test_kafka_topics_creates_describes_alters_and_deletes(kafka):
    assert "Created topic tools-t." in kafka("TopicCommand", *kafka.args, "--create", "--topic", "tools-t",
                                             "--partitions", "3", "--config", "retention.ms=3600000")
    assert partition_counts(kafka.bootstrap)["tools-t"] == 3
    assert "tools-t" in kafka("TopicCommand", *kafka.args, "--list").split()
    described = kafka("TopicCommand", *kafka.args, "--describe", "--topic", "tools-t")
    assert "PartitionCount: 3" in described and "retention.ms=3600000" in described
    assert sorted(re.findall(r"Partition: (\d+)\s+Leader: 0\s+Replicas: 0\s+Isr: 0", described)) == ["0", "1", "2"]
    kafka("TopicCommand", *kafka.args, "--alter", "--topic", "tools-t", "--partitions", "5")
    assert partition_counts(kafka.bootstrap)["tools-t"] == 5
    # an existing topic: the tool's error, from the broker's TOPIC_ALREADY_EXISTS
    again = kafka("TopicCommand", *kafka.args, "--create", "--topic", "tools-t", "--partitions", "1", expect_exit=1)
    assert "Topic 'tools-t' already exists." in again
    kafka("TopicCommand", *kafka.args, "--delete", "--topic", "tools-t")
    assert "tools-t" not in partition_counts(kafka.bootstrap)


def test_kafka_configs_alters_and_describes_topic_and_broker_configs(kafka):
    kafka("TopicCommand", *kafka.args, "--create", "--topic", "tools-c", "--partitions", "1")
    out = kafka("kafka.admin.ConfigCommand", *kafka.args, "--entity-type", "topics", "--entity-name", "tools-c",
                "--alter", "--add-config", "retention.ms=1000000,cleanup.policy=compact")
    assert "Completed updating config for topic tools-c." in out
    described = kafka("kafka.admin.ConfigCommand", *kafka.args, "--entity-type", "topics", "--entity-name", "tools-c",
                      "--describe")
    assert "retention.ms=1000000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=1000000" in described
    assert "cleanup.policy=compact" in described
    kafka("kafka.admin.ConfigCommand", *kafka.args, "--entity-type", "topics", "--entity-name", "tools-c",
          "--alter", "--delete-config", "cleanup.policy")
    described = kafka("kafka.admin.ConfigCommand", *kafka.args, "--entity-type", "topics", "--entity-name", "tools-c",
                      "--describe")
    assert "cleanup.policy" not in described and "retention.ms=1000000" in described
    every = kafka("kafka.admin.ConfigCommand", *kafka.args, "--entity-type", "brokers", "--entity-name", "0",
                  "--describe", "--all")
    assert "log.retention.hours=168 sensitive=false synonyms={DEFAULT_CONFIG:log.retention.hours=168}" in every
    assert "num.partitions=1" in every


def test_console_producer_consumer_and_consumer_groups(kafka):
    kafka("TopicCommand", *kafka.args, "--create", "--topic", "tools-g", "--partitions", "1")
    lines = "".join(f"k{i}:v{i}\n" for i in range(20))
    kafka("ConsoleProducer", *kafka.args, "--topic", "tools-g", "--property", "parse.key=true",
          "--property", "key.separator=:", stdin=lines)
    out = kafka("consumer.ConsoleConsumer", *kafka.args, "--topic", "tools-g", "--from-beginning",
                "--max-messages", "20", "--property", "print.key=true", "--group", "tools-cg", "--timeout-ms", "30000")
    assert [line.split("\t") for line in out.splitlines()] == [[f"k{i}", f"v{i}"] for i in range(20)]
    assert committed(kafka.bootstrap, "tools-cg", "tools-g") == 20
    groups = "consumer.group.ConsumerGroupCommand"
    assert "tools-cg" in kafka(groups, *kafka.args, "--list").split()
    (row,) = table(kafka(groups, *kafka.args, "--describe", "--group", "tools-cg"), "GROUP")
    assert (row["TOPIC"], row["CURRENT-OFFSET"], row["LOG-END-OFFSET"], row["LAG"]) == ("tools-g", "20", "20", "0")
    reset = kafka(groups, *kafka.args, "--reset-offsets", "--group", "tools-cg", "--topic", "tools-g",
                  "--to-offset", "5", "--execute")
    assert table(reset, "GROUP")[0]["NEW-OFFSET"] == "5"
    assert committed(kafka.bootstrap, "tools-cg", "tools-g") == 5
    deleted = kafka(groups, *kafka.args, "--delete", "--group", "tools-cg")
    assert "Deletion of requested consumer groups ('tools-cg') was successful." in deleted
    assert "tools-cg" not in kafka(groups, *kafka.args, "--list").split()


def test_perf_test_verifiable_clients_and_end_to_end_latency(kafka):
    out = kafka("ProducerPerformance", "--topic", "tools-p", "--num-records", "20000", "--record-size", "100",
                "--throughput", "-1", "--producer-props", f"bootstrap.servers={kafka.bootstrap}", "acks=all")
    assert re.search(r"^20000 records sent, [\d.]+ records/sec", out, re.M), out
    consumed = kafka("ConsumerPerformance", *kafka.args, "--topic", "tools-p", "--messages", "20000",
                     "--timeout", "30000")
    assert ", 20000, " in consumed.splitlines()[-1], consumed
    events = [json.loads(line) for line in kafka("VerifiableProducer", *kafka.args, "--topic", "tools-v",
                                                 "--max-messages", "300", "--acks", "-1").splitlines()
              if line.startswith("{")]
    (data,) = [e for e in events if e["name"] == "tool_data"]
    assert (data["sent"], data["acked"]) == (300, 300)
    offsets = sorted(e["offset"] for e in events if e["name"] == "producer_send_success")
    assert offsets == list(range(300))
    events = [json.loads(line) for line in kafka("VerifiableConsumer", *kafka.args, "--topic", "tools-v",
                                                 "--group-id", "tools-vg", "--max-messages", "300").splitlines()
              if line.startswith("{")]
    assert sum(e["count"] for e in events if e["name"] == "records_consumed") == 300
    assert committed(kafka.bootstrap, "tools-vg", "tools-v") == 300
    latency = kafka("EndToEndLatency", kafka.bootstrap, "tools-e", "200", "1", "100")
    assert re.search(r"^Avg latency: [\d.]+ ms", latency, re.M), latency


def test_get_offsets_and_delete_records(kafka, tmp_path):
    kafka("TopicCommand", *kafka.args, "--create", "--topic", "tools-o", "--partitions", "2")
    produce(kafka.bootstrap, "tools-o", 40, partition=0)
    produce(kafka.bootstrap, "tools-o", 7, partition=1)
    latest = kafka("GetOffsetShell", *kafka.args, "--topic", "tools-o")
    assert sorted(latest.split()) == ["tools-o:0:40", "tools-o:1:7"]
    plan = tmp_path / "delete.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [{"topic": "tools-o", "partition": 0, "offset": 25}]}))
    out = kafka("DeleteRecordsCommand", *kafka.args, "--offset-json-file", str(plan))
    assert "partition: tools-o-0\tlow_watermark: 25" in out
    earliest = kafka("GetOffsetShell", *kafka.args, "--topic", "tools-o", "--time", "-2")
    assert sorted(earliest.split()) == ["tools-o:0:25", "tools-o:1:0"]


def test_metadata_quorum_describes_the_lone_broker_as_its_quorum(kafka):
    status = dict(re.findall(r"^(\w+):\s+(.*)$", kafka("MetadataQuorumCommand", *kafka.args, "describe", "--status"),
                             re.M))
    assert (status["LeaderId"], status["LeaderEpoch"], status["CurrentVoters"].startswith("[{\"id\": 0")) == (
        "0", "0", True), status
    replication = table(kafka("MetadataQuorumCommand", *kafka.args, "describe", "--replication"), "NodeId")
    assert [(r["NodeId"], r["Status"]) for r in replication] == [("0", "Leader")]
