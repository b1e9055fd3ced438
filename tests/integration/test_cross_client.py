"""Records produced by each client are read back identically by every other client.

Clients: confluent-kafka (librdkafka 2.x), kafka-python, aiokafka and the kcat
binary (librdkafka 2.0).  Each producer writes its own topic once, with its own
codec, on one broker shared by this module; then every consumer reads every
topic with ``assign()`` from the beginning and must see the same partitions,
offsets, keys, values, headers and timestamps.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import struct
import subprocess
import time

import pytest

from kafka_helpers import BASE_TS, sample_records

# kafka-python loads its protocol schemas with importlib.resources' deprecated helpers
pytestmark = [pytest.mark.filterwarnings("ignore:read_text is deprecated:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:open_text is deprecated:DeprecationWarning")]

CLIENTS = ["confluent", "kafka-python", "aiokafka", "kcat"]
KCAT = shutil.which("kcat")
# each producer its own codec (LZ4 from a Python client: librdkafka would not send it, see test_kcat)
CODEC = {"confluent": "zstd", "kafka-python": "lz4", "aiokafka": "snappy", "kcat": "gzip"}
CODEC_BITS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
PARTITIONS = 3
TIMEOUT = 20.0


KCAT_MARKS = [pytest.mark.kcat, pytest.mark.skipif(KCAT is None, reason="kcat is not installed")]


def _clients():
    return [pytest.param(c, id=c, marks=KCAT_MARKS if c == "kcat" else []) for c in CLIENTS]


def _pairs():
    """(producer, consumer) for every pair of clients, kcat's marked and skipped without it."""
    return [pytest.param(p, c, id=f"{p}-to-{c}", marks=KCAT_MARKS if "kcat" in (p, c) else [])
            for p in CLIENTS for c in CLIENTS]


# -- what is sent --------------------------------------------------------------------------

def library_records():
    """(partition, key, value, headers, timestamp) for clients that set all of them."""
    return sample_records(30, PARTITIONS) + [
        (0, None, b"no key", [("h1", b"nk")], BASE_TS + 100_000),
        (1, b"tombstone", None, [], BASE_TS + 100_001),
        (2, b"", b"", [("", b"")], BASE_TS + 100_002),
    ]


def kcat_lines(partition: int) -> tuple[list[bytes], list[tuple[str, bytes]]]:
    """kcat -P -K: -Z input for one partition and the headers every record gets."""
    lines = [f"key-{partition}-{i}:value-{partition}-{i}-{'x' * i}".encode() for i in range(10)]
    lines += [b"k-null-value:", b":null-key"]  # with -Z an empty side is sent as null
    return lines, [("h1", f"hv{partition}".encode()), ("h2", b"")]


def kcat_expected(partition: int, before: int, after: int) -> list[tuple]:
    lines, headers = kcat_lines(partition)
    expected = []
    for offset, line in enumerate(lines):
        key, _, value = line.partition(b":")
        expected.append((partition, offset, key or None, value or None, tuple(headers), (before, after)))
    return expected


# -- producers: each returns the expected records as (p, offset, key, value, headers, ts) ------

def expected_from(records) -> list[tuple]:
    expected, next_offset = [], [0] * PARTITIONS
    for partition, key, value, headers, ts in records:
        expected.append((partition, next_offset[partition], key, value, tuple(headers), ts))
        next_offset[partition] += 1
    return expected


def produce_confluent(bootstrap: str, topic: str) -> list[tuple]:
    from confluent_kafka import Producer

    records, errors = library_records(), []
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "compression.type": CODEC["confluent"],
                         "enable.idempotence": True})
    for partition, key, value, headers, ts in records:
        producer.produce(topic, value=value, key=key, partition=partition, headers=headers, timestamp=ts,
                         on_delivery=lambda err, _msg: err and errors.append(err))
    assert producer.flush(TIMEOUT) == 0 and not errors, errors
    return expected_from(records)


def produce_kafka_python(bootstrap: str, topic: str) -> list[tuple]:
    from kafka import KafkaProducer

    records = library_records()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, compression_type=CODEC["kafka-python"],
                             max_block_ms=int(TIMEOUT * 1000))
    try:
        futures = [producer.send(topic, value=v, key=k, headers=h, partition=p, timestamp_ms=ts)
                   for p, k, v, h, ts in records]
        producer.flush(timeout=TIMEOUT)
        for future in futures:
            future.get(timeout=TIMEOUT)
    finally:
        producer.close(timeout=5)
    return expected_from(records)


def produce_aiokafka(bootstrap: str, topic: str) -> list[tuple]:
    from aiokafka import AIOKafkaProducer

    records = library_records()

    async def run():
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, compression_type=CODEC["aiokafka"],
                                    enable_idempotence=True)
        await producer.start()
        try:
            futures = [await producer.send(topic, value=v, key=k, headers=h, partition=p, timestamp_ms=ts)
                       for p, k, v, h, ts in records]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(asyncio.wait_for(run(), TIMEOUT))
    return expected_from(records)


def produce_kcat(bootstrap: str, topic: str) -> list[tuple]:
    expected = []
    for partition in range(PARTITIONS):
        lines, headers = kcat_lines(partition)
        header_args = [a for k, v in headers for a in ("-H", f"{k}={v.decode()}")]
        before = int(time.time() * 1000)
        kcat(bootstrap, "-P", "-t", topic, "-p", str(partition), "-K:", "-Z", "-z", CODEC["kcat"], *header_args,
             input=b"".join(line + b"\n" for line in lines))
        expected += kcat_expected(partition, before - 1000, int(time.time() * 1000) + 1000)
    return expected


