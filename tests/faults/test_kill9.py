"""Crash safety of a real broker process: kill -9 under load, torn segment tails, clean restarts.

The contract checked after every crash: every record a producer got a
successful delivery report for is readable at exactly the (partition, offset)
that report named, with the same value; offsets are dense from 0; no record is
stored twice.  Records written but never acknowledged may or may not survive.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Producer, TopicCollection
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, ResourceType
from kio.schema.metadata.v12.request import MetadataRequest

from broker_process import RECOVERED_PHRASE, create_topic, read_all, watermarks
from kavka.client import Client

PARTITIONS = 3
CYCLES = 3
PAD = b"." * 40  # makes records big enough to roll the small segments below
SMALL_SEGMENTS = {"segment.bytes": "65536"}


class ProduceLoad(threading.Thread):
    """Numbered records (value ``<tag>-<seq>``, partition ``seq % 3``) at a steady pace
    until ``finish``; keeps every delivery report (success and failure)."""

    def __init__(self, bootstrap: str, topic: str, tag: str, conf: dict) -> None:
        super().__init__(name=f"produce-{tag}", daemon=True)
        self.topic, self.tag = topic, tag
        self.conf = {"bootstrap.servers": bootstrap, "linger.ms": 2, "batch.num.messages": 200,
                     "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200, **conf}
        self.acked: list[tuple[int, int, bytes]] = []
        self.failed: list[tuple[bytes, KafkaError]] = []
        self.produced = 0
        self._stop_producing = threading.Event()
        self._purge = False
        self._flush_timeout = 0.0
        self.remaining = -1  # messages never reported after the final flush
        self.error: BaseException | None = None

    def _on_delivery(self, err, msg) -> None:
        if err is None:
            self.acked.append((msg.partition(), msg.offset(), msg.value()))
        else:
            self.failed.append((msg.value(), err))

    def run(self) -> None:
        try:
            producer = Producer(self.conf)
            seq = 0
            while not self._stop_producing.is_set():
                for _ in range(10):
                    value = f"{self.tag}-{seq:08d}".encode() + PAD
                    try:
                        producer.produce(self.topic, value=value, partition=seq % PARTITIONS,
                                         on_delivery=self._on_delivery)
                    except BufferError:
                        break
                    seq += 1
                    self.produced = seq
                producer.poll(0.003)
            if self._purge:
                producer.purge(in_queue=True, in_flight=True, blocking=True)
            self.remaining = producer.flush(self._flush_timeout)
        except BaseException as exc:  # reported by finish()
            self.error = exc

    def finish(self, *, purge: bool, flush_timeout: float) -> None:
        """Stop producing; purge (give up on every unacknowledged record) or wait for all
        delivery reports; then join (bounded)."""
        self._purge, self._flush_timeout = purge, flush_timeout
        self._stop_producing.set()
        self.join(flush_timeout + 15)
        assert not self.is_alive(), "producer thread did not finish"
        if self.error is not None:
            raise self.error
        assert self.remaining == 0, f"{self.remaining} messages without a delivery report"
        assert len(self.acked) + len(self.failed) == self.produced


def wait_for(predicate, timeout: float, what: str, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def kill_mid_load(broker, load: ProduceLoad, rng: random.Random) -> None:
    """kill -9 once acks are flowing, at a random moment, while records are still in flight."""
    started = time.monotonic()
    base = len(load.acked)
    pause = rng.uniform(0.6, 1.4)
    wait_for(lambda: (len(load.acked) - base >= 300 and time.monotonic() - started >= pause
                      and load.produced > len(load.acked) + len(load.failed)), 20, "acks before the kill")
    assert load.is_alive()
    broker.kill9()


def check_log(log: dict[int, list], acked: list[tuple[int, int, bytes]], partitions: int = PARTITIONS) -> None:
    """Dense offsets, no duplicate, every acknowledged record at its acknowledged place."""
    for partition, entries in log.items():
        offsets = [offset for offset, _key, _value in entries]
        assert offsets == list(range(len(offsets))), f"partition {partition}: offsets not dense from 0"
    values = Counter(value for entries in log.values() for _o, _k, value in entries)
    duplicated = sorted(v for v, n in values.items() if n > 1)
    assert not duplicated, f"{len(duplicated)} records stored twice, e.g. {duplicated[:3]}"
    stored = {(p, offset): value for p, entries in log.items() for offset, _k, value in entries}
    places = Counter((p, offset) for p, offset, _v in acked)
    assert not [k for k, n in places.items() if n > 1], "two delivery reports name the same offset"
    wrong = [(p, o, v, stored.get((p, o))) for p, o, v in acked if stored.get((p, o)) != v]
    assert not wrong, f"{len(wrong)} of {len(acked)} acknowledged records are not where their ack said, " \
                      f"e.g. (partition, offset, acked value, stored value) {wrong[:3]}"
    for p, entries in log.items():
        for _o, _k, value in entries:
            seq = int(value.split(b"-")[1][:8])
            assert seq % partitions == p, f"{value!r} on partition {p}"


# -- kill -9 during a produce load ---------------------------------------------------------

@pytest.mark.slow  # kill -9 of a broker process under load (~4-7 s)
@pytest.mark.parametrize("mode", ["acks1", "idempotent"])
def test_kill9_during_produce_loses_no_acknowledged_record(broker_process_factory, mode):
    broker = broker_process_factory(overrides={"num.partitions": PARTITIONS})
    topic = f"load-{mode}"
    create_topic(broker.bootstrap_servers, topic, PARTITIONS, SMALL_SEGMENTS)
    rng = random.Random(f"kill9-{mode}")
    acked = []
    for cycle in range(CYCLES):
        if mode == "acks1":
            # Not idempotent: a retry after the restart would legitimately store a second
            # copy, so every unacknowledged record is given up (purged) before the restart.
            load = ProduceLoad(broker.bootstrap_servers, topic, f"c{cycle}", {"acks": "1"})
            load.start()
            kill_mid_load(broker, load, rng)
            time.sleep(0.2)  # keeps producing into the dead broker
            load.finish(purge=True, flush_timeout=10)
            assert load.failed, "the load had stopped before the kill"
            broker.restart()
        else:
            # Idempotent: the producer lives through the crash and retries its in-flight
            # batches against the restarted broker, whose producer state (rebuilt from the
            # recovered log) must answer those already written as duplicates.
            load = ProduceLoad(broker.bootstrap_servers, topic, f"c{cycle}",
                               {"acks": "all", "enable.idempotence": True, "message.timeout.ms": 30000})
            load.start()
            kill_mid_load(broker, load, rng)
            time.sleep(0.2)
            broker.restart()
            after_restart = len(load.acked)
            wait_for(lambda: len(load.acked) - after_restart >= 300, 20, "acks after the restart")
            load.finish(purge=False, flush_timeout=30)
            assert not load.failed, f"idempotent producer lost records: {load.failed[:3]}"
        assert RECOVERED_PHRASE in broker.log_text(), broker.log_text()
        acked += load.acked
        print(f"cycle {cycle}: produced {load.produced}, acked {len(load.acked)}, failed {len(load.failed)}")

    log = read_all(broker.bootstrap_servers, topic, PARTITIONS)
    check_log(log, acked)
    stored = sum(len(entries) for entries in log.values())
    unacked_stored = stored - len(acked)
    assert unacked_stored >= 0
    print(f"{stored} records stored, {len(acked)} acknowledged, {unacked_stored} stored without an ack")
    if mode == "idempotent":
        assert unacked_stored == 0
    # several segments per partition, so recovery scanned more than one
    for p in range(PARTITIONS):
        assert len(list((broker.data_dir / f"{topic}-{p}").glob("*.log"))) > 1


# -- torn tail -----------------------------------------------------------------------------

def _batches(data: bytes) -> list[tuple[int, int]]:
    """(position, size) of each batch in a segment file."""
    out, pos = [], 0
    while pos + 12 <= len(data):
        size = int.from_bytes(data[pos + 8 : pos + 12], "big") + 12
        out.append((pos, size))
        pos += size
    assert pos == len(data), "segment does not end on a batch boundary"
    return out


def _last_segment(partition_dir: Path) -> Path:
    return max(partition_dir.glob("*.log"), key=lambda p: int(p.name[:20]))


TORN = {  # partition: (what is appended to its last segment, index files deleted)
    0: ("garbage", (".index",)),
    1: ("half a batch", (".index", ".timeindex")),
    2: ("a whole batch with a bad CRC", ()),   # only a CRC check finds it: needs recovery
    3: ("zeros", ()),                          # a file extended but never written
}


def _torn_tail(kind: str, last_batch: bytes, next_offset: int, rng: random.Random) -> bytes:
    batch = bytearray(last_batch)
    batch[0:8] = next_offset.to_bytes(8, "big")  # baseOffset as a real append would write it
    if kind == "garbage":
        return rng.randbytes(333)
    if kind == "half a batch":
        return bytes(batch[: len(batch) // 2])
    if kind == "a whole batch with a bad CRC":
        batch[-1] ^= 0xFF
        return bytes(batch)
    return bytes(4096)


def test_torn_tail_is_cut_and_appends_continue(broker_process):
    broker = broker_process
    topic, partitions, per_partition = "torn", len(TORN), 100
    create_topic(broker.bootstrap_servers, topic, partitions)
    conf = {"bootstrap.servers": broker.bootstrap_servers, "acks": "1", "linger.ms": 5, "batch.num.messages": 20}
    producer = Producer(conf)
    acked, errors = [], []

    def on_delivery(err, msg):
        if err is None:
            acked.append((msg.partition(), msg.offset(), msg.value()))
        else:
            errors.append(err)

    def produce(seqs) -> None:
        for seq in seqs:
            producer.produce(topic, value=f"t-{seq:08d}".encode() + PAD, partition=seq % partitions,
                             on_delivery=on_delivery)
        assert producer.flush(15) == 0
        assert not errors, errors

    produce(range(partitions * per_partition))
    assert len(acked) == partitions * per_partition
    broker.kill9()

    rng = random.Random(1234)
    sizes = {}
    for p, (kind, doomed_indexes) in TORN.items():
        segment = _last_segment(broker.data_dir / f"{topic}-{p}")
        data = segment.read_bytes()
        sizes[p] = len(data)
        last_pos, last_size = _batches(data)[-1]
        with open(segment, "ab") as f:
            f.write(_torn_tail(kind, data[last_pos : last_pos + last_size], per_partition, rng))
        for suffix in doomed_indexes:
            segment.with_suffix(suffix).unlink()

    broker.restart()
    assert RECOVERED_PHRASE in broker.log_text(), broker.log_text()
    for p, (kind, _i) in TORN.items():
        segment = _last_segment(broker.data_dir / f"{topic}-{p}")
        assert segment.stat().st_size == sizes[p], f"partition {p}: {kind} is still there"
        assert segment.with_suffix(".index").exists(), f"partition {p}: index not rebuilt"
        assert segment.with_suffix(".timeindex").exists(), f"partition {p}: time index not rebuilt"
    log = read_all(broker.bootstrap_servers, topic, partitions)
    assert {p: len(entries) for p, entries in log.items()} == {p: per_partition for p in TORN}
    check_log(log, acked, partitions)

    # appends continue right after the last intact record (a new producer: the old one
    # would first spend a second rediscovering the partition leaders)
    producer = Producer(conf)
    before = len(acked)
    produce(range(partitions * per_partition, partitions * (per_partition + 10)))
    for p in TORN:
        assert sorted(o for part, o, _v in acked[before:] if part == p) == list(range(100, 110))
    log = read_all(broker.bootstrap_servers, topic, partitions)
    assert {p: len(entries) for p, entries in log.items()} == {p: per_partition + 10 for p in TORN}
    check_log(log, acked, partitions)


# -- clean restart -------------------------------------------------------------------------

TOPICS = {  # name: (partitions, overrides)
    "alpha": (1, {"retention.ms": "3600000", "cleanup.policy": "delete"}),
    "beta": (3, {"segment.bytes": "16384", "max.message.bytes": "200000"}),
    "gamma": (5, {}),
}


def _metadata_v12(bootstrap: str) -> dict:
    with Client(bootstrap) as client:
        response = client.request(MetadataRequest(topics=None, allow_auto_topic_creation=False,
                                                  include_topic_authorized_operations=False))
    return {t.name: (t.error_code, t.topic_id, sorted((p.partition_index, p.leader_id, p.error_code)
                                                      for p in t.partitions))
            for t in response.topics}


def _admin_view(bootstrap: str) -> dict:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_topics(TopicCollection(list(TOPICS)))
    view = {}
    for name, future in described.items():
        description = future.result(15)
        resource = ConfigResource(ResourceType.TOPIC, name)
        configs = admin.describe_configs([resource])[resource].result(15)
        overrides = {k: c.value for k, c in configs.items()
                     if c.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value}
        view[name] = (str(description.topic_id), len(description.partitions), overrides,
                      configs["segment.bytes"].value)
    return view


def test_clean_restart_keeps_everything_and_skips_recovery(broker_process):
    broker = broker_process
    for name, (partitions, overrides) in TOPICS.items():
        create_topic(broker.bootstrap_servers, name, partitions, overrides)
    errors = []

    def on_delivery(err, msg):
        if err is not None:
            errors.append(err)

    # One idempotent producer for the whole test: after the restart its sequence numbers
    # continue, which the producer state restored from the clean-shutdown snapshot must accept.
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "acks": "all", "linger.ms": 5,
                         "enable.idempotence": True, "batch.num.messages": 50,
                         "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200})
    for name, (partitions, _o) in TOPICS.items():
        for seq in range(500 * partitions):
            producer.produce(name, value=f"{name}-{seq:08d}".encode() + PAD, partition=seq % partitions,
                             on_delivery=on_delivery)
    assert producer.flush(15) == 0
    assert not errors

    metadata = _metadata_v12(broker.bootstrap_servers)
    admin_view = _admin_view(broker.bootstrap_servers)
    contents = {name: read_all(broker.bootstrap_servers, name, partitions)
                for name, (partitions, _o) in TOPICS.items()}
    assert {name: len(parts) for name, (_e, _id, parts) in metadata.items()} == \
        {name: partitions for name, (partitions, _o) in TOPICS.items()}
    assert all(error == 0 and topic_id.int != 0 for error, topic_id, _p in metadata.values())
    assert {name: view[2] for name, view in admin_view.items()} == {n: o for n, (_p, o) in TOPICS.items()}
    assert all(sum(map(len, parts.values())) == 500 * TOPICS[name][0] for name, parts in contents.items())
    assert len(list((broker.data_dir / "beta-0").glob("*.log"))) > 1  # rolled: several segments

    assert broker.terminate() == 0
    assert (broker.data_dir / ".kafka_cleanshutdown").exists()
    assert "shutting down" in broker.log_text()
    broker.restart()
    log = broker.log_text()
    assert "loaded 3 topics, 9 partitions" in log, log
    assert RECOVERED_PHRASE not in log, log
    assert not (broker.data_dir / ".kafka_cleanshutdown").exists(), "marker must go while running"

    assert _metadata_v12(broker.bootstrap_servers) == metadata
    assert _admin_view(broker.bootstrap_servers) == admin_view
    for name, (partitions, _o) in TOPICS.items():
        assert read_all(broker.bootstrap_servers, name, partitions) == contents[name], name
    assert watermarks(broker.bootstrap_servers, "beta", 3) == {p: (0, 500) for p in range(3)}

    acked = []
    for seq in range(1500, 1800):
        producer.produce("beta", value=f"beta-{seq:08d}".encode() + PAD, partition=seq % 3,
                         on_delivery=lambda err, msg: acked.append((err, msg.partition(), msg.offset())))
    assert producer.flush(15) == 0
    assert [a for a in acked if a[0] is not None] == [], "the producer's sequence was not accepted"
    assert sorted(o for _e, p, o in acked if p == 0) == list(range(500, 600))
    assert watermarks(broker.bootstrap_servers, "beta", 3) == {p: (0, 600) for p in range(3)}
