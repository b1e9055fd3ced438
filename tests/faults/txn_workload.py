"""The transactional workload behind the history check (txn_history.py), with confluent-kafka.

:class:`TxnWriter` is one transactional id in a thread: transaction after transaction, each
a few unique values to random partitions of one topic, committed or aborted at random, every
transaction an ``invoke`` and a completion in the :class:`~txn_history.History` (``ok`` only
when ``commit_transaction`` returned, ``fail`` when no commit was ever asked for, ``info``
when a commit was asked for and its answer is unknown).  An aborted transaction's records are
flushed into the log first, so that read_committed has something to hide.  :class:`Transactional`
keeps a producer usable as an application must (retry what is retriable, abort what is
abortable, replace a fenced or otherwise fatally failed producer with a new one that calls
``init_transactions`` again); the pipeline test uses it too.  Every wait is bounded, so the
writers keep going while a broker is killed and restarted under them; :func:`fence` plays
the zombie's successor (a second producer with a writer's transactional id).

:class:`TailReader` consumes while the writers run (read_committed or not, ``assign`` from
offset 0), :func:`read_to_end` reads everything at the end once no transaction is open, and
:func:`wait_stable` waits for that (the last stable offset reaching the high watermark in
every partition).  :class:`Workload` puts writers and readers on one topic and runs the final
reads and the check; :func:`inject_faults` interleaves faults (any callable) and fencings.  Nothing here knows how many brokers there are: ``bootstrap`` may name a
cluster.
"""

from __future__ import annotations

import random
import threading
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from txn_history import FAIL, INFO, OK, READ_COMMITTED, READ_UNCOMMITTED, History, check

CALL_TIMEOUT_S = 8.0


class HungCall(Exception):
    """A librdkafka call that never succeeds nor fails for good (module doc of eos_pipeline)."""
