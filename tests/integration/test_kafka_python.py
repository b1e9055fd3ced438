"""kafka-python (pure-Python client, 3.x) against a real kavka broker on loopback.

The same round trip as test_confluent: keyed records with headers and explicit
timestamps over 3 partitions, with every codec kafka-python can use here, read
back with ``assign()`` (no consumer groups).  Then offsets by time and the
watermarks, the idempotent producer (kafka-python's default), and the admin client.
"""

from __future__ import annotations

import time

import pytest

kafka = pytest.importorskip("kafka")
from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka import codec as kafka_codec  # noqa: E402
from kafka.admin import (  # noqa: E402
    ConfigResource,
    ConfigResourceType,
    KafkaAdminClient,
    NewPartitions,
    NewTopic,
)
from kafka.errors import (  # noqa: E402
    InvalidPartitionsError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)

from kafka_helpers import BASE_TS, sample_records, stored_batches  # noqa: E402

TIMEOUT_MS = 15_000
# codec name -> (is it usable with the installed packages, attribute bits in a stored batch)
CODECS = {
    None: (lambda: True, 0),
    "gzip": (kafka_codec.has_gzip, 1),
    "snappy": (kafka_codec.has_snappy, 2),
    "lz4": (kafka_codec.has_lz4, 3),
    "zstd": (kafka_codec.has_zstd, 4),
}


# -- helpers -------------------------------------------------------------------------------

def admin_client(broker) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers, request_timeout_ms=TIMEOUT_MS)


def create_topic(broker, name: str, partitions: int = 3, configs: dict | None = None) -> None:
    admin = admin_client(broker)
    try:
        admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {})])
    finally:
        admin.close()


def produce(broker, topic: str, records, flush_every: int = 0, **conf) -> list:
    """Send (partition, key, value, headers, ts) records; return (partition, offset, key) acks.

    ``flush_every`` n records, wait for them: spreads the records over more batches.
    """
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, linger_ms=5,
                             request_timeout_ms=TIMEOUT_MS, max_block_ms=TIMEOUT_MS, **conf)
    try:
        futures = []
        for i, (partition, key, value, headers, ts) in enumerate(records, 1):
            futures.append((key, producer.send(topic, value=value, key=key, headers=headers,
                                               partition=partition, timestamp_ms=ts)))
            if flush_every and i % flush_every == 0:
                producer.flush(timeout=30)
        producer.flush(timeout=30)
        acked = []
        for key, future in futures:
            meta = future.get(timeout=10)
            acked.append((meta.partition, meta.offset, key))
        return acked
    finally:
        producer.close(timeout=5)


def new_consumer(broker) -> KafkaConsumer:
    return KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, group_id=None,
                         enable_auto_commit=False, auto_offset_reset="earliest",
                         request_timeout_ms=TIMEOUT_MS)


def consume_all(broker, topic: str, partitions: int, expected: int, timeout: float = 20.0) -> list:
    consumer = new_consumer(broker)
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        consumer.seek_to_beginning()
        messages = []
        deadline = time.monotonic() + timeout
        while len(messages) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                messages.extend(batch)
        return messages
    finally:
        consumer.close()


def by_partition(messages) -> dict[int, list]:
    result: dict[int, list] = {}
    for m in messages:
        result.setdefault(m.partition, []).append(
            (m.offset, m.key, m.value, list(m.headers or []), m.timestamp))
    return result


def assert_round_trip(records, messages, partitions: int = 3) -> None:
    got = by_partition(messages)
    assert set(got) <= set(range(partitions))
    for partition in range(partitions):
        sent = [(k, v, h, ts) for p, k, v, h, ts in records if p == partition]
        received = got.get(partition, [])
        assert [r[0] for r in received] == list(range(len(sent))), "offsets dense and in order"
        assert [(k, v, h, ts) for _o, k, v, h, ts in received] == sent


# -- produce / consume ---------------------------------------------------------------------

@pytest.mark.parametrize("codec", list(CODECS), ids=lambda c: c or "none")
def test_roundtrip_keyed_records_with_headers_and_timestamps(broker, codec):
    usable, codec_bits = CODECS[codec]
    if not usable():
        pytest.skip(f"kafka-python has no {codec} library here")
    topic = f"kp-rt-{codec or 'none'}"
    create_topic(broker, topic)
    records = sample_records(60)
    acked = produce(broker, topic, records, compression_type=codec)
    assert sorted(acked) == sorted(
        (p, offset, k) for p in range(3)
        for offset, k in enumerate(k for rp, k, *_ in records if rp == p))
    assert_round_trip(records, consume_all(broker, topic, 3, len(records)))
    for partition in range(3):
        batches = stored_batches(broker, topic, partition)
        assert batches and {b["codec"] for b in batches} == {codec_bits}
        assert {b["magic"] for b in batches} == {2}
        assert sum(b["count"] for b in batches) == 20


