"""Admin APIs through real clients on loopback: confluent-kafka (librdkafka) and kafka-python.

CreateTopics, DescribeConfigs, CreatePartitions, DescribeCluster and
DeleteTopics, each with the success path and the error a client must surface.
"""

from __future__ import annotations

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import KafkaError, KafkaException  # noqa: E402
from confluent_kafka.admin import (  # noqa: E402
    AdminClient,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

TIMEOUT = 15


def _confluent(broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap_servers, "socket.timeout.ms": 10000})


def _error_code(future) -> int:
    with pytest.raises(KafkaException) as caught:
        future.result(TIMEOUT)
    return caught.value.args[0].code()


# -- confluent-kafka -----------------------------------------------------------------------

def test_confluent_create_topics(kavka_broker):
    admin = _confluent(kavka_broker)
    futures = admin.create_topics(
        [NewTopic("orders", 3, 1, config={"retention.ms": "60000"}), NewTopic("audit", 1, 1)],
        operation_timeout=10)
    for future in futures.values():
        future.result(TIMEOUT)
    topics = admin.list_topics(timeout=TIMEOUT).topics
    assert len(topics["orders"].partitions) == 3
    assert len(topics["audit"].partitions) == 1


def test_confluent_create_topics_errors(kavka_broker):
    admin = _confluent(kavka_broker)
    admin.create_topics([NewTopic("taken", 1, 1)])["taken"].result(TIMEOUT)
    futures = admin.create_topics([
        NewTopic("taken", 1, 1),
        NewTopic("bad name", 1, 1),
        NewTopic("too-many-replicas", 1, 3),
        NewTopic("bad-config", 1, 1, config={"cleanup.policy": "shred"}),
    ])
    assert _error_code(futures["taken"]) == KafkaError.TOPIC_ALREADY_EXISTS
    assert _error_code(futures["bad name"]) == KafkaError.TOPIC_EXCEPTION
    assert _error_code(futures["too-many-replicas"]) == KafkaError.INVALID_REPLICATION_FACTOR
    assert _error_code(futures["bad-config"]) == KafkaError.INVALID_CONFIG


def test_confluent_create_topics_validate_only(kavka_broker):
    admin = _confluent(kavka_broker)
    admin.create_topics([NewTopic("dry-run", 2, 1)], validate_only=True)["dry-run"].result(TIMEOUT)
    assert "dry-run" not in admin.list_topics(timeout=TIMEOUT).topics


def test_confluent_describe_configs(kavka_broker):
    admin = _confluent(kavka_broker)
    admin.create_topics([NewTopic("configured", 1, 1, config={"retention.ms": "60000"})])["configured"].result(TIMEOUT)
    resource = ConfigResource(ResourceType.TOPIC, "configured")
    configs = admin.describe_configs([resource])[resource].result(TIMEOUT)
    retention = configs["retention.ms"]
    assert retention.value == "60000"
    assert retention.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert configs["segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    assert configs["segment.bytes"].value == "1073741824"

    broker = ConfigResource(ResourceType.BROKER, "0")
    broker_configs = admin.describe_configs([broker])[broker].result(TIMEOUT)
    assert broker_configs["num.partitions"].value == "1"

    missing = ConfigResource(ResourceType.TOPIC, "nowhere")
    assert _error_code(admin.describe_configs([missing])[missing]) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_confluent_create_partitions(kavka_broker):
    admin = _confluent(kavka_broker)
    admin.create_topics([NewTopic("growing", 1, 1)])["growing"].result(TIMEOUT)
    admin.create_partitions([NewPartitions("growing", 4)])["growing"].result(TIMEOUT)
    assert len(admin.list_topics(timeout=TIMEOUT).topics["growing"].partitions) == 4
    shrink = admin.create_partitions([NewPartitions("growing", 2)])["growing"]
    assert _error_code(shrink) == KafkaError.INVALID_PARTITIONS
    unknown = admin.create_partitions([NewPartitions("nowhere", 2)])["nowhere"]
    assert _error_code(unknown) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_confluent_describe_cluster(kavka_broker):
    admin = _confluent(kavka_broker)  # kept referenced: a collected client fails its futures
    description = admin.describe_cluster(request_timeout=TIMEOUT).result(TIMEOUT)
    assert description.cluster_id
    assert [node.id for node in description.nodes] == [0]
    assert description.controller.id == 0


def test_confluent_delete_topics(kavka_broker):
    admin = _confluent(kavka_broker)
    admin.create_topics([NewTopic("doomed", 1, 1)])["doomed"].result(TIMEOUT)
    admin.delete_topics(["doomed"], operation_timeout=10)["doomed"].result(TIMEOUT)
    assert "doomed" not in admin.list_topics(timeout=TIMEOUT).topics
    again = admin.delete_topics(["doomed"])["doomed"]
    assert _error_code(again) == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_confluent_delete_disabled(kavka_broker_factory):
    broker = kavka_broker_factory({"delete.topic.enable": "false"})
    admin = _confluent(broker)
    admin.create_topics([NewTopic("kept", 1, 1)])["kept"].result(TIMEOUT)
    assert _error_code(admin.delete_topics(["kept"])["kept"]) == KafkaError.TOPIC_DELETION_DISABLED


# -- kafka-python --------------------------------------------------------------------------

@pytest.fixture
def kafka_python_admin(kavka_broker):
    kafka_admin = pytest.importorskip("kafka.admin")
    client = kafka_admin.KafkaAdminClient(bootstrap_servers=kavka_broker.bootstrap_servers,
                                          request_timeout_ms=TIMEOUT * 1000)
    yield client
    client.close()


def test_kafka_python_admin_round_trip(kafka_python_admin):
    from kafka.admin import ConfigResource as KpConfigResource
    from kafka.admin import ConfigResourceType, NewPartitions as KpNewPartitions
    from kafka.errors import TopicAlreadyExistsError

    admin = kafka_python_admin
    admin.create_topics({"kp-topic": {"num_partitions": 2, "replication_factor": 1,
                                      "configs": {"retention.ms": "60000"}}})
    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics({"kp-topic": {"num_partitions": 1, "replication_factor": 1}})

    described = admin.describe_configs([KpConfigResource(ConfigResourceType.TOPIC, "kp-topic")],
                                       config_filter="all")
    retention = described["topic"]["kp-topic"]["retention.ms"]
    assert (retention["value"], retention["config_source"]) == ("60000", "DYNAMIC_TOPIC_CONFIG")
    modified = admin.describe_configs([KpConfigResource(ConfigResourceType.TOPIC, "kp-topic")])
    assert list(modified["topic"]["kp-topic"]) == ["retention.ms"]

    admin.create_partitions({"kp-topic": KpNewPartitions(total_count=5)})
    cluster = admin.describe_cluster()
    assert cluster["cluster_id"]
    assert cluster["controller_id"] == 0
    assert [(b["broker_id"], b["is_fenced"]) for b in cluster["brokers"]] == [(0, False)]
    assert "DESCRIBE" in cluster["authorized_operations"]

    admin.delete_topics(["kp-topic"])
    assert "kp-topic" not in admin.list_topics()