CLIENT_CONF = {"reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 250, "socket.timeout.ms": 5000}


class Transactional:
    """A transactional producer kept usable across crashes, as Kafka's contract asks of an
    application: commit/abort/init_transactions retried while their error is retriable, an
    abortable transaction aborted, a producer in a fatal state (fenced, its state lost)
    replaced by a new one with ``init_transactions`` done again.  Retries stop at
    ``deadline`` (none until the workload finishes)."""

    def __init__(self, conf: dict, hung_after_s: float | None = None) -> None:
        self.conf = conf
        self.hung_after_s = hung_after_s   # a call retried this long hangs: HungCall (None: retried on)
        self.errors: list[str] = []    # every error retried or recovered from
        self.replaced = 0              # producers replaced after a fatal error or a hung call
        self.abandoned: list[Producer] = []   # hung in a call: kept, never destroyed (that would hang too)
        self.deadline = float("inf")
        self.producer = self._new_producer()

    def retry(self, call) -> None:
        """``call(timeout)`` again while it fails with a retriable error."""
        started = time.monotonic()
        while True:
            try:
                call(CALL_TIMEOUT_S)
                return
            except KafkaException as exc:
                if not exc.args[0].retriable() or time.monotonic() > self.deadline:
                    raise
                self.errors.append(str(exc.args[0]))
                if self.hung_after_s is not None and time.monotonic() - started > self.hung_after_s:
                    raise HungCall(f"retried for {self.hung_after_s:.0f}s: {exc.args[0]}") from exc

    def serve_reports(self) -> None:
        """Run the delivery callbacks still queued (a fatal producer raises its error again
        from poll: the reports it has served so far are all there is)."""
        try:
            self.producer.poll(0)
        except KafkaException as exc:
            self.errors.append(str(exc.args[0]))

    def recover(self, error: KafkaError) -> None:
        """After a failed transaction: abort it if the client says so, or replace a producer
        that is in a fatal state."""
        self.errors.append(str(error))
        if not error.fatal() and error.txn_requires_abort():
            try:
                self.retry(self.producer.abort_transaction)
                return
            except KafkaException as exc:
                self.errors.append(str(exc.args[0]))
                if not exc.args[0].fatal():
                    raise
        elif not error.fatal():
            raise KafkaException(error)   # neither abortable nor fatal: the workload has a bug
        self.replaced += 1
        self.producer = self._new_producer()

    def close(self) -> None:
        """Drop the producer, what it still holds purged: librdkafka's threads would otherwise
        keep reconnecting to the stopped broker for the rest of the test session."""
        producer, self.producer = self.producer, None
        if producer is not None:
            producer.purge()
            try:
                producer.flush(0)
            except KafkaException:
                pass   # a fatal producer raises its error again: nothing left to serve

    def abandon(self, reason: str) -> None:
        """The producer hangs in a call (a librdkafka bug): a new one with the same
        transactional id takes over, its init_transactions fencing the old one, whose late
        requests the brokers then refuse."""
        self.errors.append(reason)
        self.abandoned.append(self.producer)
        self.replaced += 1
        self.producer = self._new_producer()

    def _new_producer(self) -> Producer:
        while True:
            producer = Producer(self.conf)
            try:
                self.retry(producer.init_transactions)
                return producer
            except KafkaException as exc:
                self.errors.append(str(exc.args[0]))
                if not exc.args[0].fatal() or time.monotonic() > self.deadline:
                    raise


class TxnWriter(threading.Thread):
    """One transactional id writing transactions until :meth:`finish`."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, transactional_id: str,
                 history: History, seed: int, commit_ratio: float = 0.7, max_writes: int = 6) -> None:
        super().__init__(name=f"writer-{transactional_id}", daemon=True)
        self.topic, self.partitions, self.tid = topic, partitions, transactional_id
        self.history, self.rng = history, random.Random(seed)
        self.commit_ratio, self.max_writes = commit_ratio, max_writes
        self.conf = {"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "linger.ms": 5,
                     "transaction.timeout.ms": 20000, "message.timeout.ms": 20000, **CLIENT_CONF}
        self.client: Transactional | None = None
        self.error: BaseException | None = None
        self._stop_writing = threading.Event()
        self._seq = 0

    def finish(self, timeout: float = 60.0) -> None:
        """Stop after the current transaction (bounded); raise what the thread raised."""
        if self.client is not None:
            self.client.deadline = time.monotonic() + timeout
        self._stop_writing.set()
        self.join(timeout + 10)
        assert not self.is_alive(), f"{self.name} did not finish"
        if self.client is not None:
            self.client.close()
        if self.error is not None:
            raise self.error

    def run(self) -> None:
        try:
            self.client = Transactional(self.conf)
            while not self._stop_writing.is_set():
                self._transaction()
        except BaseException as exc:   # reported by finish()
            self.error = exc

    # -- one transaction ---------------------------------------------------------------------

    def _transaction(self) -> None:
        writes = []
        for _ in range(self.rng.randint(1, self.max_writes)):
            writes.append((self.rng.randrange(self.partitions), f"{self.tid}-{self._seq}".encode()))
            self._seq += 1
        commit = self.rng.random() < self.commit_ratio
        txn = self.history.invoke(self.tid, writes, commit)
        acks: dict[bytes, tuple[int, int]] = {}
        asked_commit = False
        client = self.client
        try:
            client.producer.begin_transaction()
            for partition, value in writes:
                self._produce(partition, value, acks)
            if commit:
                asked_commit = True
                client.retry(client.producer.commit_transaction)
                client.producer.flush(0)   # serve the delivery reports of what was committed
                self.history.complete(self.tid, txn, OK, acks)
            else:
                client.producer.flush(CALL_TIMEOUT_S)   # in the log first: the abort has data to hide
                client.retry(client.producer.abort_transaction)
                self.history.complete(self.tid, txn, FAIL, acks)
        except KafkaException as exc:
            error = exc.args[0]
            client.serve_reports()
            self.history.complete(self.tid, txn, INFO if asked_commit else FAIL, acks, error=str(error))
            client.recover(error)

    def _produce(self, partition: int, value: bytes, acks: dict) -> None:
        def delivered(err, msg) -> None:
            if err is None:
                acks[msg.value()] = (msg.partition(), msg.offset())
        while True:
            try:
                self.client.producer.produce(self.topic, value=value, partition=partition, on_delivery=delivered)
                return
            except BufferError:
                self.client.producer.poll(0.05)


class TailReader(threading.Thread):
    """Consumes every partition from offset 0 while the writers run; its reads go into the
    history (one ``poll`` op) when it stops."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, isolation: str, history: History,
                 name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.topic, self.partitions, self.isolation, self.history = topic, partitions, isolation, history
        self.conf = consumer_conf(bootstrap, isolation, eof=False)
        self.records: list[tuple[int, int, bytes]] = []
        self.errors: list[str] = []
        self.error: BaseException | None = None
        self._stop_reading = threading.Event()

    def run(self) -> None:
        consumer = Consumer(self.conf)
        try:
            consumer.assign([TopicPartition(self.topic, p, 0) for p in range(self.partitions)])
            while not self._stop_reading.is_set():
                for msg in consumer.consume(num_messages=1000, timeout=0.2):
                    if msg.error():
                        self.errors.append(str(msg.error()))
                        if msg.error().fatal() or msg.error().code() == KafkaError._AUTO_OFFSET_RESET:
                            raise KafkaException(msg.error())
                        continue
                    self.records.append((msg.partition(), msg.offset(), msg.value()))
        except BaseException as exc:
            self.error = exc
        finally:
            consumer.close()

    def finish(self) -> None:
        self._stop_reading.set()
        self.join(20)
        assert not self.is_alive(), f"{self.name} did not finish"
        self.history.poll(self.name, self.isolation, self.records, final=False)
        if self.error is not None:
            raise self.error


class Workload:
    """``writers`` TxnWriters and a read_committed and a read_uncommitted TailReader on one
    topic, sharing one history; at the end the final reads and the check."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, seed: int, writers: int = 4) -> None:
        self.bootstrap, self.topic, self.partitions = bootstrap, topic, partitions
        self.history = History()
        self.writers = [TxnWriter(bootstrap, topic, partitions, f"txn-writer-{n}", self.history, seed=seed * 100 + n)
                        for n in range(writers)]
        self.readers = [TailReader(bootstrap, topic, partitions, isolation, self.history, f"tail-{isolation}")
                        for isolation in (READ_COMMITTED, READ_UNCOMMITTED)]

    def start(self) -> "Workload":
        for thread in self.writers + self.readers:
            thread.start()
        return self

    @property
    def tids(self) -> list[str]:
        return [w.tid for w in self.writers]

    @property
    def replaced(self) -> int:
        return sum(w.client.replaced for w in self.writers if w.client is not None)

    @property
    def client_errors(self) -> int:
        return sum(len(w.client.errors) for w in self.writers if w.client is not None)

    def committed(self) -> int:
        return sum(1 for op in list(self.history.ops) if op.f == "txn" and op.type == OK)

    def wait_for_commits(self, more: int, timeout: float) -> None:
        target = self.committed() + more
        deadline = time.monotonic() + timeout
        while self.committed() < target:
            assert time.monotonic() < deadline, f"fewer than {more} commits in {timeout}s"
            time.sleep(0.05)

    def finish_and_check(self, stable_timeout: float = 60.0) -> dict:
        """Stop everyone, read every partition to its end under both isolations, check the
        history (an assertion error lists the anomalies); the history's counts."""
        for thread in self.writers + self.readers:
            thread.finish()
        ends = wait_stable(self.bootstrap, self.topic, self.partitions, timeout=stable_timeout)
        for isolation in (READ_COMMITTED, READ_UNCOMMITTED):
            records = read_to_end(self.bootstrap, self.topic, self.partitions, isolation, ends)
            self.history.poll(f"final-{isolation}", isolation, records, final=True)
        report = check(self.history.ops)
        assert report.valid, report.summary()
        return report.counts


def fence(bootstrap: str, transactional_id: str) -> None:
    """A second producer with the writer's id: init_transactions bumps the epoch, aborts the
    writer's open transaction and fences it (its next request fails fatally)."""
    Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id}).init_transactions(30)


