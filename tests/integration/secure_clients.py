"""Produce-and-consume round trips with given security settings (confluent-kafka and
aiokafka), shared by the TLS and SASL client tests."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Producer

EXPECTED = [f"m{i}".encode() for i in range(5)]


def roundtrip(conf: dict, topic: str, values: list[bytes] = EXPECTED, consumer_conf: dict | None = None,
              timeout: float = 20) -> list[bytes]:
    """Produce ``values`` to ``topic`` and read back what a new group consumes (bootstrap in ``conf``)."""
    producer = Producer(conf)
    for value in values:
        producer.produce(topic, value)
    assert producer.flush(30) == 0
    consumer = Consumer({**conf, "group.id": f"g-{topic}", "auto.offset.reset": "earliest", **(consumer_conf or {})})
    consumer.subscribe([topic])
    return poll_values(consumer, len(values), timeout)


def poll_values(consumer, count: int, timeout: float = 20.0) -> list[bytes]:
    """Values a confluent-kafka consumer polls until it has ``count`` or ``timeout`` s passed;
    the consumer is closed (shared with the cluster tests)."""
    got: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
    finally:
        consumer.close()
    return got


async def aio_roundtrip(topic: str, **common) -> list[bytes]:
    """The same with aiokafka; ``common``: the producer's and consumer's keyword arguments."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    producer = AIOKafkaProducer(**common)
    await producer.start()
    try:
        for value in EXPECTED:
            await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(topic, auto_offset_reset="earliest", **common)
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=8000, max_records=len(EXPECTED))
        return [m.value for records in batches.values() for m in records]
    finally:
        await consumer.stop()
