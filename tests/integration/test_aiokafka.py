"""aiokafka (asyncio client, 0.14) against a real kavka broker on loopback.

aiokafka speaks only the old, non-flexible versions (Produce <= 8, Fetch <= 11,
Metadata <= 5, ListOffsets <= 5), so this covers the code paths newer clients
skip.  No pytest-asyncio: each test runs its coroutine with ``asyncio.run`` under
an overall ``asyncio.wait_for`` bound.  No consumer groups: ``group_id=None``
and ``assign()``.
"""

from __future__ import annotations

import asyncio

import pytest

aiokafka = pytest.importorskip("aiokafka")
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka import codec as aiokafka_codec  # noqa: E402

from kafka_helpers import BASE_TS, sample_records, stored_batches  # noqa: E402

TIMEOUT_MS = 15_000
TEST_TIMEOUT = 40.0
# codec name -> (is it usable with the installed packages, attribute bits in a stored batch)
CODECS = {
    None: (lambda: True, 0),
    "gzip": (aiokafka_codec.has_gzip, 1),
    "snappy": (aiokafka_codec.has_snappy, 2),
    "lz4": (aiokafka_codec.has_lz4, 3),
    "zstd": (aiokafka_codec.has_zstd, 4),
}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, TEST_TIMEOUT))


