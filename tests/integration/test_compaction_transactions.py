"""A compacted topic with committed and aborted transactions (librdkafka producer and
consumers), read before and after the broker's cleaner ran.

Kafka's behaviour: before cleaning, read_uncommitted sees the aborted records and
read_committed does not; the cleaner removes the aborted records (so read_uncommitted no
longer sees them either) and compacts the committed ones by key, never letting a newer aborted
record of a key shadow its committed value.  Cleaning is held back by a large
``min.compaction.lag.ms`` until the records are read once, then released by setting it to 0.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka import admin as ck

from kafka_helpers import wait_until
from kavka.protocol import records as rb
from kavka.protocol.record_codec import decode_records
from test_compaction import create_topic

TOPIC = "txn-table"
KEYS = [b"key-%d" % k for k in range(4)]
ROUNDS = 6          # even rounds commit, odd rounds abort; the last one aborts
FILLER = 120        # plain records of other keys, so that the transactions' segments close
TIMEOUT_S = 15


@pytest.fixture
def broker(kavka_broker_factory):
    return kavka_broker_factory({"num.partitions": 1, "log.cleaner.backoff.ms": 50})


def value(r: int, key: bytes) -> bytes:
    return (b"committed" if r % 2 == 0 else b"aborted") + b"-%d-" % r + key


def write_transactions(bootstrap: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": "compact-tx", "linger.ms": 5})
    producer.init_transactions(TIMEOUT_S)
    for r in range(ROUNDS):
        producer.begin_transaction()
        errors = []
        for key in KEYS:
            producer.produce(TOPIC, key=key, value=value(r, key), partition=0,
                             on_delivery=lambda err, _msg: errors.append(err))
        assert producer.flush(TIMEOUT_S) == 0 and errors == [None] * len(KEYS)
        if r % 2 == 0:
            producer.commit_transaction(TIMEOUT_S)
        else:
            producer.abort_transaction(TIMEOUT_S)


def write_filler(bootstrap: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "enable.idempotence": True})
    for i in range(FILLER):
        producer.produce(TOPIC, key=b"fill-%d" % (i % 5), value=b"f%d-" % i + b"x" * 40, partition=0)
        if i % 5 == 4:
            assert producer.flush(TIMEOUT_S) == 0
    assert producer.flush(TIMEOUT_S) == 0


def consume(bootstrap: str, isolation: str, last_offset: int) -> list[tuple[int, bytes, bytes]]:
    """(offset, key, value) from offset 0 until ``last_offset`` arrived, then 0.5 s more."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"compact-{isolation}",
                         "enable.auto.commit": False, "isolation.level": isolation})
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    got: list[tuple[int, bytes, bytes]] = []
    deadline, settle = time.monotonic() + 20, None
    try:
        while time.monotonic() < (settle or deadline):
            for msg in consumer.consume(num_messages=500, timeout=0.2):
                if msg.error() and msg.error().code() != KafkaError._PARTITION_EOF:
                    raise AssertionError(msg.error())
                if not msg.error():
                    got.append((msg.offset(), msg.key(), msg.value()))
            if settle is None and got and got[-1][0] >= last_offset:
                settle = time.monotonic() + 0.5
        return got
    finally:
        consumer.close()


def set_topic_config(bootstrap: str, name: str, value_: str) -> None:
    admin = ck.AdminClient({"bootstrap.servers": bootstrap})
    resource = ck.ConfigResource("TOPIC", TOPIC, incremental_configs=[
        ck.ConfigEntry(name, value_, incremental_operation=ck.AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(TIMEOUT_S)


def aborted(entries) -> list:
    return [e for e in entries if e[2].startswith(b"aborted")]


def stored_data(broker) -> tuple[list[tuple[int, bytes, bytes]], int]:
    """(offset, key, value) of every data record on disk, and the active segment's base offset."""
    def read():
        plog = broker.logs.partition(TOPIC, 0).log
        data = b"".join(s.read() for s in plog.read(plog.log_start_offset, 1 << 30).slices)
        out = [(r.offset, r.key, r.value) for p, h in rb.iter_batches(data) if not h.is_control
               for r in decode_records(data, p)]
        return out, plog.segments[-1].base_offset
    return broker.call(read)


def cleaned(broker):
    """The stored records once the closed segments hold no aborted record and one per key."""
    records, active = stored_data(broker)
    closed = [r for r in records if r[0] < active]
    keys = [k for _, k, _ in closed]
    return closed and not aborted(closed) and len(keys) == len(set(keys)) and records


@pytest.mark.slow
def test_read_committed_and_uncommitted_before_and_after_cleaning(broker):
    bootstrap = broker.bootstrap_servers
    create_topic(bootstrap, TOPIC, {"cleanup.policy": "compact", "segment.bytes": "1500",
                                    "min.cleanable.dirty.ratio": "0.01", "min.compaction.lag.ms": "3600000"})
    write_transactions(bootstrap)
    write_filler(bootstrap)
    last = broker.call(lambda: broker.logs.partition(TOPIC, 0).log.high_watermark) - 1

    uncommitted = consume(bootstrap, "read_uncommitted", last)
    committed = consume(bootstrap, "read_committed", last)
    assert len(aborted(uncommitted)) == len(KEYS) * (ROUNDS // 2)
    assert aborted(committed) == []
    assert len(committed) == len(KEYS) * (ROUNDS // 2) + FILLER
    table = {key: v for _, key, v in committed}
    assert {k: table[k] for k in KEYS} == {k: value(ROUNDS - 2, k) for k in KEYS}

    set_topic_config(bootstrap, "min.compaction.lag.ms", "0")
    records = wait_until(lambda: cleaned(broker), timeout=20, interval=0.1)
    assert len(records) < len(committed)

    after_uncommitted = consume(bootstrap, "read_uncommitted", last)
    after_committed = consume(bootstrap, "read_committed", last)
    assert aborted(after_uncommitted) == [] and aborted(after_committed) == []
    assert after_committed == after_uncommitted == records   # what is stored, every record committed
    assert {key: v for _, key, v in after_committed} == table  # compaction kept each key's committed value
    assert all(entry in committed for entry in after_committed)  # original records at original offsets
