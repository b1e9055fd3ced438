"""What the admin contract tests (test_admin_contract*.py) share: clients bound to an
``admin_target`` (admin_targets.py), bounded waits for what every broker must see, a
produce/consume round trip, and kavka's one-connection client aimed at one broker.

Errors are compared by their names as the client reports them (librdkafka calls
INVALID_TOPIC_EXCEPTION ``TOPIC_EXCEPTION``; kafka-python has one error class per
code).  In a cluster, changes reach the other brokers asynchronously (etcd
watches), so what every broker must see is polled with a bounded wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    ConfigResource,
    NewTopic,
)

TIMEOUT = 15        # seconds a client call may take


SPREAD = 10.0       # seconds a change may take to reach every broker


OFFSETS = "__consumer_offsets"


def admin(target, *ids: int) -> AdminClient:
    return AdminClient({"bootstrap.servers": target.bootstrap(*ids), "socket.timeout.ms": 10000})


def kafka_python_admin(target, *ids: int):
    from kafka.admin import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=target.bootstrap(*ids), request_timeout_ms=TIMEOUT * 1000)


def error_name(future) -> str:
    with pytest.raises(KafkaException) as caught:
        future.result(TIMEOUT)
    return caught.value.args[0].name()


def eventually(predicate: Callable[[], Any], what: str, timeout: float = SPREAD) -> Any:
    """The predicate's first truthy value within ``timeout``; the last value in the failure."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {value!r})")
        time.sleep(0.1)


def create(client: AdminClient, *topics: NewTopic) -> None:
    for future in client.create_topics(list(topics), operation_timeout=10).values():
        future.result(TIMEOUT)


def topic_metadata(target, broker_id: int, name: str):
    """The topic as one broker alone describes it (None if it does not list it)."""
    return admin(target, broker_id).list_topics(timeout=TIMEOUT).topics.get(name)


def ready_everywhere(target, name: str, partitions: int):
    """Wait until every broker lists ``partitions`` partitions of the topic, each with a
    leader and a full ISR; return the metadata from the first broker."""
    def ready(broker_id):
        t = topic_metadata(target, broker_id, name)
        return t is not None and t.error is None and len(t.partitions) == partitions and all(
            p.error is None and p.leader in p.replicas and sorted(p.isrs) == sorted(p.replicas)
            for p in t.partitions.values())
    for broker_id in target.broker_ids:
        eventually(lambda b=broker_id: ready(b), f"{name}: {partitions} led partitions at broker {broker_id}")
    return topic_metadata(target, target.broker_ids[0], name)


def listed_nowhere(target, name: str) -> None:
    for broker_id in target.broker_ids:
        eventually(lambda b=broker_id: topic_metadata(target, b, name) is None, f"{name} gone at broker {broker_id}")


def describe(client: AdminClient, name: str) -> dict:
    resource = ConfigResource("TOPIC", name)
    return client.describe_configs([resource])[resource].result(TIMEOUT)


def produce(target, topic: str, values: list[bytes], partition: int = 0, timeout: float = TIMEOUT) -> None:
    producer = Producer({"bootstrap.servers": target.bootstrap(), "acks": "all", "linger.ms": 0,
                         "message.timeout.ms": int(timeout * 1000)})
    failures = []
    for value in values:
        producer.produce(topic, value, partition=partition, on_delivery=lambda e, m: e and failures.append(e))
    assert producer.flush(timeout + 1) == 0 and not failures, failures


def consume(target, topic: str, count: int, partition: int = 0, timeout: float = TIMEOUT) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": target.bootstrap(), "group.id": f"reader-{topic}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, partition, 0)])
    out, deadline = [], time.monotonic() + timeout
    try:
        while len(out) < count and time.monotonic() < deadline:
            for message in consumer.consume(count, 0.5):
                assert message.error() is None, message.error()
                out.append(message.value())
    finally:
        consumer.close()
    return out


def high_watermark(target, topic: str, partition: int = 0) -> int:
    consumer = Consumer({"bootstrap.servers": target.bootstrap(), "group.id": f"watcher-{topic}"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT)[1]
    finally:
        consumer.close()


def round_trip(target, topic: str, partition: int = 0, n: int = 5, timeout: float = TIMEOUT) -> None:
    """Produce n records to an empty partition and read exactly them back."""
    values = [f"{topic}-{partition}-{i}".encode() for i in range(n)]
    produce(target, topic, values, partition, timeout)
    assert consume(target, topic, n, partition) == values
    assert high_watermark(target, topic, partition) == n


def commit_offset(target, group: str, topic: str, offset: int) -> None:
    consumer = Consumer({"bootstrap.servers": target.bootstrap(), "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    finally:
        consumer.close()


def described_everywhere(target, name: str, expected: dict[str, tuple[str, int]]) -> None:
    """Every broker describes the topic's ``expected`` (value, source) pairs."""
    def matches(broker_id):
        configs = describe(admin(target, broker_id), name)
        seen = {k: (configs[k].value, configs[k].source) for k in expected}
        return seen == expected or seen
    for broker_id in target.broker_ids:
        eventually(lambda b=broker_id: matches(b) is True, f"{name}'s configs at broker {broker_id}")


def code_name(code: int) -> str:
    from kafka.errors import for_code
    return for_code(code).__name__


def ask_broker(target, broker_id: int, body):
    from kavka.client import Client
    with Client(target.brokers[broker_id].bootstrap_servers, client_id="contract", timeout=TIMEOUT) as client:
        return client.request(body)


def create_request(*topics: tuple[str, int, int], validate_only: bool = False):
    import datetime

    from kio.schema.create_topics.v7.request import CreatableTopic, CreateTopicsRequest
    return CreateTopicsRequest(timeout=datetime.timedelta(seconds=10), validate_only=validate_only, topics=tuple(
        CreatableTopic(name=name, num_partitions=p, replication_factor=rf, assignments=(), configs=())
        for name, p, rf in topics))


def codes(answer, field: str) -> list[str]:
    return [code_name(r.error_code) for r in getattr(answer, field)]


def creatable_config(name: str, value: str):
    from kio.schema.create_topics.v7.request import CreatableTopicConfig
    return CreatableTopicConfig(name=name, value=value)


def uuid_of(confluent_uuid):
    """confluent-kafka's Uuid as a uuid.UUID (its str() is base64, as Kafka prints ids)."""
    import base64
    import uuid
    text = str(confluent_uuid)
    return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
