"""Subscribed consumers of three client libraries, behind one small interface.

``consume_loop(settings, stop, report)`` runs one consumer until ``stop`` is
set: it polls, reports each batch's (partition, offset) pairs, commits
synchronously after every batch (so what is committed has been processed),
and reports its assignment after every poll.  Commit failures during a
rebalance are expected and ignored: the records come again (at-least-once).

``Member`` runs a loop in a thread of this process; ``ProcessMember`` runs it in
a child process (``group_member_process.py``) that a test can SIGKILL.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

CLIENTS = ("confluent", "kafka-python", "aiokafka")
# librdkafka with group.protocol=consumer (KIP-848: the broker assigns; the group's
# session timeout and heartbeat interval are the broker's group.consumer.* settings).
CONSUMER_PROTOCOL = "confluent-consumer"


@dataclass
class Settings:
    client: str
    bootstrap: str
    group: str
    topic: str
    session_ms: int = 6000
    heartbeat_ms: int = 250
    max_poll_ms: int = 20000
    instance: str | None = None
    strategy: str | None = None   # librdkafka partition.assignment.strategy
    client_id: str = "kavka-test"


@dataclass
class Report:
    """What a consumer saw; appended from its thread, read by the test."""
    records: list = field(default_factory=list)          # (partition, offset)
    assignment: frozenset = frozenset()
    events: list = field(default_factory=list)           # ("assign"|"revoke", [partitions])
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_records(self, pairs) -> None:
        with self.lock:
            self.records.extend(pairs)

    def set_assignment(self, partitions) -> None:
        self.assignment = frozenset(partitions)

    def event(self, kind: str, partitions) -> None:
        with self.lock:
            self.events.append((kind, sorted(partitions)))

    def offsets(self) -> set:
        with self.lock:
            return set(self.records)


# -- one loop per client ----------------------------------------------------------------

def consume_loop(s: Settings, stop: threading.Event, report: Report) -> None:
    {"confluent": _confluent, CONSUMER_PROTOCOL: _confluent, "kafka-python": _kafka_python,
     "aiokafka": _aiokafka}[s.client](s, stop, report)


def _confluent(s: Settings, stop, report: Report) -> None:
    from confluent_kafka import Consumer, KafkaException

    conf = {"bootstrap.servers": s.bootstrap, "group.id": s.group, "client.id": s.client_id,
            "auto.offset.reset": "earliest", "enable.auto.commit": False, "max.poll.interval.ms": s.max_poll_ms}
    if s.client == CONSUMER_PROTOCOL:
        conf["group.protocol"] = "consumer"
    else:
        conf.update({"session.timeout.ms": s.session_ms, "heartbeat.interval.ms": s.heartbeat_ms})
    if s.instance:
        conf["group.instance.id"] = s.instance
    if s.strategy:
        conf["partition.assignment.strategy"] = s.strategy
    consumer = Consumer(conf)
    consumer.subscribe([s.topic], on_assign=lambda c, ps: report.event("assign", [p.partition for p in ps]),
                       on_revoke=lambda c, ps: report.event("revoke", [p.partition for p in ps]))
    try:
        while not stop.is_set():
            batch = [(m.partition(), m.offset()) for m in consumer.consume(100, 0.1) if not m.error()]
            if batch:
                report.add_records(batch)
                try:
                    consumer.commit(asynchronous=False)
                except KafkaException:
                    pass
            report.set_assignment(tp.partition for tp in consumer.assignment())
    finally:
        consumer.close()


def _kafka_python(s: Settings, stop, report: Report) -> None:
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    consumer = KafkaConsumer(
        bootstrap_servers=s.bootstrap, group_id=s.group, client_id=s.client_id, auto_offset_reset="earliest",
        enable_auto_commit=False, session_timeout_ms=s.session_ms, heartbeat_interval_ms=s.heartbeat_ms,
        max_poll_interval_ms=s.max_poll_ms)
    consumer.subscribe([s.topic])
    try:
        while not stop.is_set():
            polled = consumer.poll(1000)  # short timeouts trip a join race in kafka-python 3.0
            batch = [(r.partition, r.offset) for records in polled.values() for r in records]
            if batch:
                report.add_records(batch)
                try:
                    consumer.commit()
                except KafkaError:
                    pass
            report.set_assignment(tp.partition for tp in consumer.assignment())
    finally:
        consumer.close(autocommit=False)


def _aiokafka(s: Settings, stop, report: Report) -> None:
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import KafkaError

    async def run() -> None:
        consumer = AIOKafkaConsumer(
            s.topic, bootstrap_servers=s.bootstrap, group_id=s.group, client_id=s.client_id,
            auto_offset_reset="earliest", enable_auto_commit=False, session_timeout_ms=s.session_ms,
            heartbeat_interval_ms=s.heartbeat_ms, max_poll_interval_ms=s.max_poll_ms)
        await consumer.start()
        try:
            while not stop.is_set():
                polled = await consumer.getmany(timeout_ms=100)
                batch = [(r.partition, r.offset) for records in polled.values() for r in records]
                if batch:
                    report.add_records(batch)
                    try:
                        await consumer.commit()
                    except KafkaError:
                        pass
                report.set_assignment(tp.partition for tp in consumer.assignment())
        finally:
            await consumer.stop()

    asyncio.run(run())


# -- where the loop runs ----------------------------------------------------------------

class Member:
    """A consumer on a thread of the test process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.report = Report()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"member-{settings.client}", daemon=True)

    def _run(self) -> None:
        try:
            consume_loop(self.settings, self._stop, self.report)
        except BaseException as exc:  # reported to the test by check()
            self.error = exc

    def start(self) -> "Member":
        self._thread.start()
        return self

    def close(self, timeout: float = 20.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"{self.settings.client} consumer did not close"
        self.check()

    def check(self) -> None:
        if self.error is not None:
            raise AssertionError(f"{self.settings.client} consumer failed: {self.error!r}") from self.error

    @property
    def assignment(self) -> frozenset:
        return self.report.assignment


class ProcessMember:
    """A consumer in a child process, so it can die without saying goodbye (SIGKILL)."""

    SCRIPT = Path(__file__).with_name("group_member_process.py")

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.report = Report()
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> "ProcessMember":
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._proc = subprocess.Popen([sys.executable, str(self.SCRIPT), json.dumps(asdict(self.settings))],
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        for line in self._proc.stdout:
            kind, _, payload = line.strip().partition(" ")
            items = json.loads(payload) if payload else []
            if kind == "R":
                self.report.add_records([tuple(i) for i in items])
            elif kind == "A":
                self.report.set_assignment(items)

    def kill(self) -> None:
        self._proc.send_signal(signal.SIGKILL)
        self._proc.wait(10)
        self._reader.join(5)

    def close(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self.kill()

    def check(self) -> None:
        pass

    @property
    def assignment(self) -> frozenset:
        return self.report.assignment


def wait_for(predicate, timeout: float, what: str, members=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for member in members:
            member.check()
        if predicate():
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout}s")