def kill9_restart(broker, rng: random.Random) -> None:
    """One fault of a lone broker: kill -9, a short random outage, a normal start."""
    broker.kill9()
    time.sleep(rng.uniform(0.0, 0.5))
    broker.restart()


def inject_faults(fault, bootstrap: str, transactional_ids: list[str], rng: random.Random, count: int,
                  fenced_at: set[int], pause: tuple[float, float], ready=lambda: None) -> tuple[int, int]:
    """``count`` faults (``fault()``), each once ``ready()`` returned and after a random pause;
    after the faults numbered in ``fenced_at`` one of ``transactional_ids`` is fenced too.
    Returns (faults, fencings)."""
    faults = fences = 0
    for n in range(count):
        ready()
        time.sleep(rng.uniform(*pause))
        fault()
        faults += 1
        if n in fenced_at:
            fence(bootstrap, rng.choice(transactional_ids))
            fences += 1
    return faults, fences


def consumer_conf(bootstrap: str, isolation: str, eof: bool) -> dict:
    return {"bootstrap.servers": bootstrap, "group.id": f"txn-history-{isolation}", "isolation.level": isolation,
            "enable.auto.commit": False, "enable.partition.eof": eof, "auto.offset.reset": "error",
            **CLIENT_CONF}


def end_offsets(bootstrap: str, topic: str, partitions: int, isolation: str) -> dict[int, int]:
    """ListOffsets latest: the high watermark, or the last stable offset for read_committed."""
    from confluent_kafka import IsolationLevel
    from confluent_kafka.admin import AdminClient, OffsetSpec
    admin = AdminClient({"bootstrap.servers": bootstrap})
    level = IsolationLevel.READ_COMMITTED if isolation == READ_COMMITTED else IsolationLevel.READ_UNCOMMITTED
    futures = admin.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in range(partitions)},
                                 isolation_level=level, request_timeout=10)
    return {tp.partition: f.result(timeout=15).offset for tp, f in futures.items()}


