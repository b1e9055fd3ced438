"""``kavka serve --durable`` (kavka.flush.before.ack): produces are answered after an
fsync, and one fsync round answers many concurrent produces (kavka.log.group_commit)."""

from __future__ import annotations

import errno
import os
import threading

from confluent_kafka import Producer

from replication_helpers import produce as raw_produce

RECORDS_PER_PRODUCER = 400


def produce(bootstrap: str, topic: str, tag: str, acked: list, errors: list) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "batch.num.messages": 1,
                         "acks": "all", "enable.idempotence": True})

    def report(err, msg):
        (errors if err else acked).append(err or (msg.partition(), msg.offset(), msg.value()))

    for i in range(RECORDS_PER_PRODUCER):
        producer.produce(topic, value=f"{tag}-{i}".encode(), partition=i % 2, on_delivery=report)
        producer.poll(0)
    assert producer.flush(30) == 0


def test_durable_produces_are_fsynced_in_group_commits(kavka_broker_factory, monkeypatch):
    synced = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (synced.append(fd), real(fd))[1])
    broker = kavka_broker_factory({"kavka.flush.before.ack": "true", "num.partitions": 2})
    acked, errors = [], []
    threads = [threading.Thread(target=produce, args=(broker.bootstrap_servers, "d", f"p{n}", acked, errors))
               for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(acked) == 4 * RECORDS_PER_PRODUCER
    flusher = broker.context.durable
    assert synced and flusher.rounds >= 1
    assert flusher.rounds < flusher.requests  # several produces shared an fsync
    by_offset = {(p, o) for p, o, _ in acked}
    assert len(by_offset) == len(acked)


def test_a_failed_fsync_answers_kafka_storage_error(kavka_broker_factory, monkeypatch):
    broker = kavka_broker_factory({"kavka.flush.before.ack": "true"})
    broker.call(lambda: broker.logs.create_topic("f", 1))
    assert raw_produce(broker, "f", [b"ok"], acks=1) == (0, 0)

    def fail(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))
    monkeypatch.setattr(os, "fdatasync", fail)
    assert raw_produce(broker, "f", [b"lost"], acks=1)[0] == 56  # KAFKA_STORAGE_ERROR
    assert broker.logs.health.offline
    assert raw_produce(broker, "f", [b"after"], acks=-1)[0] == 56  # refused without touching the disk


def test_a_failed_fsync_takes_only_its_own_log_dir_offline(kavka_broker_factory, tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    broker = kavka_broker_factory({"kavka.flush.before.ack": "true", "log.dirs": f"{first},{second}"},
                                  data_dir=first)
    broker.call(lambda: broker.logs.create_topic("f", 2))  # partition 0 in first, 1 in second
    assert raw_produce(broker, "f", [b"ok"], acks=1, partition=1) == (0, 0)
    real = os.fdatasync

    def fail_in_second(fd):
        if os.readlink(f"/proc/self/fd/{fd}").startswith(str(second)):
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real(fd)
    monkeypatch.setattr(os, "fdatasync", fail_in_second)
    assert raw_produce(broker, "f", [b"lost"], acks=1, partition=1)[0] == 56  # KAFKA_STORAGE_ERROR
    first_dir, second_dir = broker.logs.log_dirs()
    assert second_dir.offline and not first_dir.offline
    assert raw_produce(broker, "f", [b"fine"], acks=1, partition=0) == (0, 0)
