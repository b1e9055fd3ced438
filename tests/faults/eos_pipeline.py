"""The exactly-once consume-transform-produce pipeline of the EOS fault tests, with confluent-kafka.

:class:`Feeder` writes keyed input into SOURCE (``key:seq``, seq increasing per key) with an
idempotent producer.  :class:`PipelineWorker` s, in one group (read_committed, no auto commit),
consume SOURCE and for each batch write ``out:<value>`` with the same key to SINK and the
batch's offsets (send_offsets_to_transaction) in one transaction; one in ten they abort
themselves after sending both (so aborted output and offsets exist); a failed transaction is
aborted (a producer in a fatal state replaced, txn_workload.Transactional) and the consumer
rewound to the group's committed offsets, as Kafka's exactly-once applications do.  A producer
that hangs is abandoned for a new one with the same transactional id, which fences it:
librdkafka 2.16 can wait for ever on a coordinator it dropped with a broker that left Metadata
(confluentinc/librdkafka#5456, #5511), in send_offsets_to_transaction past its timeout
(:func:`bounded`) or with a request to the transaction coordinator never sent, every retry
timing out (``Transactional`` ``hung_after_s``), while the brokers answer everyone else; a
consumer whose committed() keeps timing out so is replaced by a new group member.
:class:`Pipeline` runs a feeder and workers and, at the end, once the group has committed
SOURCE's end, checks that SINK read under read_committed holds every record of SOURCE exactly
once, for each key in SOURCE's order, and nothing else (no aborted write is visible).  It
takes any bootstrap address: one broker or a cluster.
"""

from __future__ import annotations

import random
import sys
import threading
import time
import traceback
from collections import Counter, defaultdict

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from kio.schema.api_versions.v3.request import ApiVersionsRequest

from kavka.client import Client
from txn_workload import CALL_TIMEOUT_S, CLIENT_CONF, HungCall, Transactional, end_offsets, read_to_end, wait_stable

TXN_OFFSET_COMMIT = 28
SOURCE, SINK = "eos-source", "eos-sink"
PARTITIONS = 3
KEYS = 12
GROUP = "eos-pipeline"
ABORT_RATIO = 0.1    # transactions a worker aborts itself, its output and offsets already sent
HANG_GRACE_S = 20.0  # a call still running this long after its timeout hangs
HUNG_AFTER_S = 45.0  # a call retried this long hangs (a transaction times out after 20 s)


