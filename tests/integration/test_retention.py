"""Retention and DeleteRecords seen by real clients (confluent-kafka, kafka-python)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

DAY = 86_400_000


@pytest.fixture
def broker(kavka_broker_factory):
    return kavka_broker_factory({"num.partitions": 1, "log.retention.check.interval.ms": 100})


def create_topic(bootstrap: str, name: str, config: dict) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, 1, 1, config=config)], operation_timeout=10)[name].result(timeout=10)


def produce(bootstrap: str, topic: str, count: int, timestamp: int = 0, prefix: str = "v") -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "batch.num.messages": 1})
    for i in range(count):
        producer.produce(topic, value=f"{prefix}{i}".encode() + b"x" * 100, key=b"k", timestamp=timestamp)
        producer.poll(0)
    assert producer.flush(20) == 0


def watermarks(bootstrap: str, topic: str) -> tuple[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "wm"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
    finally:
        consumer.close()


def wait_for_start(bootstrap: str, topic: str, above: int, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        low, _ = watermarks(bootstrap, topic)
        if low > above:
            return low
        time.sleep(0.1)
    raise AssertionError(f"log start offset of {topic} stayed at {low}")


def consume_from_zero(bootstrap: str, topic: str, reset: str, want: int, timeout: float = 15.0) -> list:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{reset}", "enable.auto.commit": False,
                         "auto.offset.reset": reset})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < want and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=500, timeout=0.2):
                if msg.error() is None:
                    got.append((msg.offset(), msg.value()))
    finally:
        consumer.close()
    return got


@pytest.mark.slow
def test_retention_ms_moves_the_start_and_consumers_reset_to_it(broker):
    bootstrap = broker.bootstrap_servers
    create_topic(bootstrap, "old-news", {"segment.bytes": "1000", "retention.ms": str(DAY)})
    produce(bootstrap, "old-news", 40, timestamp=int(time.time() * 1000) - 2 * DAY)
    produce(bootstrap, "old-news", 3, prefix="fresh")  # now-timestamped: the last segments stay
    start = wait_for_start(bootstrap, "old-news", 0)
    low, high = watermarks(bootstrap, "old-news")
    assert high == 43 and 0 < low == start < 43
    log = broker.logs.partition("old-news", 0).log
    assert log.log_start_offset == low and log.segments[0].base_offset == low

    earliest = consume_from_zero(bootstrap, "old-news", "earliest", high - low)
    assert [o for o, _ in earliest] == list(range(low, high))
    assert earliest[-1][1].startswith(b"fresh2")

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "g-latest", "auto.offset.reset": "latest"})
    consumer.assign([TopicPartition("old-news", 0, 0)])
    try:
        later = []
        for attempt in range(20):  # until the reset to the end has happened, new records show up
            produce(bootstrap, "old-news", 1, prefix=f"later{attempt}-")
            later = [(m.offset(), m.value()) for m in consumer.consume(num_messages=100, timeout=0.5)
                     if m.error() is None]
            if later:
                break
        assert later, "the latest consumer received nothing"
        assert later[0][0] >= high and later[0][1].startswith(b"later")  # jumped past the old records
    finally:
        consumer.close()


def test_retention_bytes_bounds_the_partition(broker):
    bootstrap = broker.bootstrap_servers
    create_topic(bootstrap, "bounded", {"segment.bytes": "1000", "retention.bytes": "3000"})
    produce(bootstrap, "bounded", 60)
    wait_for_start(bootstrap, "bounded", 0)
    log = broker.logs.partition("bounded", 0).log
    assert log.size_bytes >= 3000 and log.size_bytes - log.segments[0].size < 3000
    got = consume_from_zero(bootstrap, "bounded", "earliest", 60 - log.log_start_offset)
    assert [o for o, _ in got] == list(range(log.log_start_offset, 60))


def test_delete_records_with_confluent_admin(broker):
    bootstrap = broker.bootstrap_servers
    create_topic(bootstrap, "trim", {"segment.bytes": "1000"})
    produce(bootstrap, "trim", 30)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    result = admin.delete_records([TopicPartition("trim", 0, 17)])[TopicPartition("trim", 0, 17)].result(10)
    assert result.low_watermark == 17
    assert watermarks(bootstrap, "trim") == (17, 30)
    got = consume_from_zero(bootstrap, "trim", "earliest", 13)
    assert [o for o, _ in got] == list(range(17, 30))
    log = broker.logs.partition("trim", 0).log
    assert log.segments[0].base_offset <= 17 < log.segments[0].next_offset  # wholly-below segments gone
    with pytest.raises(KafkaException, match="OFFSET_OUT_OF_RANGE"):
        admin.delete_records([TopicPartition("trim", 0, 31)])[TopicPartition("trim", 0, 31)].result(10)
    end = TopicPartition("trim", 0, -1)  # OFFSET_END: everything up to the high watermark
    assert admin.delete_records([end])[end].result(10).low_watermark == 30
    assert watermarks(bootstrap, "trim") == (30, 30)


def test_delete_records_with_kafka_python(broker):
    from kafka import TopicPartition as KTopicPartition
    from kafka.admin import KafkaAdminClient
    from kafka.errors import PolicyViolationError

    bootstrap = broker.bootstrap_servers
    create_topic(bootstrap, "trim-kp", {"segment.bytes": "1000"})
    create_topic(bootstrap, "table", {"cleanup.policy": "compact"})
    produce(bootstrap, "trim-kp", 20)
    produce(bootstrap, "table", 5)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        answer = admin.delete_records({KTopicPartition("trim-kp", 0): 12}, timeout_ms=10_000)
        assert answer[KTopicPartition("trim-kp", 0)]["low_watermark"] == 12
        assert watermarks(bootstrap, "trim-kp") == (12, 20)
        with pytest.raises(PolicyViolationError):
            admin.delete_records({KTopicPartition("table", 0): 2}, timeout_ms=10_000)
    finally:
        admin.close()
    assert watermarks(bootstrap, "table") == (0, 5)


@pytest.mark.parametrize("version", [0, 1, 2])
def test_delete_records_answers_per_partition_at_every_version(broker, version):
    import datetime
    import importlib

    from kavka.client import Client

    bootstrap = broker.bootstrap_servers
    create_topic(bootstrap, "wire", {"segment.bytes": "1000"})
    create_topic(bootstrap, "wire-table", {"cleanup.policy": "compact"})
    produce(bootstrap, "wire", 10)
    produce(bootstrap, "wire-table", 3)
    m = importlib.import_module(f"kio.schema.delete_records.v{version}.request")
    asked = {("wire", 0): 4, ("wire", 7): 1, ("nope", 0): 1, ("wire-table", 0): 1}
    topics = {}
    for (name, index), offset in asked.items():
        topics.setdefault(name, []).append(m.DeleteRecordsPartition(partition_index=index, offset=offset))
    request = m.DeleteRecordsRequest(topics=tuple(
        m.DeleteRecordsTopic(name=name, partitions=tuple(parts)) for name, parts in topics.items()),
        timeout=datetime.timedelta(seconds=5))
    with Client(bootstrap) as client:
        answer = client.request(request)
        got = {(t.name, p.partition_index): (p.error_code.value, p.low_watermark)
               for t in answer.topics for p in t.partitions}
        assert got == {("wire", 0): (0, 4), ("wire", 7): (3, -1), ("nope", 0): (3, -1), ("wire-table", 0): (44, -1)}
        for offset, expected in ((2, (0, 4)), (11, (1, -1)), (-7, (1, -1)), (-1, (0, 10))):
            again = m.DeleteRecordsRequest(topics=(m.DeleteRecordsTopic(name="wire", partitions=(
                m.DeleteRecordsPartition(partition_index=0, offset=offset),)),), timeout=datetime.timedelta(0))
            [[p]] = [t.partitions for t in client.request(again).topics]
            assert (p.error_code.value, p.low_watermark) == expected, offset