def wait_stable(bootstrap: str, topic: str, partitions: int, timeout: float = 60.0) -> dict[int, int]:
    """Wait until no transaction is open in any partition (LSO == high watermark); the ends."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            high = end_offsets(bootstrap, topic, partitions, "read_uncommitted")
            stable = end_offsets(bootstrap, topic, partitions, READ_COMMITTED)
            if high == stable:
                return high
        except KafkaException:
            high = stable = None
        if time.monotonic() > deadline:
            raise AssertionError(f"{topic}: transactions still open after {timeout}s: "
                                 f"high watermarks {high}, last stable offsets {stable}")
        time.sleep(0.2)


def read_to_end(bootstrap: str, topic: str, partitions: int, isolation: str, ends: dict[int, int],
                timeout: float = 60.0) -> list[tuple[int, int, bytes]]:
    """Every record of every partition below ``ends`` from offset 0, in consumption order."""
    consumer = Consumer(consumer_conf(bootstrap, isolation, eof=True))
    records: list[tuple[int, int, bytes]] = []
    pending = {p for p in range(partitions)}
    deadline = time.monotonic() + timeout
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        while pending:
            if time.monotonic() > deadline:
                raise AssertionError(f"{isolation} read of {topic} not at its ends {ends} after {timeout}s; "
                                     f"partitions {sorted(pending)} short")
            for msg in consumer.consume(num_messages=5000, timeout=0.2):
                error = msg.error()
                if error is not None and error.code() == KafkaError._PARTITION_EOF:
                    if msg.offset() >= ends[msg.partition()]:
                        pending.discard(msg.partition())
                elif error is not None:
                    if error.fatal() or error.code() == KafkaError._AUTO_OFFSET_RESET:
                        raise KafkaException(error)
                elif msg.offset() < ends[msg.partition()]:
                    records.append((msg.partition(), msg.offset(), msg.value()))
    finally:
        consumer.close()
    return records
