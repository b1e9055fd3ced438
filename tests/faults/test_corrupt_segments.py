"""Item 7 of issue #9: a stopped broker's segments damaged on disk are found, never served silently.

A real ``kavka serve`` is stopped, a byte of a closed segment is flipped or a
batch length overwritten, and then: ``kavka check`` reports it (exit 1) and
``--repair`` cuts the log there; a start after the change cuts the log at the
bad batch and logs it; a confluent-kafka consumer with default settings reading
across damage the broker cannot see at start gets an error or stops at it, never
the damaged record and never a hang; everything before the damage reads back intact.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from broker_process import create_topic, read_all
from kavka.protocol import records

TOPIC = "damaged"
RECORDS = 200


def produce(bootstrap: str) -> list[bytes]:
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "batch.num.messages": 10})
    values = [b"value-%04d-" % i + b"x" * 40 for i in range(RECORDS)]
    for i, value in enumerate(values):
        producer.produce(TOPIC, value, key=b"k%d" % i, partition=0)
        if i % 10 == 9:
            producer.flush(10)
    assert producer.flush(10) == 0
    return values


@pytest.fixture
def stopped(broker_process_factory):
    """A broker with RECORDS records in several small segments, stopped cleanly."""
    broker = broker_process_factory()
    create_topic(broker.bootstrap_servers, TOPIC, 1, {"segment.bytes": "4000"})
    values = produce(broker.bootstrap_servers)
    assert broker.terminate() == 0
    logs = sorted((broker.data_dir / f"{TOPIC}-0").glob("*.log"))
    assert len(logs) >= 3
    return broker, values, logs


def batches(path) -> list[tuple[int, records.BatchHeader]]:
    return list(records.iter_batches(path.read_bytes()))


def damage(path, kind: str, keep_mtime: bool = False) -> int:
    """Damage the third batch of ``path``; returns its base offset."""
    position, header = batches(path)[2]
    before = path.stat()
    data = bytearray(path.read_bytes())
    if kind == "flip":
        data[position + header.size - 5] ^= 0x01  # inside the last record's value
    else:
        data[position + 8 : position + 12] = (0x7FFF0000).to_bytes(4, "big")
    path.write_bytes(data)
    if keep_mtime:  # bit rot: nothing tells the broker the file changed
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    return header.base_offset


def check(data_dir, *extra) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kavka", "check", *extra, str(data_dir)],
                          capture_output=True, text=True, timeout=60)


def test_check_reports_a_flipped_byte_and_repair_cuts_there(stopped):
    broker, values, logs = stopped
    bad = damage(logs[1], "flip")
    result = check(broker.data_dir)
    assert result.returncode == 1, result
    assert f"CORRUPT {TOPIC}-0/{logs[1].name} at byte {batches(logs[1])[2][0]}: CRC-32C mismatch" in result.stdout
    repaired = check(broker.data_dir, "--repair")
    assert repaired.returncode == 1 and "repaired" in repaired.stdout, repaired
    assert check(broker.data_dir).returncode == 0
    broker.restart()
    got = read_all(broker.bootstrap_servers, TOPIC, 1)[0]
    assert [v for _o, _k, v in got] == values[:bad]


def test_check_refuses_while_the_broker_runs(stopped):
    broker, _values, _logs = stopped
    broker.restart()
    result = check(broker.data_dir)
    assert result.returncode == 1 and "in use by a running broker" in result.stderr


@pytest.mark.parametrize("stop", ["clean", "kill9"])
@pytest.mark.parametrize("kind", ["flip", "length"])
def test_a_start_after_the_damage_cuts_the_log_at_the_bad_batch(stopped, stop, kind):
    broker, values, logs = stopped
    if stop == "kill9":
        broker.restart()
        broker.kill9()
    bad = damage(logs[1], kind)
    broker.restart()
    text = broker.log_text()
    what = "CRC-32C mismatch" if kind == "flip" else "runs past the end of the file"
    assert f"{TOPIC}-0: {logs[1].name} at byte {batches_before(logs[1])}: " in text, text[-3000:]
    assert what in text
    assert "deleting segment" in text  # the ones after the hole
    got = read_all(broker.bootstrap_servers, TOPIC, 1)[0]
    assert [v for _o, _k, v in got] == values[:bad]
    from confluent_kafka import Producer  # the log takes appends again at the cut
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    producer.produce(TOPIC, b"after", partition=0)
    assert producer.flush(10) == 0


def batches_before(path) -> int:
    """Byte position where the first damaged batch was (now the end of the cut file)."""
    return path.stat().st_size


# "length" makes the consumer wait out its retries (~8 s); "flip" is the quick variant
@pytest.mark.parametrize("kind", [pytest.param("length", marks=pytest.mark.slow), "flip"])
def test_a_default_consumer_never_gets_damage_silently_nor_hangs(stopped, kind):
    from confluent_kafka import Consumer, TopicPartition
    broker, values, logs = stopped
    bad = damage(logs[1], kind, keep_mtime=True)
    broker.restart()
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "corrupt-reader",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    got, errors = [], []
    deadline = time.monotonic() + 8
    try:
        while time.monotonic() < deadline and len(got) < RECORDS and not errors:
            for msg in consumer.consume(num_messages=500, timeout=0.3):
                if msg.error():
                    errors.append(msg.error())
                else:
                    got.append((msg.offset(), msg.value()))
    finally:
        consumer.close()
    assert [v for _o, v in got] == values[:bad]  # before the damage: intact; nothing after it
    if kind == "flip":  # found when first served: the partition answers CORRUPT_MESSAGE
        assert errors and "Invalid message" in str(errors[0]) and f"offset {bad}" in str(errors[0])
        assert "CRC-32C mismatch" in broker.log_text()
    else:  # the framing no longer matches the indexes: cut at start
        assert "impossible batch length" in broker.log_text() or "runs past the end" in broker.log_text()
