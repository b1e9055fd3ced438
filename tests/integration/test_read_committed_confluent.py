"""read_committed over loopback: librdkafka (confluent-kafka) skips aborted and open transactions.

The transaction coordinator is not here yet, so the transactional batches are written the way
Produce writes them (Partition.append_records, on the broker's loop) and the markers with
Partition.append_marker, as WriteTxnMarkers will; plain records come from a real producer.
"""

from __future__ import annotations

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


def consume(bootstrap: str, isolation: str, expected: int, timeout: float = 20.0) -> list[bytes]:
    """The values a fresh consumer gets from t-0, reading until ``expected`` arrived and then
    1 s more (so that records the consumer should not see have had their chance)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"rc-{isolation}", "enable.auto.commit": False,
                         "isolation.level": isolation, "enable.partition.eof": False})
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout
    settle = None
    try:
        while time.monotonic() < (settle or deadline):
            for msg in consumer.consume(num_messages=500, timeout=0.2):
                if msg.error() and msg.error().code() != KafkaError._PARTITION_EOF:
                    raise AssertionError(msg.error())
                if not msg.error():
                    values.append(msg.value())
            if settle is None and len(values) >= expected:
                settle = time.monotonic() + 1.0
        return values
    finally:
        consumer.close()


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


def test_read_committed_skips_aborted_and_open_transactions(history):
    bootstrap, _ = history
    committed = [b"committed-0", b"committed-1", b"committed-2", b"plain-0", b"plain-1", b"plain-2",
                 b"committed2-0", b"committed2-1", b"committed2-2"]
    assert consume(bootstrap, "read_committed", len(committed)) == committed


def test_read_uncommitted_sees_every_record(history):
    bootstrap, _ = history
    values = consume(bootstrap, "read_uncommitted", 19)
    assert values == [b"aborted-0", b"aborted-1", b"aborted-2", b"committed-0", b"committed-1", b"committed-2",
                      b"plain-0", b"plain-1", b"plain-2",
                      b"aborted2-0", b"committed2-0", b"aborted2-1", b"committed2-1", b"aborted2-2",
                      b"committed2-2", b"open-0", b"late-0", b"late-1"]


def test_the_watermark_of_a_read_committed_consumer_is_the_lso(history):
    bootstrap, (lso, hw) = history
    assert lso < hw
    assert watermarks(bootstrap, "read_committed") == (0, lso)
    assert watermarks(bootstrap, "read_uncommitted") == (0, hw)
