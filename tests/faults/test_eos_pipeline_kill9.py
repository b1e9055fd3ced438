"""Exactly-once consume-transform-produce on a lone broker process that is kill -9ed and
restarted again and again.

An idempotent producer feeds topic A with keyed records (``key:seq``, seq increasing per
key).  Two pipeline workers in one group (confluent-kafka, read_committed, no auto commit)
consume A, and for each batch write ``out:<value>`` with the same key to topic B and the
batch's offsets (send_offsets_to_transaction) in one transaction; one in ten they abort
themselves after sending both (so aborted output and offsets exist); a failed transaction is
aborted (a producer in a fatal state replaced) and the consumer rewound to the group's
committed offsets, as Kafka's exactly-once applications do.  Meanwhile the broker is killed
at least ten times, and twice a producer with a worker's transactional id fences the worker
(whose open transaction is aborted and whose batch must be processed again).  At the end,
once the group has committed A's end: B read under read_committed holds every record of A
exactly once, for each key in A's order, and nothing else (no aborted write is visible).

The test needs TxnOffsetCommit; it is skipped when the broker does not advertise it
(ApiVersions, asked at run time).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from kio.schema.api_versions.v3.request import ApiVersionsRequest

from broker_process import create_topic
from kavka.client import Client
from txn_workload import (CALL_TIMEOUT_S, CLIENT_CONF, Transactional, end_offsets, inject_faults, kill9_restart,
                          read_to_end, wait_stable)

pytestmark = pytest.mark.slow   # 12 kill -9s under an exactly-once pipeline (~60 s)

TXN_OFFSET_COMMIT = 28
SOURCE, SINK = "eos-source", "eos-sink"
PARTITIONS = 3
KEYS = 12
WORKERS = 2
FAULTS = 12
FENCED_AT = {4, 8}    # faults after which a producer with a worker's transactional id fences it
GROUP = "eos-pipeline"
ABORT_RATIO = 0.1    # transactions a worker aborts itself, its output and offsets already sent


def advertised_api_keys(bootstrap: str) -> set[int]:
    with Client(bootstrap) as client:
        response = client.request(ApiVersionsRequest(client_software_name="kavka-tests", client_software_version="1"))
    return {entry.api_key for entry in response.api_keys}


class Feeder(threading.Thread):
    """Keyed input into SOURCE at a steady pace, idempotent, until stopped."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(name="feeder", daemon=True)
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5,
                                  **CLIENT_CONF})
        self.sent = 0
        self._stop_feeding = threading.Event()

    def run(self) -> None:
        seqs = Counter()
        rng = random.Random(7)
        while not self._stop_feeding.is_set():
            for _ in range(10):
                key = f"k{rng.randrange(KEYS):02d}"
                try:
                    self.producer.produce(SOURCE, key=key.encode(), value=f"{key}:{seqs[key]:06d}".encode())
                except BufferError:
                    break
                seqs[key] += 1
                self.sent += 1
            self.producer.poll(0)
            time.sleep(0.02)

    def finish(self) -> None:
        self._stop_feeding.set()
        self.join(10)
        assert not self.is_alive()
        assert self.producer.flush(30) == 0, "input records without a delivery report"


class PipelineWorker(threading.Thread):
    """consume SOURCE -> produce SINK + offsets, one transaction per batch."""

    def __init__(self, bootstrap: str, n: int) -> None:
        super().__init__(name=f"eos-worker-{n}", daemon=True)
        self.producer_conf = {"bootstrap.servers": bootstrap, "transactional.id": f"eos-worker-{n}",
                              "linger.ms": 5, "transaction.timeout.ms": 20000, "message.timeout.ms": 20000,
                              **CLIENT_CONF}
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP,
                                  "isolation.level": "read_committed", "enable.auto.commit": False,
                                  "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
                                  "heartbeat.interval.ms": 500, **CLIENT_CONF})
        self.client: Transactional | None = None
        self.committed = self.aborted = self.failed = 0
        self.rng = random.Random(f"eos-worker-{n}")
        self.error: BaseException | None = None
        self._stop_working = threading.Event()

    def run(self) -> None:
        try:
            self.consumer.subscribe([SOURCE])
            self.client = Transactional(self.producer_conf)
            while not self._stop_working.is_set():
                batch = self._poll()
                if batch:
                    self._process(batch)
        except BaseException as exc:
            self.error = exc
        finally:
            self.consumer.close()

    def finish(self) -> None:
        if self.client is not None:
            self.client.deadline = time.monotonic() + 60
        self._stop_working.set()
        self.join(90)
        assert not self.is_alive(), f"{self.name} did not finish"
        if self.error is not None:
            raise self.error

    def _poll(self) -> list:
        batch = []
        for msg in self.consumer.consume(num_messages=200, timeout=0.3):
            if msg.error():
                if msg.error().fatal():
                    raise KafkaException(msg.error())
            else:
                batch.append(msg)
        return batch

    def _process(self, batch: list) -> None:
        ends: dict[int, int] = {}
        for msg in batch:
            ends[msg.partition()] = msg.offset() + 1
        offsets = [TopicPartition(SOURCE, p, o) for p, o in sorted(ends.items())]
        client = self.client
        try:
            client.producer.begin_transaction()
            for msg in batch:
                client.producer.produce(SINK, key=msg.key(), value=b"out:" + msg.value())
            client.retry(lambda t: client.producer.send_offsets_to_transaction(
                offsets, self.consumer.consumer_group_metadata(), t))
            if self.rng.random() < ABORT_RATIO:   # the application gives the batch up
                client.producer.flush(CALL_TIMEOUT_S)
                client.retry(client.producer.abort_transaction)
                self.aborted += 1
                self._rewind()
                return
            client.retry(client.producer.commit_transaction)
            self.committed += 1
        except KafkaException as exc:
            self.failed += 1
            client.recover(exc.args[0])
            self._rewind()

    def _rewind(self) -> None:
        """Back to the group's committed offsets: the failed batch is processed again."""
        assignment = self.consumer.assignment()
        if not assignment:
            return
        for tp in self.consumer.committed(assignment, timeout=30):
            self.consumer.seek(TopicPartition(SOURCE, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))


