"""Incremental fetch sessions (KIP-227) end to end with kafka-python, which opens them.

kafka-python 3.x sends ``session_epoch`` 0, then incremental requests (Fetch v12, by topic
name).  librdkafka (confluent-kafka) and aiokafka send full requests without a session.
What the consumer received is recorded by wrapping its fetch-response handler: after the
session exists, every response carries its id and only partitions with records or moved
watermarks, and every record arrives exactly once.
"""

from __future__ import annotations

import time

import pytest

kafka = pytest.importorskip("kafka")
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient, NewTopic  # noqa: E402

PARTITIONS = 200
WAVES = 10
PER_WAVE = 10         # partitions written in each wave
RECORDS = 5           # records per partition per wave


def _create(broker, name: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=15000)
    try:
        admin.create_topics([NewTopic(name, PARTITIONS, 1)])
    finally:
        admin.close()


def _recording(consumer) -> list:
    """Wrap the consumer's fetch-response handler; returns the list it appends
    (session id, {partition: (high watermark, bytes of records, error)}) to."""
    seen: list = []
    fetcher = consumer._fetcher
    original = fetcher._handle_fetch_response

    def handle(node_id, fetch_offsets, send_time, response):
        seen.append((response.session_id, {
            p.partition_index: (p.high_watermark, len(p.records or b""), p.error_code)
            for t in response.responses for p in t.partitions}))
        return original(node_id, fetch_offsets, send_time, response)

    fetcher._handle_fetch_response = handle
    return seen


def _drain(consumer, expected: dict, got: dict, deadline: float) -> None:
    while sum(len(v) for v in got.values()) < sum(len(v) for v in expected.values()) and time.time() < deadline:
        for tp, records in consumer.poll(timeout_ms=200).items():
            got.setdefault(tp.partition, []).extend(r.value for r in records)


def test_kafka_python_consumer_uses_an_incremental_session_over_many_partitions(kavka_broker):
    topic = "sessions"
    _create(kavka_broker, topic)
    producer = KafkaProducer(bootstrap_servers=kavka_broker.bootstrap_servers, linger_ms=5)
    consumer = KafkaConsumer(bootstrap_servers=kavka_broker.bootstrap_servers, fetch_max_wait_ms=100,
                             enable_auto_commit=False, group_id=None)
    seen = _recording(consumer)
    consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
    consumer.seek_to_beginning()
    expected: dict = {}
    got: dict = {}
    deadline = time.time() + 60
    try:
        for wave in range(WAVES):
            for slot in range(PER_WAVE):
                partition = (wave * 37 + slot * 19) % PARTITIONS
                for i in range(RECORDS):
                    value = b"%d-%d-%d" % (wave, partition, i)
                    producer.send(topic, value=value, partition=partition)
                    expected.setdefault(partition, []).append(value)
            producer.flush()
            _drain(consumer, expected, got, deadline)
        cache = kavka_broker.context.fetch_sessions
        sessions = {session_id: len(s.partitions) for session_id, s in list(cache.sessions.items())}
    finally:
        consumer.close()
        producer.close()
    assert got == expected                      # every record, once, in order per partition
    session_ids = {session_id for session_id, _parts in seen}
    assert len(seen) >= WAVES and 0 not in {sid for sid, _p in seen[1:]}
    assert len(session_ids) == 1 and sessions == {next(iter(session_ids)): PARTITIONS}
    first_session, first_parts = seen[0]
    assert len(first_parts) == PARTITIONS       # the full response that created the session
    last_hw: dict = {p: hw for p, (hw, _n, _e) in first_parts.items()}
    for _sid, parts in seen[1:]:                # incremental: only partitions with news
        assert len(parts) <= PER_WAVE * 2
        for partition, (hw, size, error) in parts.items():
            assert size > 0 or hw != last_hw.get(partition) or error
            last_hw[partition] = hw


def test_kafka_python_unassigned_partitions_are_forgotten_by_the_broker(kavka_broker):
    topic = "forget"
    _create(kavka_broker, topic)
    consumer = KafkaConsumer(bootstrap_servers=kavka_broker.bootstrap_servers, fetch_max_wait_ms=50,
                             enable_auto_commit=False, group_id=None)
    cache = kavka_broker.context.fetch_sessions

    def cached_sizes() -> list:
        consumer.poll(timeout_ms=100)
        return sorted(len(s.partitions) for s in list(cache.sessions.values()))

    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        consumer.seek_to_beginning()
        deadline = time.time() + 20
        while cached_sizes() != [PARTITIONS] and time.time() < deadline:
            pass
        assert cached_sizes() == [PARTITIONS]
        consumer.assign([TopicPartition(topic, p) for p in range(10)])
        deadline = time.time() + 20
        while cached_sizes() != [10] and time.time() < deadline:
            pass
        assert cached_sizes() == [10]          # the same session, 190 partitions forgotten
    finally:
        consumer.close()
