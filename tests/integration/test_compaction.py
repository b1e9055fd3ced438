"""Compacted topics read back by real clients after the broker's cleaner ran."""

from __future__ import annotations

import asyncio
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kafka_helpers import wait_until

KEYS = 12


@pytest.fixture
def broker(kavka_broker_factory):
    return kavka_broker_factory({"num.partitions": 1, "log.cleaner.backoff.ms": 50})


def create_topic(bootstrap: str, name: str, config: dict) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, 1, 1, config=config)], operation_timeout=10)[name].result(timeout=10)


def on_loop(broker, fn):
    """Run ``fn`` on the broker's event loop (storage is not thread-safe) and return its result."""
    async def call():
        return fn()
    return asyncio.run_coroutine_threadsafe(call(), broker._loop).result(10)


def stored(broker, topic: str):
    """(offset, key, value) of every record on disk, and the active segment's base offset."""
    from kavka.protocol import records
    from kavka.protocol.record_codec import decode_records

    def read():
        plog = broker.logs.partition(topic, 0).log
        data = b"".join(s.read() for s in plog.read(plog.log_start_offset, 1 << 30).slices)
        out = [(r.offset, r.key, r.value) for p, h in records.iter_batches(data) for r in decode_records(data, p)]
        return out, plog.segments[-1].base_offset
    return on_loop(broker, read)


def compacted(broker, topic: str, tombstones_gone: bool = False):
    """(records, active base) once the closed segments hold one record per key (and no tombstone)."""
    records, active = stored(broker, topic)
    closed = [r for r in records if r[0] < active]
    keys = [k for _, k, _ in closed]
    done = len(keys) == len(set(keys)) and (not tombstones_gone or all(v is not None for _, _, v in closed))
    return done and (records, active)


def produce_history(bootstrap: str, topic: str, codec: str) -> list[tuple[bytes, bytes | None]]:
    """Updates of KEYS keys in small batches; key 3 deleted for good, key 7 deleted then revived."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "compression.type": codec,
                         "enable.idempotence": True, "acks": "all"})
    sent = []
    for i in range(400):
        key = b"key-%d" % (i % KEYS)
        value = None if i in (151, 159) else b"v%d-" % i + b"x" * 40  # key-7 at 151, key-3 at 159
        if key == b"key-3" and i > 159:
            continue
        producer.produce(topic, key=key, value=value)
        sent.append((key, value))
        if i % 8 == 7:
            assert producer.flush(10) == 0  # small batches, many segments
    producer.produce(topic, key=b"key-7", value=None)
    sent.append((b"key-7", None))
    producer.produce(topic, key=b"key-7", value=b"revived")
    sent.append((b"key-7", b"revived"))
    assert producer.flush(10) == 0
    return sent


def consume_from_zero(bootstrap: str, topic: str, end: int) -> list[tuple[int, bytes, bytes | None]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.monotonic() + 20
    try:
        while (not got or got[-1][0] < end - 1) and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.2):
                if msg.error() is None:
                    got.append((msg.offset(), msg.key(), msg.value()))
    finally:
        consumer.close()
    return got


@pytest.mark.slow
@pytest.mark.parametrize("codec", ["none", "lz4", "zstd"])
def test_compacted_topic_reads_back_from_offset_zero(broker, codec):
    bootstrap = broker.bootstrap_servers
    topic = f"table-{codec}"
    create_topic(bootstrap, topic, {"cleanup.policy": "compact", "segment.bytes": "1500",
                                    "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "200"})
    sent = produce_history(bootstrap, topic, codec)
    final = {}
    for key, value in sent:
        final[key] = value

    records, active = wait_until(lambda: compacted(broker, topic, tombstones_gone=True), timeout=20, interval=0.1)
    assert len(records) < len(sent) / 3
    got = consume_from_zero(bootstrap, topic, len(sent))
    assert got == records                                  # the client sees exactly what is stored
    assert [o for o, _, _ in got] == sorted({o for o, _, _ in got})
    assert got[-1][0] == len(sent) - 1                      # offsets are the original ones
    table = {}
    for _, key, value in got:
        table[key] = value
    assert {k: v for k, v in table.items() if v is not None} == {k: v for k, v in final.items() if v is not None}
    assert b"key-3" not in table


@pytest.mark.slow
def test_kafka_python_reads_a_compacted_topic(broker):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTopicPartition

    bootstrap = broker.bootstrap_servers
    create_topic(bootstrap, "kp-table", {"cleanup.policy": "compact", "segment.bytes": "1500",
                                         "min.cleanable.dirty.ratio": "0.01"})
    sent = produce_history(bootstrap, "kp-table", "gzip")
    records, _ = wait_until(lambda: compacted(broker, "kp-table"), timeout=20, interval=0.1)
    assert len(records) < len(sent) / 2
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    tp = KTopicPartition("kp-table", 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    got = []
    deadline = time.monotonic() + 20
    try:
        while len(got) < len(records) and time.monotonic() < deadline:
            for messages in consumer.poll(timeout_ms=200).values():
                got.extend((m.offset, m.key, m.value) for m in messages)
    finally:
        consumer.close()
    assert got == records