async def produce(broker, topic: str, records, **conf) -> list:
    """Send (partition, key, value, headers, ts) records; return (partition, offset, key) acks."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=5,
                                request_timeout_ms=TIMEOUT_MS, **conf)
    await producer.start()
    try:
        futures = []
        for partition, key, value, headers, ts in records:
            futures.append(await producer.send(topic, value=value, key=key, headers=headers,
                                               partition=partition, timestamp_ms=ts))
        metas = await asyncio.gather(*futures)
        return [(m.partition, m.offset, r[1]) for m, r in zip(metas, records)]
    finally:
        await producer.stop()


def new_consumer(broker) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(bootstrap_servers=broker.bootstrap_servers, group_id=None,
                            enable_auto_commit=False, auto_offset_reset="earliest",
                            request_timeout_ms=TIMEOUT_MS)


async def drain(consumer, expected: int, timeout: float = 20.0) -> list:
    messages = []

    async def loop():
        while len(messages) < expected:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                messages.extend(batch)

    try:
        await asyncio.wait_for(loop(), timeout)
    except asyncio.TimeoutError:
        pass  # the caller's comparison shows what is missing
    return messages


async def consume_all(broker, topic: str, partitions: int, expected: int) -> list:
    consumer = new_consumer(broker)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        return await drain(consumer, expected)
    finally:
        await consumer.stop()


def assert_round_trip(records, messages, partitions: int = 3) -> None:
    got: dict[int, list] = {}
    for m in messages:
        got.setdefault(m.partition, []).append(
            (m.offset, m.key, m.value, [tuple(h) for h in m.headers or ()], m.timestamp))
    assert set(got) <= set(range(partitions))
    for partition in range(partitions):
        sent = [(k, v, h, ts) for p, k, v, h, ts in records if p == partition]
        received = got.get(partition, [])
        assert [r[0] for r in received] == list(range(len(sent))), "offsets dense and in order"
        assert [(k, v, h, ts) for _o, k, v, h, ts in received] == sent


async def create_topic(broker, name: str, partitions: int = 3) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=TIMEOUT_MS)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()


# -- tests ---------------------------------------------------------------------------------

@pytest.mark.parametrize("codec", list(CODECS), ids=lambda c: c or "none")
def test_roundtrip_keyed_records_with_headers_and_timestamps(broker, codec):
    usable, codec_bits = CODECS[codec]
    if not usable():
        pytest.skip(f"aiokafka has no {codec} library here")
    topic = f"aio-rt-{codec or 'none'}"
    records = sample_records(60)

    async def scenario():
        await create_topic(broker, topic)
        acked = await produce(broker, topic, records, compression_type=codec)
        assert sorted(acked) == sorted(
            (p, offset, k) for p in range(3)
            for offset, k in enumerate(k for rp, k, *_ in records if rp == p))
        return await consume_all(broker, topic, 3, len(records))

    assert_round_trip(records, run(scenario()))
    for partition in range(3):
        batches = stored_batches(broker, topic, partition)
        assert batches and {b["codec"] for b in batches} == {codec_bits}
        assert {b["magic"] for b in batches} == {2}
        assert sum(b["count"] for b in batches) == 20


def test_null_key_value_and_empty_fields(broker):
    topic = "aio-nulls"
    records = [(0, None, b"no key", [], BASE_TS), (0, b"tombstone", None, [], BASE_TS),
               (0, b"", b"", [("empty", b"")], BASE_TS + 1),
               (0, b"k", bytes(range(256)), [("bin", bytes(range(256)))], BASE_TS + 2)]

    async def scenario():
        await create_topic(broker, topic, partitions=1)
        await produce(broker, topic, records)
        return await consume_all(broker, topic, 1, len(records))

    assert_round_trip(records, run(scenario()), partitions=1)


def test_auto_created_topic_and_default_partitions(broker):
    async def scenario():
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=TIMEOUT_MS)
        await producer.start()
        try:
            meta = await (await producer.send("aio-auto", b"v", key=b"k"))
            return meta, await producer.partitions_for("aio-auto")
        finally:
            await producer.stop()

    meta, partitions = run(scenario())
    assert meta.offset == 0 and meta.partition in (0, 1, 2)
    assert partitions == {0, 1, 2}


def test_offsets_for_times_and_watermarks(broker):
    topic = "aio-times"
    records = [(0, b"k", f"v{i}".encode(), [], BASE_TS + i * 10) for i in range(100)]

    async def scenario():
        await create_topic(broker, topic, partitions=2)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=TIMEOUT_MS)
        await producer.start()
        try:
            for start in range(0, 100, 7):  # one batch per chunk: timestamps spread over batches
                batch = producer.create_batch()
                for _p, key, value, _h, ts in records[start:start + 7]:
                    assert batch.append(key=key, value=value, timestamp=ts) is not None
                await (await producer.send_batch(batch, topic, partition=0))
        finally:
            await producer.stop()

        tp, empty = TopicPartition(topic, 0), TopicPartition(topic, 1)
        consumer = new_consumer(broker)
        await consumer.start()
        try:
            queries = {BASE_TS: 0, BASE_TS + 250: 25, BASE_TS + 255: 26, 1: 0, BASE_TS + 990: 99}
            for ts, expected in queries.items():
                found = (await consumer.offsets_for_times({tp: ts}))[tp]
                assert found is not None and found.offset == expected, (ts, found)
                assert found.timestamp == BASE_TS + expected * 10
            assert await consumer.offsets_for_times({tp: BASE_TS + 991, empty: BASE_TS}) == {tp: None, empty: None}
            assert await consumer.beginning_offsets([tp, empty]) == {tp: 0, empty: 0}
            assert await consumer.end_offsets([tp, empty]) == {tp: 100, empty: 0}
            # seek to the offset found by time and read the rest from there
            consumer.assign([tp])
            consumer.seek(tp, (await consumer.offsets_for_times({tp: BASE_TS + 905}))[tp].offset)
            tail = await drain(consumer, 9, timeout=10)
            assert [(m.offset, m.value) for m in tail] == [(i, f"v{i}".encode()) for i in range(91, 100)]
            # and back to the start
            await consumer.seek_to_beginning(tp)
            head = await drain(consumer, 100, timeout=10)
            assert [m.offset for m in head] == list(range(100))
        finally:
            await consumer.stop()

    run(scenario())
    assert len(stored_batches(broker, topic, 0)) == 15


@pytest.mark.parametrize("codec", [None, "lz4"], ids=lambda c: c or "none")
def test_idempotent_producer(broker, codec):
    topic = f"aio-idem-{codec or 'none'}"
    records = sample_records(300)

    async def scenario():
        await create_topic(broker, topic)
        acked = await produce(broker, topic, records, enable_idempotence=True, acks="all",
                              compression_type=codec)
        assert len(acked) == 300
        return await consume_all(broker, topic, 3, 300)

    assert_round_trip(records, run(scenario()))
    producer_ids = set()
    for partition in range(3):
        sequence = 0
        for batch in stored_batches(broker, topic, partition):
            # every batch carries the producer id and gap-free sequences from 0
            assert batch["producer_id"] >= 0 and batch["producer_epoch"] >= 0
            assert batch["base_sequence"] == sequence
            sequence += batch["count"]
            producer_ids.add(batch["producer_id"])
        assert sequence == 100
    assert len(producer_ids) == 1
