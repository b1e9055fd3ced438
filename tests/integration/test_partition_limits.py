"""Partition exhaustion through the wire (issue 9, item 3; the parked Fetch of item 8).

librdkafka refuses to send more than 100,000 partitions; 1M is covered by
tests/unit/log/test_partition_limits.py."""

from __future__ import annotations

import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic


def _snapshot(data_dir):
    return sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*") if p.name != ".lock")


def _error(future) -> int:
    try:
        future.result(timeout=20)
    except Exception as exc:  # KafkaException wrapping a KafkaError
        return exc.args[0].code()
    return KafkaError.NO_ERROR


def test_a_hundred_thousand_partitions_are_refused_and_others_keep_working(kavka_broker):
    bootstrap = kavka_broker.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    assert _error(admin.create_topics([NewTopic("steady", 1, 1)])["steady"]) == KafkaError.NO_ERROR
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    producer.produce("steady", b"before")
    assert producer.flush(10) == 0
    before = _snapshot(kavka_broker.data_dir)
    for validate_only in (True, False):
        futures = admin.create_topics([NewTopic("huge", 100_000, 1)], validate_only=validate_only)
        assert _error(futures["huge"]) == KafkaError.POLICY_VIOLATION
        futures = admin.create_partitions([NewPartitions("steady", 20_000)], validate_only=validate_only)
        assert _error(futures["steady"]) == KafkaError.POLICY_VIOLATION
    assert _snapshot(kavka_broker.data_dir) == before
    assert "huge" not in admin.list_topics(timeout=10).topics
    producer.produce("steady", b"after")
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "g", "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition("steady", 0, 0)])
    got = []
    deadline = time.monotonic() + 15
    while len(got) < 2 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            got.append(msg.value())
    consumer.close()
    assert got == [b"before", b"after"]


@pytest.mark.slow
def test_many_topics_in_one_request_do_not_stall_other_clients(kavka_broker):
    bootstrap = kavka_broker.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    assert _error(admin.create_topics([NewTopic("steady", 1, 1)])["steady"]) == KafkaError.NO_ERROR
    gaps, stop = [], threading.Event()

    def probe():
        other = AdminClient({"bootstrap.servers": bootstrap})
        last = time.monotonic()
        while not stop.is_set():
            other.list_topics("steady", timeout=20)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    thread = threading.Thread(target=probe)
    thread.start()
    try:
        futures = admin.create_topics([NewTopic(f"bulk-{i}", 1, 1) for i in range(2000)], operation_timeout=60,
                                      request_timeout=120)
        assert all(_error(f) == KafkaError.NO_ERROR for f in futures.values())
    finally:
        stop.set()
        thread.join(30)
    assert len(kavka_broker.logs.topics()) >= 2001
    assert max(gaps) < 5.0, f"another client waited {max(gaps):.1f} s"


@pytest.mark.slow  # a fixed 5 s observation window
def test_a_parked_fetch_of_a_deleted_topic_answers_without_an_error_log(kavka_broker, caplog):
    bootstrap = kavka_broker.bootstrap_servers
    admin = AdminClient({"bootstrap.servers": bootstrap})
    assert _error(admin.create_topics([NewTopic("doomed", 1, 1)])["doomed"]) == KafkaError.NO_ERROR
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "g", "fetch.wait.max.ms": 3000,
                         "topic.metadata.refresh.interval.ms": 60000})
    consumer.assign([TopicPartition("doomed", 0, 0)])
    consumer.poll(1.0)  # a fetch is now parked on the empty partition
    assert _error(admin.delete_topics(["doomed"])["doomed"]) == KafkaError.NO_ERROR
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        consumer.poll(0.2)
    consumer.close()
    assert "Bad file descriptor" not in caplog.text
    assert "Traceback" not in caplog.text