def group_caught_up(bootstrap: str, ends: dict[int, int]) -> bool:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False,
                         "isolation.level": "read_committed", **CLIENT_CONF})
    try:
        committed = consumer.committed([TopicPartition(SOURCE, p) for p in range(PARTITIONS)], timeout=10)
    except KafkaException:
        return False
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in committed} == ends


def wait_caught_up(bootstrap: str, ends: dict[int, int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not group_caught_up(bootstrap, ends):
        assert time.monotonic() < deadline, f"the pipeline did not commit {SOURCE}'s ends {ends} in {timeout}s"
        time.sleep(0.5)


def per_key(values: list[bytes]) -> dict[bytes, list[bytes]]:
    keyed = defaultdict(list)
    for value in values:
        keyed[value.split(b":")[-2]].append(value)
    return keyed


def test_exactly_once_pipeline_while_the_broker_is_killed(broker_process):
    bootstrap = broker_process.bootstrap_servers
    if TXN_OFFSET_COMMIT not in advertised_api_keys(bootstrap):
        pytest.skip("the broker does not advertise TxnOffsetCommit (api key 28)")
    create_topic(bootstrap, SOURCE, PARTITIONS)
    create_topic(bootstrap, SINK, PARTITIONS)
    rng = random.Random(447)
    feeder = Feeder(bootstrap)
    workers = [PipelineWorker(bootstrap, n) for n in range(WORKERS)]
    for thread in [feeder, *workers]:
        thread.start()
    started = time.monotonic()
    faults, _fences = inject_faults(lambda: kill9_restart(broker_process, rng), bootstrap,
                                    [w.producer_conf["transactional.id"] for w in workers], rng, FAULTS,
                                    FENCED_AT, pause=(1.0, 3.0))
    feeder.finish()
    source_ends = end_offsets(bootstrap, SOURCE, PARTITIONS, "read_uncommitted")
    wait_caught_up(bootstrap, source_ends, timeout=60)
    for worker in workers:
        worker.finish()
    print(f"{faults} kill -9s in {time.monotonic() - started:.1f}s; {sum(source_ends.values())} inputs; "
          f"transactions committed {[w.committed for w in workers]}, aborted {[w.aborted for w in workers]}, "
          f"failed {[w.failed for w in workers]}, "
          f"producers replaced {[w.client.replaced for w in workers]}")

    inputs = [v for _p, _o, v in read_to_end(bootstrap, SOURCE, PARTITIONS, "read_uncommitted", source_ends)]
    sink_ends = wait_stable(bootstrap, SINK, PARTITIONS)
    outputs = [v for _p, _o, v in read_to_end(bootstrap, SINK, PARTITIONS, "read_committed", sink_ends)]
    expected = [b"out:" + v for v in inputs]
    counts, wanted = Counter(outputs), Counter(expected)
    missing = sorted((wanted - counts).elements())
    extra = sorted((counts - wanted).elements())
    assert not missing and not extra, (f"{len(missing)} inputs missing from {SINK}, e.g. {missing[:3]}; "
                                       f"{len(extra)} extra outputs (duplicates or aborted), e.g. {extra[:3]}")
    out_of_order = [key for key, values in per_key(outputs).items() if values != per_key(expected)[key]]
    assert not out_of_order, f"keys whose outputs are not in input order: {out_of_order}"
    assert faults >= 10 and len(inputs) >= 1000
    assert sum(w.committed for w in workers) >= 50 and sum(w.aborted for w in workers) >= 3
    assert sum(w.client.replaced for w in workers) >= 1, "no worker was fenced"
