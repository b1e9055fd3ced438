"""kafka-python's admin client against a live kavka: describe_log_dirs after real produces
(sizes compared with the segment files on disk) and alter_replica_log_dirs, with one log dir
and with two (placement, and a move whose records are all read back)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

kafka = pytest.importorskip("kafka")
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402
from kafka.errors import LogDirNotFoundError, NoError, UnknownTopicOrPartitionError  # noqa: E402
from kafka.structs import TopicPartitionReplica  # noqa: E402

TIMEOUT_MS = 15_000


@pytest.fixture
def admin(kavka_broker):
    client = KafkaAdminClient(bootstrap_servers=kavka_broker.bootstrap_servers, request_timeout_ms=TIMEOUT_MS)
    client.create_topics([NewTopic("sized", 2, 1), NewTopic("other", 1, 1)])
    yield client
    client.close()


def _produce(broker, topic: str, partition: int, count: int, value_size: int) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=0)
    try:
        for i in range(count):
            producer.send(topic, value=os.urandom(value_size), key=b"%d" % i, partition=partition)
        producer.flush(timeout=TIMEOUT_MS / 1000)
    finally:
        producer.close()


def _on_disk(broker, topic: str, partition: int) -> int:
    return sum(f.stat().st_size for f in (Path(broker.data_dir) / f"{topic}-{partition}").glob("*.log"))


def _partitions(log_dir: dict) -> dict[tuple[str, int], dict]:
    return {(t["name"], p["partition_index"]): p for t in log_dir["topics"] for p in t["partitions"]}


def test_describe_log_dirs_reports_real_sizes(admin, kavka_broker):
    _produce(kavka_broker, "sized", 0, 50, 1000)
    _produce(kavka_broker, "sized", 1, 5, 100)
    (answer,) = admin.describe_log_dirs()
    assert answer["broker"] == 0
    (log_dir,) = answer["log_dirs"]
    assert log_dir["error_code"] == 0
    assert log_dir["log_dir"] == os.path.abspath(kavka_broker.data_dir)
    assert 0 < log_dir["usable_bytes"] <= log_dir["total_bytes"]
    parts = _partitions(log_dir)
    assert {("sized", 0), ("sized", 1), ("other", 0)} <= set(parts)
    big, small = parts[("sized", 0)], parts[("sized", 1)]
    assert big["partition_size"] == _on_disk(kavka_broker, "sized", 0) > 50 * 1000
    assert small["partition_size"] == _on_disk(kavka_broker, "sized", 1) > 5 * 100
    assert parts[("other", 0)]["partition_size"] == 0
    assert all(p["offset_lag"] == 0 and p["is_future_key"] is False for p in parts.values())


def test_describe_log_dirs_of_one_topic(admin, kavka_broker):
    _produce(kavka_broker, "other", 0, 3, 10)
    (answer,) = admin.describe_log_dirs({"other": [0]})
    (log_dir,) = answer["log_dirs"]
    parts = _partitions(log_dir)
    assert set(parts) == {("other", 0)}
    assert parts[("other", 0)]["partition_size"] == _on_disk(kavka_broker, "other", 0) > 0


def test_alter_replica_log_dirs(admin, kavka_broker):
    _produce(kavka_broker, "sized", 0, 10, 100)
    here = os.path.abspath(kavka_broker.data_dir)
    before = _on_disk(kavka_broker, "sized", 0)
    result = admin.alter_replica_log_dirs({
        TopicPartitionReplica("sized", 0, 0): here,
        TopicPartitionReplica("missing", 0, 0): here,
        TopicPartitionReplica("other", 0, 0): "/no/such/log/dir",
    })
    assert result == {
        TopicPartitionReplica("sized", 0, 0): NoError,
        TopicPartitionReplica("missing", 0, 0): UnknownTopicOrPartitionError,
        TopicPartitionReplica("other", 0, 0): LogDirNotFoundError,
    }
    (answer,) = admin.describe_log_dirs({"sized": [0]})
    assert _partitions(answer["log_dirs"][0])[("sized", 0)]["partition_size"] == before > 0


@pytest.fixture
def two_dirs(kavka_broker_factory, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    broker = kavka_broker_factory({"log.dirs": f"{first},{second}"}, data_dir=first)
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=TIMEOUT_MS)
    client.create_topics([NewTopic("moving", 2, 1)])
    yield broker, client, str(first), str(second)
    client.close()


def _consume_all(broker, topic: str, partition: int, expected: int) -> list[tuple[int, bytes, bytes]]:
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, enable_auto_commit=False,
                             consumer_timeout_ms=TIMEOUT_MS)
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        got = []
        for message in consumer:
            got.append((message.offset, message.key, message.value))
            if len(got) == expected:
                break
        return got
    finally:
        consumer.close()


def _where(admin, topic: str) -> dict[tuple[str, int], tuple[str, int]]:
    """(topic, partition) -> (log dir, size) as DescribeLogDirs answers."""
    (answer,) = admin.describe_log_dirs({topic: [0, 1]})
    return {key: (d["log_dir"], p["partition_size"]) for d in answer["log_dirs"] for key, p in _partitions(d).items()}


def test_new_partitions_spread_over_two_log_dirs(two_dirs):
    _broker, admin, first, second = two_dirs
    where = _where(admin, "moving")
    assert {key: d for key, (d, _size) in where.items()} == {("moving", 0): first, ("moving", 1): second}
    (answer,) = admin.describe_log_dirs()
    assert [d["log_dir"] for d in answer["log_dirs"]] == [first, second]


def test_alter_replica_log_dirs_moves_a_partition_with_every_record(two_dirs):
    broker, admin, first, second = two_dirs
    sent = [(b"%d" % i, b"value-%d" % i) for i in range(200)]
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=0)
    try:
        for key, value in sent:
            producer.send("moving", key=key, value=value, partition=0)
        producer.flush(timeout=TIMEOUT_MS / 1000)
        size = _where(admin, "moving")[("moving", 0)][1]
        assert size == sum(f.stat().st_size for f in (Path(first) / "moving-0").glob("*.log")) > 0

        result = admin.alter_replica_log_dirs({TopicPartitionReplica("moving", 0, 0): second})
        assert result == {TopicPartitionReplica("moving", 0, 0): NoError}
        assert _where(admin, "moving")[("moving", 0)] == (second, size)
        assert not (Path(first) / "moving-0").exists() and (Path(second) / "moving-0").is_dir()

        got = _consume_all(broker, "moving", 0, len(sent))
        assert got == [(i, key, value) for i, (key, value) in enumerate(sent)]

        producer.send("moving", key=b"after", value=b"the move", partition=0).get(timeout=TIMEOUT_MS / 1000)
    finally:
        producer.close()
    assert _consume_all(broker, "moving", 0, len(sent) + 1)[-1] == (len(sent), b"after", b"the move")
    assert _where(admin, "moving")[("moving", 0)][1] > size
