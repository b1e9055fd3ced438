"""confluent-kafka (librdkafka) against a real kavka broker on loopback."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kafka_helpers import sample_records, stored_batches

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def create_topic(bootstrap: str, name: str, partitions: int = 3, config: dict | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=config or {})], operation_timeout=10)
    futures[name].result(timeout=10)


def produce(bootstrap: str, topic: str, records, **conf) -> list:
    """Produce and return delivery reports as (partition, offset, key) for every record."""
    acked, errors = [], []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)
        else:
            acked.append((msg.partition(), msg.offset(), msg.key()))

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **conf})
    for partition, key, value, headers, ts in records:
        producer.produce(topic, value=value, key=key, partition=partition, headers=headers,
                         timestamp=ts, on_delivery=on_delivery)
    assert producer.flush(30) == 0
    assert not errors, errors
    return acked


def consume_all(bootstrap: str, topic: str, partitions: int, expected: int, timeout: float = 20.0, **conf):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "test-assign",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest", **conf})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    messages = []
    import time
    deadline = time.monotonic() + timeout
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(msg.error())
                messages.append(msg)
    finally:
        consumer.close()
    return messages


def by_partition(messages):
    result: dict[int, list] = {}
    for m in messages:
        result.setdefault(m.partition(), []).append(
            (m.offset(), m.key(), m.value(), list(m.headers() or []), m.timestamp()[1]))
    return result


@pytest.mark.parametrize("codec", CODECS)
def test_roundtrip_keyed_records_with_headers_and_timestamps(broker, codec):
    topic = f"rt-{codec}"
    create_topic(broker.bootstrap_servers, topic)
    records = sample_records(60)
    acked = produce(broker.bootstrap_servers, topic, records, **{"compression.type": codec})
    assert len(acked) == len(records)
    codec_id = CODECS.index(codec)
    stored = [b["codec"] for p in range(3) for b in stored_batches(broker, topic, p)]
    # librdkafka sends a batch uncompressed when compressing would not shrink it
    assert codec_id in stored and set(stored) <= {0, codec_id}, stored
    got = by_partition(consume_all(broker.bootstrap_servers, topic, 3, len(records)))
    for partition in range(3):
        sent = [(k, v, h, ts) for p, k, v, h, ts in records if p == partition]
        received = got.get(partition, [])
        assert [r[0] for r in received] == list(range(len(sent))), "offsets dense and in order"
        assert [(k, v, h, ts) for _o, k, v, h, ts in received] == sent


def test_offsets_for_times(broker):
    topic = "times"
    create_topic(broker.bootstrap_servers, topic, partitions=1)
    records = [(0, b"k", f"v{i}".encode(), [], 1_700_000_000_000 + i * 10) for i in range(100)]
    produce(broker.bootstrap_servers, topic, records, **{"batch.num.messages": 7})
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "t"})
    try:
        # exact hits, between two records, before all, after all
        queries = {1_700_000_000_000: 0, 1_700_000_000_250: 25, 1_700_000_000_255: 26,
                   1: 0, 1_800_000_000_000: -1}
        for ts, expected in queries.items():
            [tp] = consumer.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
            assert tp.error is None
            assert tp.offset == expected, (ts, tp.offset)
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        assert (low, high) == (0, 100)
    finally:
        consumer.close()


def test_auto_created_topic_gets_default_partitions(broker):
    acked = produce(broker.bootstrap_servers, "auto-topic", [(0, b"k", b"v", [], 1_700_000_000_000)])
    assert acked == [(0, 0, b"k")]
    meta = AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(timeout=10)
    assert len(meta.topics["auto-topic"].partitions) == 3


@pytest.mark.slow
def test_idempotent_producer_roundtrip(broker):
    topic = "idem"
    create_topic(broker.bootstrap_servers, topic)
    records = sample_records(300)
    acked = produce(broker.bootstrap_servers, topic, records, **{"enable.idempotence": True, "acks": "all"})
    assert len(acked) == 300
    got = consume_all(broker.bootstrap_servers, topic, 3, 300)
    assert sorted(m.value() for m in got) == sorted(r[2] for r in records)


def test_large_batches_and_fetch_limits(broker):
    topic = "big"
    create_topic(broker.bootstrap_servers, topic, partitions=1)
    records = [(0, None, bytes([i % 256]) * 10_000, [], 1_700_000_000_000) for i in range(500)]
    produce(broker.bootstrap_servers, topic, records, **{"batch.size": 1_000_000, "linger.ms": 50})
    got = consume_all(broker.bootstrap_servers, topic, 1, 500,
                      **{"fetch.max.bytes": 100_000, "max.partition.fetch.bytes": 50_000,
                         "message.max.bytes": 100_000})
    assert [m.offset() for m in got] == list(range(500))
    assert all(m.value() == bytes([i % 256]) * 10_000 for i, m in enumerate(got))


def test_log_append_time_topic_stamps_records_with_broker_time(broker):
    import time
    from confluent_kafka import TIMESTAMP_LOG_APPEND_TIME
    create_topic(broker.bootstrap_servers, "lat", partitions=1, config={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    produce(broker.bootstrap_servers, "lat", [(0, b"k", b"v", [], 1_000_000_000_000)])
    [msg] = consume_all(broker.bootstrap_servers, "lat", 1, 1)
    kind, ts = msg.timestamp()
    assert kind == TIMESTAMP_LOG_APPEND_TIME
    assert before <= ts <= int(time.time() * 1000)


@pytest.mark.slow
@pytest.mark.parametrize("reset, expected", [("earliest", 10), ("latest", 0)])
def test_offset_out_of_range_resets_as_the_consumer_asks(broker, reset, expected):
    create_topic(broker.bootstrap_servers, f"oor-{reset}", partitions=1)
    produce(broker.bootstrap_servers, f"oor-{reset}", [(0, None, b"v%d" % i, [], 1_700_000_000_000) for i in range(10)])
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "oor",
                         "enable.auto.commit": False, "auto.offset.reset": reset})
    consumer.assign([TopicPartition(f"oor-{reset}", 0, 1000)])  # past the end: OFFSET_OUT_OF_RANGE
    got = []
    import time
    deadline = time.monotonic() + (8 if expected else 3)
    while time.monotonic() < deadline and len(got) < 10:
        got += [m for m in consumer.consume(100, 0.2) if not m.error()]
    assert len(got) == expected
    if reset == "latest":  # the reset put it at the end: the next record is the first it sees
        produce(broker.bootstrap_servers, f"oor-{reset}", [(0, None, b"new", [], 1_700_000_000_000)])
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not got:
            got += [m for m in consumer.consume(100, 0.2) if not m.error()]
        assert [(m.offset(), m.value()) for m in got] == [(10, b"new")]
    consumer.close()
