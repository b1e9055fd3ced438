"""read_committed over loopback: librdkafka (confluent-kafka), kafka-python and aiokafka
consumers skip aborted and open transactions; read_uncommitted ones see every record.

The transaction coordinator is not here yet, so the transactional batches are written the way
Produce writes them (Partition.append_records, on the broker's loop) and the markers with
Partition.append_marker, as WriteTxnMarkers will; plain records come from a real producer.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from kavka.protocol.record_codec import encode_batch
from test_confluent import create_topic, produce

TOPIC = "txn"
PRODUCE_VERSION = 9


def _now_ms() -> int:
    return int(time.time() * 1000)


class Writer:
    """Transactional producers writing to t-0 of the broker, in-process."""

    def __init__(self, broker) -> None:
        self.broker = broker
        self.sequences: dict[int, int] = {}

    def _partition(self):
        return self.broker.logs.partition(TOPIC, 0)

    def send(self, pid: int, values: list[bytes]) -> None:
        seq = self.sequences.get(pid, 0)
        self.sequences[pid] = seq + len(values)
        now = _now_ms()
        batch = bytearray(encode_batch([(b"k", v, now, ()) for v in values], producer_id=pid, producer_epoch=0,
                                       base_sequence=seq, transactional=True))
        self.broker.call(lambda: self._partition().append_records(batch, PRODUCE_VERSION, now))

    def end(self, pid: int, commit: bool) -> int:
        return self.broker.call(lambda: self._partition().append_marker(pid, 0, commit, 0, _now_ms()))


class Until:
    """Read until ``expected`` values arrived, then 1 s more (so that records the consumer
    should not see have had their chance), or until ``timeout``."""

    def __init__(self, expected: int, timeout: float = 20.0) -> None:
        self.expected, self.deadline, self.settle = expected, time.monotonic() + timeout, None

    def more(self, values: list) -> bool:
        if self.settle is None and len(values) >= self.expected:
            self.settle = time.monotonic() + 1.0
        return time.monotonic() < (self.settle or self.deadline)


def consume_confluent(bootstrap: str, isolation: str, expected: int) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"rc-{isolation}", "enable.auto.commit": False,
                         "isolation.level": isolation, "enable.partition.eof": False})
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    values: list[bytes] = []
    until = Until(expected)
    try:
        while until.more(values):
            for msg in consumer.consume(num_messages=500, timeout=0.2):
                if msg.error() and msg.error().code() != KafkaError._PARTITION_EOF:
                    raise AssertionError(msg.error())
                if not msg.error():
                    values.append(msg.value())
        return values
    finally:
        consumer.close()


def consume_kafka_python(bootstrap: str, isolation: str, expected: int) -> list[bytes]:
    kafka = pytest.importorskip("kafka")
    consumer = kafka.KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation, enable_auto_commit=False,
                                   group_id=None)
    partition = kafka.TopicPartition(TOPIC, 0)
    consumer.assign([partition])
    consumer.seek_to_beginning(partition)
    values: list[bytes] = []
    until = Until(expected)
    try:
        while until.more(values):
            for batch in consumer.poll(timeout_ms=200).values():
                values += [msg.value for msg in batch]
        return values
    finally:
        consumer.close()


def consume_aiokafka(bootstrap: str, isolation: str, expected: int) -> list[bytes]:
    aiokafka = pytest.importorskip("aiokafka")

    async def run() -> list[bytes]:
        consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation,
                                             enable_auto_commit=False)
        await consumer.start()
        partition = aiokafka.TopicPartition(TOPIC, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        values: list[bytes] = []
        until = Until(expected)
        try:
            while until.more(values):
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    values += [msg.value for msg in batch]
            return values
        finally:
            await consumer.stop()

    return asyncio.run(run())


CONSUMERS = {"confluent": consume_confluent, "kafka-python": consume_kafka_python, "aiokafka": consume_aiokafka}


def watermarks(bootstrap: str, isolation: str) -> tuple[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "rc-watermarks", "isolation.level": isolation})
    try:
        return consumer.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10, cached=False)
    finally:
        consumer.close()


@pytest.fixture
def history(kavka_broker):
    """t-0: an aborted and a committed transaction, plain records, two interleaved
    transactions (one aborted), then a transaction left open and plain records after it."""
    bootstrap = kavka_broker.bootstrap_servers
    create_topic(bootstrap, TOPIC, partitions=1, config={"segment.bytes": "400"})
    w = Writer(kavka_broker)
    w.send(1, [b"aborted-%d" % i for i in range(3)])
    w.end(1, commit=False)
    w.send(2, [b"committed-%d" % i for i in range(3)])
    w.end(2, commit=True)
    produce(bootstrap, TOPIC, [(0, b"k", b"plain-%d" % i, None, _now_ms()) for i in range(3)])
    for i in range(3):
        w.send(1, [b"aborted2-%d" % i])
        w.send(2, [b"committed2-%d" % i])
    w.end(1, commit=False)
    w.end(2, commit=True)
    w.send(3, [b"open-0"])
    produce(bootstrap, TOPIC, [(0, b"k", b"late-%d" % i, None, _now_ms()) for i in range(2)])
    partition = kavka_broker.logs.partition(TOPIC, 0)
    return bootstrap, kavka_broker.call(lambda: (partition.last_stable_offset, partition.log.high_watermark))


@pytest.mark.parametrize("client", CONSUMERS)
def test_read_committed_skips_aborted_and_open_transactions(history, client):
    bootstrap, _ = history
    committed = [b"committed-0", b"committed-1", b"committed-2", b"plain-0", b"plain-1", b"plain-2",
                 b"committed2-0", b"committed2-1", b"committed2-2"]
    assert CONSUMERS[client](bootstrap, "read_committed", len(committed)) == committed


@pytest.mark.parametrize("client", CONSUMERS)
def test_read_uncommitted_sees_every_record(history, client):
    bootstrap, _ = history
    values = CONSUMERS[client](bootstrap, "read_uncommitted", 18)
    assert values == [b"aborted-0", b"aborted-1", b"aborted-2", b"committed-0", b"committed-1", b"committed-2",
                      b"plain-0", b"plain-1", b"plain-2",
                      b"aborted2-0", b"committed2-0", b"aborted2-1", b"committed2-1", b"aborted2-2",
                      b"committed2-2", b"open-0", b"late-0", b"late-1"]


def test_the_watermark_of_a_read_committed_consumer_is_the_lso(history):
    bootstrap, (lso, hw) = history
    assert lso < hw
    assert watermarks(bootstrap, "read_committed") == (0, lso)
    assert watermarks(bootstrap, "read_uncommitted") == (0, hw)