def test_null_key_value_and_empty_fields(broker):
    topic = "kp-nulls"
    records = [(0, None, b"no key", [], BASE_TS), (0, b"tombstone", None, [], BASE_TS),
               (0, b"", b"", [("empty", b"")], BASE_TS + 1),
               (0, b"k", bytes(range(256)), [("bin", bytes(range(256)))], BASE_TS + 2)]
    create_topic(broker, topic, partitions=1)
    produce(broker, topic, records)
    assert_round_trip(records, consume_all(broker, topic, 1, len(records)), partitions=1)


def test_offsets_for_times_and_watermarks(broker):
    topic = "kp-times"
    create_topic(broker, topic, partitions=2)
    records = [(0, b"k", f"v{i}".encode(), [], BASE_TS + i * 10) for i in range(100)]
    produce(broker, topic, records, flush_every=7)  # the timestamps spread over many batches
    assert len(stored_batches(broker, topic, 0)) >= 100 // 7
    tp, empty = TopicPartition(topic, 0), TopicPartition(topic, 1)
    consumer = new_consumer(broker)
    try:
        queries = {BASE_TS: 0, BASE_TS + 250: 25, BASE_TS + 255: 26, 1: 0, BASE_TS + 990: 99}
        for ts, expected in queries.items():
            found = consumer.offsets_for_times({tp: ts})[tp]
            assert found is not None and found.offset == expected, (ts, found)
            assert found.timestamp == BASE_TS + expected * 10
        assert consumer.offsets_for_times({tp: BASE_TS + 991, empty: BASE_TS}) == {tp: None, empty: None}
        assert consumer.beginning_offsets([tp, empty]) == {tp: 0, empty: 0}
        assert consumer.end_offsets([tp, empty]) == {tp: 100, empty: 0}
        # seek to the offset found by time and read from there
        consumer.assign([tp])
        consumer.seek(tp, consumer.offsets_for_times({tp: BASE_TS + 905})[tp].offset)
        tail = []
        deadline = time.monotonic() + 10
        while len(tail) < 9 and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                tail.extend(batch)
        assert [(m.offset, m.value) for m in tail] == [(i, f"v{i}".encode()) for i in range(91, 100)]
    finally:
        consumer.close()


def test_idempotent_producer(broker):
    topic = "kp-idem"
    create_topic(broker, topic)
    records = sample_records(300)
    acked = produce(broker, topic, records, enable_idempotence=True, acks="all", compression_type="gzip")
    assert len(acked) == 300
    assert_round_trip(records, consume_all(broker, topic, 3, 300))
    producer_ids = set()
    for partition in range(3):
        batches = stored_batches(broker, topic, partition)
        # every batch carries the producer id and gap-free sequences from 0
        sequence = 0
        for batch in batches:
            assert batch["producer_id"] >= 0 and batch["producer_epoch"] >= 0
            assert batch["base_sequence"] == sequence
            sequence += batch["count"]
            producer_ids.add(batch["producer_id"])
        assert sequence == 100
    assert len(producer_ids) == 1


def test_auto_created_topic(broker):
    acked = produce(broker, "kp-auto", [(None, b"k", b"v", [], BASE_TS)])
    assert acked[0][1:] == (0, b"k")
    consumer = new_consumer(broker)
    try:
        assert consumer.partitions_for_topic("kp-auto") == {0, 1, 2}
    finally:
        consumer.close()


# -- admin client --------------------------------------------------------------------------

def test_admin_create_describe_grow_delete(broker):
    admin = admin_client(broker)
    try:
        admin.create_topics([NewTopic("kp-admin", 2, 1, topic_configs={"retention.ms": "60000",
                                                                        "cleanup.policy": "compact"}),
                             NewTopic("kp-other", 1, 1)])
        assert {"kp-admin", "kp-other"} <= set(admin.list_topics())
        with pytest.raises(TopicAlreadyExistsError):
            admin.create_topics([NewTopic("kp-other", 1, 1)])

        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, "kp-admin")],
                                           config_filter="all")
        configs = described["topic"]["kp-admin"]
        assert configs["retention.ms"]["value"] == "60000"
        assert configs["cleanup.policy"]["value"] == "compact"
        assert configs["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
        assert configs["segment.bytes"]["config_source"] == "DEFAULT_CONFIG"

        admin.create_partitions({"kp-admin": NewPartitions(total_count=4)})
        with pytest.raises(InvalidPartitionsError):
            admin.create_partitions({"kp-admin": NewPartitions(total_count=3)})
        [meta] = admin.describe_topics(["kp-admin"])
        assert sorted(p["partition_index"] for p in meta["partitions"]) == [0, 1, 2, 3]
    finally:
        admin.close()

    # the new partitions take records like the old ones
    records = [(p, f"k{p}".encode(), f"v{p}".encode(), [("p", str(p).encode())], BASE_TS + p)
               for p in range(4)]
    produce(broker, "kp-admin", records)
    assert_round_trip(records, consume_all(broker, "kp-admin", 4, 4), partitions=4)

    admin = admin_client(broker)
    try:
        admin.delete_topics(["kp-admin"])
        with pytest.raises(UnknownTopicOrPartitionError):
            admin.delete_topics(["kp-admin"])
        topics = set(admin.list_topics())
        assert "kp-admin" not in topics and "kp-other" in topics
    finally:
        admin.close()