def bounded(call, *args, timeout: float) -> None:
    """``call(*args, timeout)`` in a thread of its own, HungCall if it outlives its timeout by
    HANG_GRACE_S.  librdkafka 2.16's send_offsets_to_transaction ignores its timeout and can wait
    for ever on a group coordinator that dropped out of Metadata (a broker that lost its etcd
    session, as a Kafka broker fenced by its controller): confluentinc/librdkafka#5456, #5511."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call(*args, timeout)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, name=f"bounded-{getattr(call, '__name__', 'call')}", daemon=True)
    thread.start()
    thread.join(timeout + HANG_GRACE_S)
    if not outcome:
        raise HungCall(f"{getattr(call, '__name__', call)} did not return {timeout + HANG_GRACE_S:.0f}s after it began")
    if outcome[0] is not None:
        raise outcome[0]


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
        self.consumer_conf = {"bootstrap.servers": bootstrap, "group.id": GROUP,
                              "isolation.level": "read_committed", "enable.auto.commit": False,
                              "auto.offset.reset": "earliest", "session.timeout.ms": 10000,
                              "heartbeat.interval.ms": 500, **CLIENT_CONF}
        self.consumer = Consumer(self.consumer_conf)
        self.consumers_replaced = 0
        self.client: Transactional | None = None
        self.committed = self.aborted = self.failed = 0
        self.assignment: list[TopicPartition] = []   # as the last rebalance left it
        self.rng = random.Random(f"eos-worker-{n}")
        self.error: BaseException | None = None
        self._stop_working = threading.Event()

    def run(self) -> None:
        try:
            self._subscribe()
            self.client = Transactional(self.producer_conf, hung_after_s=HUNG_AFTER_S)
            while not self._stop_working.is_set():
                batch = self._poll()
                if batch:
                    self._process(batch)
        except BaseException as exc:
            self.error = exc
        finally:
            self.consumer.close()

    def _subscribe(self) -> None:
        self.consumer.subscribe([SOURCE], on_assign=self._assigned, on_revoke=self._revoked)

    def _assigned(self, _consumer, partitions) -> None:
        self.assignment = list(partitions)

    def _revoked(self, _consumer, _partitions) -> None:
        self.assignment = []

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
            client.retry(lambda t: bounded(client.producer.send_offsets_to_transaction, offsets,
                                           self.consumer.consumer_group_metadata(), timeout=t))
            if self.rng.random() < ABORT_RATIO:   # the application gives the batch up
                client.producer.flush(CALL_TIMEOUT_S)
                client.retry(client.producer.abort_transaction)
                self.aborted += 1
                self._rewind()
                return
            client.retry(client.producer.commit_transaction)
            self.committed += 1
        except (KafkaException, HungCall) as exc:
            self.failed += 1
            self._recover(exc)
            self._rewind()

    def _recover(self, exc: Exception) -> None:
        """Abort the transaction or replace a fatally failed producer (Transactional.recover);
        a producer that hangs, in the failed call or in the abort, is abandoned."""
        try:
            if isinstance(exc, KafkaException):
                self.client.recover(exc.args[0])
                return
        except HungCall as hung:
            exc = hung
        self.client.abandon(str(exc))

    def _committed(self, assignment: list[TopicPartition]) -> list[TopicPartition] | None:
        """The group's committed offsets, asked again while the answer is retriable (a
        coordinator moving; offsets of a transaction still pending) for up to HUNG_AFTER_S;
        None if it never came."""
        deadline = time.monotonic() + HUNG_AFTER_S
        while True:
            try:
                return self.consumer.committed(assignment, timeout=10)
            except KafkaException as exc:
                error = exc.args[0]
                self.client.errors.append(str(error))
                # committed()'s own timeout is not retriable() for confluent-kafka: asked again too
                if not (error.retriable() or error.code() == KafkaError._TIMED_OUT):
                    raise
                if time.monotonic() > deadline:
                    return None

    def _replace_consumer(self) -> None:
        """A consumer whose committed() times out while the group coordinator answers others
        (librdkafka's coordinator lost with a broker that left Metadata, module doc): closed
        (bounded: it may hang too) and replaced by a new member, which starts from the group's
        committed offsets, as the rewind wanted."""
        old, self.assignment = self.consumer, []
        try:
            bounded(lambda _timeout: old.close(), timeout=CALL_TIMEOUT_S)
        except HungCall as exc:
            self.client.errors.append(f"abandoned a consumer: {exc}")
        self.consumers_replaced += 1
        self.consumer = Consumer(self.consumer_conf)
        self._subscribe()

    def _rewind(self) -> None:
        """Back to the group's committed offsets: the failed batch is processed again."""
        assignment = self.consumer.assignment()
        if not assignment:
            return
        committed = self._committed(assignment)
        if committed is None:
            self._replace_consumer()
            return
        for tp in committed:
            self.consumer.seek(TopicPartition(SOURCE, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING))


def group_offsets(bootstrap: str) -> dict[int, int] | None:
    """The group's committed offsets of SOURCE (OffsetFetch, require_stable), None if not answered."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False,
                         "isolation.level": "read_committed", **CLIENT_CONF})
    try:
        committed = consumer.committed([TopicPartition(SOURCE, p) for p in range(PARTITIONS)], timeout=10)
    except KafkaException:
        return None
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in committed}


def wait_caught_up(bootstrap: str, ends: dict[int, int], timeout: float, workers) -> None:
    deadline = time.monotonic() + timeout
    while (committed := group_offsets(bootstrap)) != ends:
        assert time.monotonic() < deadline, (
            f"the pipeline did not commit {SOURCE}'s ends {ends} in {timeout}s: committed {committed}; "
            f"workers committed {[w.committed for w in workers]} transactions, failed {[w.failed for w in workers]}, "
            f"last errors {[w.client.errors[-3:] for w in workers if w.client]}, "
            f"assignments {[[tp.partition for tp in w.assignment] for w in workers]}; {where(workers)}")
        time.sleep(0.5)


def where(threads) -> str:
    """Where each live thread is now (the frames of its stack): a stuck worker says which call."""
    frames = sys._current_frames()
    return "; ".join(f"{t.name} in " + " <- ".join(f"{f.name}:{f.lineno}" for f in
                                                    reversed(traceback.extract_stack(frames[t.ident])[-4:]))
                     for t in threads if t.is_alive() and t.ident in frames)


def per_key(values: list[bytes]) -> dict[bytes, list[bytes]]:
    keyed = defaultdict(list)
    for value in values:
        keyed[value.split(b":")[-2]].append(value)
    return keyed


class Pipeline:
    """A feeder and ``workers`` pipeline workers; :meth:`finish_and_check` stops them and
    checks SINK."""

    def __init__(self, bootstrap: str, workers: int = 2) -> None:
        self.bootstrap = bootstrap
        self.feeder = Feeder(bootstrap)
        self.workers = [PipelineWorker(bootstrap, n) for n in range(workers)]

    def start(self) -> "Pipeline":
        for thread in [self.feeder, *self.workers]:
            thread.start()
        return self

    @property
    def tids(self) -> list[str]:
        return [w.producer_conf["transactional.id"] for w in self.workers]

    def finish_and_check(self, timeout: float = 60.0) -> dict:
        """Stop feeding, wait until the group committed SOURCE's end, stop the workers and
        compare SINK with SOURCE; figures of the run."""
        self.feeder.finish()
        source_ends = end_offsets(self.bootstrap, SOURCE, PARTITIONS, "read_uncommitted")
        wait_caught_up(self.bootstrap, source_ends, timeout, self.workers)
        for worker in self.workers:
            worker.finish()
        inputs = [v for _p, _o, v in read_to_end(self.bootstrap, SOURCE, PARTITIONS, "read_uncommitted", source_ends)]
        sink_ends = wait_stable(self.bootstrap, SINK, PARTITIONS, timeout=timeout)
        outputs = [v for _p, _o, v in read_to_end(self.bootstrap, SINK, PARTITIONS, "read_committed", sink_ends)]
        check_outputs(inputs, outputs)
        return {"inputs": len(inputs), "committed": [w.committed for w in self.workers],
                "aborted": [w.aborted for w in self.workers], "failed": [w.failed for w in self.workers],
                "replaced": [w.client.replaced for w in self.workers],
                "consumers_replaced": [w.consumers_replaced for w in self.workers]}


def check_outputs(inputs: list[bytes], outputs: list[bytes]) -> None:
    """Every input exactly once in the output, per key in input order, nothing else."""
    expected = [b"out:" + v for v in inputs]
    counts, wanted = Counter(outputs), Counter(expected)
    missing = sorted((wanted - counts).elements())
    extra = sorted((counts - wanted).elements())
    assert not missing and not extra, (f"{len(missing)} inputs missing from {SINK}, e.g. {missing[:3]}; "
                                       f"{len(extra)} extra outputs (duplicates or aborted), e.g. {extra[:3]}")
    out_of_order = [key for key, values in per_key(outputs).items() if values != per_key(expected)[key]]
    assert not out_of_order, f"keys whose outputs are not in input order: {out_of_order}"