def kcat(bootstrap: str, *args: str, input: bytes | None = None) -> str:
    result = subprocess.run([KCAT, "-b", bootstrap, *args], input=input, capture_output=True, timeout=30)
    assert result.returncode == 0, (args, result.stderr.decode(errors="replace"))
    return result.stdout.decode()


PRODUCERS = {"confluent": produce_confluent, "kafka-python": produce_kafka_python,
             "aiokafka": produce_aiokafka, "kcat": produce_kcat}


# -- consumers: each returns (p, offset, key, value, headers, ts) for every record ------------

def consume_confluent(bootstrap: str, topic: str, expected: int) -> list[tuple]:
    from confluent_kafka import Consumer, KafkaError, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "cross-assign",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
    got, deadline = [], time.monotonic() + TIMEOUT
    try:
        while len(got) < expected and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=1000, timeout=0.2):
                if m.error():
                    assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                    continue
                got.append((m.partition(), m.offset(), m.key(), m.value(),
                            tuple(m.headers() or ()), m.timestamp()[1]))
    finally:
        consumer.close()
    return got


def consume_kafka_python(bootstrap: str, topic: str, expected: int) -> list[tuple]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    got, deadline = [], time.monotonic() + TIMEOUT
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        consumer.seek_to_beginning()
        while len(got) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                got += [(m.partition, m.offset, m.key, m.value, tuple(m.headers or ()), m.timestamp)
                        for m in batch]
    finally:
        consumer.close()
    return got


def consume_aiokafka(bootstrap: str, topic: str, expected: int) -> list[tuple]:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    got = []

    async def run():
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while len(got) < expected:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    got.extend((m.partition, m.offset, m.key, m.value,
                                tuple(tuple(h) for h in m.headers or ()), m.timestamp) for m in batch)
        finally:
            await consumer.stop()

    try:
        asyncio.run(asyncio.wait_for(run(), TIMEOUT))
    except asyncio.TimeoutError:
        pass  # the comparison shows what is missing
    return got


def consume_kcat(bootstrap: str, topic: str, expected: int) -> list[tuple]:
    def raw(text):
        return None if text is None else text.encode()

    out = kcat(bootstrap, "-C", "-t", topic, "-e", "-o", "beginning", "-J", "-q")
    got = []
    for line in filter(None, out.splitlines()):
        r = json.loads(line)
        flat = r.get("headers") or []
        headers = tuple((flat[i], raw(flat[i + 1])) for i in range(0, len(flat), 2))
        got.append((r["partition"], r["offset"], raw(r["key"]), raw(r["payload"]), headers, r["ts"]))
    return got


CONSUMERS = {"confluent": consume_confluent, "kafka-python": consume_kafka_python,
             "aiokafka": consume_aiokafka, "kcat": consume_kcat}


# -- the matrix ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shared_broker(tmp_path_factory):
    from kavka.broker import Broker

    broker = Broker(tmp_path_factory.mktemp("cross-client"), port=0, config={"num.partitions": str(PARTITIONS)})
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture(scope="module")
def produced(shared_broker):
    """producer name -> (topic, expected records), each producer run once per module."""
    done: dict[str, tuple[str, list]] = {}

    def get(producer: str):
        if producer not in done:
            topic = f"cross-{producer}"
            done[producer] = (topic, PRODUCERS[producer](shared_broker.bootstrap_servers, topic))
        return done[producer]

    return get


def normalise(expected_row, got_row):
    """The expected row, with a (low, high) timestamp window replaced by the value seen in it."""
    *fields, ts = expected_row
    if isinstance(ts, tuple):
        low, high = ts
        ts = got_row[5] if low <= got_row[5] <= high else ts
    return (*fields, ts)


@pytest.mark.slow
@pytest.mark.parametrize(("producer", "consumer"), _pairs())
def test_records_read_back_identically(shared_broker, produced, producer, consumer):
    topic, expected = produced(producer)
    got = CONSUMERS[consumer](shared_broker.bootstrap_servers, topic, len(expected))
    got.sort(key=lambda row: (row[0], row[1]))  # per-partition order is checked by the offsets
    expected = sorted(expected, key=lambda row: (row[0], row[1]))
    assert len(got) == len(expected), f"{consumer} read {len(got)} of {len(expected)} records"
    assert [normalise(e, g) for e, g in zip(expected, got)] == got


@pytest.mark.parametrize("producer", _clients())
def test_batches_stored_with_the_producers_codec(shared_broker, produced, producer):
    topic, expected = produced(producer)
    codecs, count = set(), 0
    for partition in range(PARTITIONS):
        path = shared_broker.data_dir / f"{topic}-{partition}"
        for segment in sorted(path.glob("*.log")):
            data, pos = segment.read_bytes(), 0
            while pos + 61 <= len(data):  # v2 batch header: length at 8, attributes at 21, count at 57
                length, = struct.unpack_from(">i", data, pos + 8)
                attributes, = struct.unpack_from(">h", data, pos + 21)
                records, = struct.unpack_from(">i", data, pos + 57)
                codecs.add(attributes & 7)
                count += records
                pos += 12 + length
    assert count == len(expected)
    wanted = CODEC_BITS[CODEC[producer]]
    if producer in ("confluent", "kcat"):
        # librdkafka sends a batch uncompressed when compressing does not make it smaller
        # (a batch of one short record, when the batching timing splits the records)
        assert wanted in codecs and codecs <= {0, wanted}, codecs
    else:
        assert codecs == {wanted}
