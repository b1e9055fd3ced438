"""Apache Kafka's Java client (kafka-clients 4.x) against a real kavka broker: the scenario of README.md.

Each step runs ``java/``'s program (``kavka.clients.Main STEP BOOTSTRAP ...``) in a JVM of its own
and asserts on the JSON lines it printed; what the Java client wrote is read back by
confluent-kafka too, and the batches on disk are checked for their codec and producer id.  The
group step runs three member processes with each of the two group protocols, classic and
KIP-848's consumer protocol; Kafka Streams' word count runs last, on lines written by confluent-kafka.
"""

from __future__ import annotations

import base64
import json
import random
import re
import signal
import subprocess
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ConsumerGroupType, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from kavka.protocol.records import iter_batches

pytestmark = pytest.mark.timeout(90)

BASE_TS = 1_700_000_000_000
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
# Short-lived JVMs on 2 shared cores: the C1 compiler only and the serial collector start faster.
JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
STEP_TIMEOUT = 60          # seconds for one JVM run of a step
JVM_SIGTERM_EXIT = 143      # a JVM ended by SIGTERM exits 128 + 15 once its shutdown hooks are done
GROUP_PARTITIONS = 6
GROUP_SESSION_MS = 3000     # both protocols: the classic member's session.timeout.ms, the broker's for KIP-848
GROUP_SETTINGS = {"num.partitions": 3, "group.initial.rebalance.delay.ms": 0, "group.min.session.timeout.ms": 1000,
                  "offsets.topic.num.partitions": 5, "group.consumer.session.timeout.ms": GROUP_SESSION_MS,
                  "group.consumer.heartbeat.interval.ms": 250}


@pytest.fixture(scope="module")
def java(client_build):
    return client_build("java")


@pytest.fixture
def group_broker(kavka_broker_factory):
    return kavka_broker_factory(GROUP_SETTINGS)


# -- running the Java program ------------------------------------------------------------

def command(build: Path, step: str, bootstrap: str, *args: str) -> list[str]:
    return ["java", *JVM_OPTIONS, "-cp", str(build / "lib" / "*"), "kavka.clients.Main", step, bootstrap, *args]


def run_step(build: Path, step: str, bootstrap: str, *args: str, stdin: str = "", check: bool = True) -> list[dict]:
    """Run one step to its end; the JSON lines it printed."""
    result = subprocess.run(command(build, step, bootstrap, *args), input=stdin, capture_output=True, text=True,
                            timeout=STEP_TIMEOUT)
    if check:
        assert result.returncode == 0, f"{step} exited {result.returncode}:\n{result.stdout}\n{result.stderr[-4000:]}"
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


class Running:
    """A step running in the background (a group member, the Streams app): its JSON lines as they
    come, its log (the client's, on stderr) in the file ``log``."""

    def __init__(self, build: Path, step: str, bootstrap: str, *args: str, log: Path):
        self.log = log
        with open(log, "a") as stderr:
            self.proc = subprocess.Popen(command(build, step, bootstrap, *args), stdout=subprocess.PIPE,
                                         stderr=stderr, text=True)
        self.lines: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.startswith("{"):
                self.lines.append(json.loads(line))

    def values(self, key: str) -> list:
        return [line[key] for line in list(self.lines) if key in line]

    def describe(self) -> str:
        """What a failed wait shows: the last lines printed and the end of the log."""
        return f"{self.log.name}: {json.dumps(self.lines[-6:])}\n{self.log.read_text()[-2000:]}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(5)
        self._reader.join(5)
        return code


def wait_for(predicate, timeout: float, what: str, running=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.05)
    seen = "\n".join(r.describe() for r in running)
    raise AssertionError(f"{what}: not within {timeout} s\n{seen}")


# -- records in the form the program reads, and helpers through confluent-kafka -------------

def b64(data: bytes | None) -> str:
    return "-" if data is None else base64.b64encode(data).decode()


def unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def record_lines(records) -> str:
    """``produce``'s stdin: PARTITION TIMESTAMP KEY VALUE HEADERS per record."""
    lines = []
    for partition, key, value, headers, ts in records:
        hs = ",".join(f"{b64(n.encode())}:{b64(v)}" for n, v in headers) or "-"
        lines.append(f"{partition} {ts} {b64(key)} {b64(value)} {hs}")
    return "\n".join(lines) + "\n"


def sample_records(count: int, partitions: int = 3):
    """(partition, key, value, headers, timestamp) with distinct contents, and the edge cases."""
    records = [(i % partitions, f"key-{i}".encode(), f"value-{i}-".encode() * (1 + i % 7),
                [("h1", f"hv{i}".encode()), ("h2", b"")], BASE_TS + i * 1000) for i in range(count)]
    return records + [(0, None, b"no key", [("h1", b"nk")], BASE_TS + 100_000),
                      (1, b"tombstone", None, [], BASE_TS + 100_001),
                      (2, b"", b"", [("", b""), ("null-value", None)], BASE_TS + 100_002)]


def expected_offsets(records) -> list[tuple]:
    """(partition, offset, key, value, headers, timestamp) as a broker stores them, in send order."""
    expected, next_offset = [], defaultdict(int)
    for partition, key, value, headers, ts in records:
        expected.append((partition, next_offset[partition], key, value, tuple(headers), ts))
        next_offset[partition] += 1
    return expected


def create_topic(bootstrap: str, name: str, partitions: int = 3, config: dict | None = None) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1, config=config or {})])[name].result(10)


def confluent_read(bootstrap: str, topic: str, partitions: int, expected: int, timeout: float = 20) -> list:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "java-cross-check", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got, deadline = [], time.monotonic() + timeout
    try:
        while len(got) < expected and time.monotonic() < deadline:
            for m in consumer.consume(500, 0.2):
                assert m.error() is None, m.error()
                got.append((m.partition(), m.offset(), m.key(), m.value(),
                            tuple((n, v) for n, v in (m.headers() or [])), m.timestamp()[1]))
    finally:
        consumer.close()
    return got


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return {tp.partition: tp.offset for tp in
                consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)}
    finally:
        consumer.close()


def stored_batches(broker, topic: str, partition: int) -> list:
    return [h for path in sorted((broker.data_dir / f"{topic}-{partition}").glob("*.log"))
            for _pos, h in iter_batches(path.read_bytes())]


def java_records(lines: list[dict]) -> list[tuple]:
    return [(r["partition"], r["offset"], unb64(r["key"]), unb64(r["value"]),
             tuple((n, unb64(v)) for n, v in r["headers"]), r["timestamp"]) for r in lines if "offset" in r]


# -- 1. records --------------------------------------------------------------------------

@pytest.mark.parametrize("codec", CODECS)
def test_records_round_trip_with_each_codec(java, broker, codec):
    bootstrap, topic = broker.bootstrap_servers, f"java-{codec}"
    create_topic(bootstrap, topic)
    records = sample_records(30)
    expected = expected_offsets(records)

    acks = run_step(java, "produce", bootstrap, topic, f"compression.type={codec}", stdin=record_lines(records))
    assert [(a["partition"], a["offset"], a["timestamp"]) for a in acks] == \
        [(p, o, ts) for p, o, _k, _v, _h, ts in expected]

    read = run_step(java, "consume", bootstrap, topic, "3", str(len(records)))
    assert read[-1] == {"consumed": len(records)}
    assert sorted(java_records(read)) == sorted(expected)
    assert {r["timestamp_type"] for r in read[:-1]} == {"CreateTime"}

    codec_bits = CODECS.index(codec)
    stored = [h.compression for p in range(3) for h in stored_batches(broker, topic, p)]
    assert stored and set(stored) == {codec_bits}, stored
    assert sorted(confluent_read(bootstrap, topic, 3, len(records))) == sorted(expected)


def test_java_reads_what_confluent_kafka_wrote(java, broker):
    bootstrap, topic = broker.bootstrap_servers, "from-confluent"
    create_topic(bootstrap, topic)
    records = sample_records(30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "compression.type": "zstd"})
    for partition, key, value, headers, ts in records:
        producer.produce(topic, value=value, key=key, partition=partition, headers=headers, timestamp=ts)
    assert producer.flush(10) == 0
    read = run_step(java, "consume", bootstrap, topic, "3", str(len(records)))
    assert sorted(java_records(read)) == sorted(expected_offsets(records))


# -- 2. idempotent -----------------------------------------------------------------------

def test_idempotent_producer_stores_each_record_once_in_order_with_one_producer_id(java, broker):
    bootstrap, topic, count = broker.bootstrap_servers, "java-idempotent", 600
    create_topic(bootstrap, topic)
    records = [(i % 3, f"k{i}".encode(), f"v{i}".encode() * 20, [], BASE_TS + i) for i in range(count)]
    acks = run_step(java, "produce", bootstrap, topic, "enable.idempotence=true", "acks=all",
                    "max.in.flight.requests.per.connection=5", "batch.size=2048", "linger.ms=0",
                    stdin=record_lines(records))
    expected = expected_offsets(records)
    assert [(a["partition"], a["offset"]) for a in acks] == [(p, o) for p, o, *_ in expected]

    batches = [(p, h) for p in range(3) for h in stored_batches(broker, topic, p)]
    assert len(batches) > 3, "several batches per partition, so sequences were checked across them"
    assert len({h.producer_id for _p, h in batches}) == 1 and batches[0][1].producer_id >= 0
    assert {h.producer_epoch for _p, h in batches} == {0}
    for partition in range(3):
        mine = [h for p, h in batches if p == partition]
        assert [h.base_sequence for h in mine] == [sum(b.records_count for b in mine[:i]) for i in range(len(mine))]
        assert [h.base_offset for h in mine] == [h.base_sequence for h in mine]
    assert confluent_read(bootstrap, topic, 3, count) and \
        sorted(confluent_read(bootstrap, topic, 3, count)) == sorted(expected)


# -- 3. group ----------------------------------------------------------------------------

def produce_per_partition(bootstrap: str, topic: str, per_partition: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2})
    for i in range(per_partition):
        for p in range(GROUP_PARTITIONS):
            producer.produce(topic, value=f"{p}-{i}".encode(), partition=p)
    assert producer.flush(10) == 0


def assignment(member: Running) -> set:
    seen = member.values("assignment")
    return set(seen[-1]) if seen else set()


def owns_all_exactly_once(members) -> bool:
    sets = [assignment(m) for m in members]
    return all(sets) and sum(map(len, sets)) == GROUP_PARTITIONS and set().union(*sets) == set(range(GROUP_PARTITIONS))


def group_type(bootstrap: str, group: str):
    """The group's type as the broker describes it (to confluent-kafka's admin client)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return admin.describe_consumer_groups([group])[group].result(10).type


def consumed(member: Running) -> list[tuple]:
    return [tuple(pair) for batch in member.values("records") for pair in batch]


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_group_of_three_processes_survives_a_killed_member(java, group_broker, protocol, tmp_path):
    bootstrap, topic, group = group_broker.bootstrap_servers, f"java-group-{protocol}", f"java-{protocol}"
    create_topic(bootstrap, topic, GROUP_PARTITIONS)
    produce_per_partition(bootstrap, topic, 10)
    members = [Running(java, "group-member", bootstrap, topic, group, f"group.protocol={protocol}",
                       log=tmp_path / f"member-{i}.log") for i in range(3)]
    try:
        wait_for(lambda: owns_all_exactly_once(members), 30, "3 members owning 6 partitions", members)
        wait_for(lambda: committed(bootstrap, group, topic, GROUP_PARTITIONS) == dict.fromkeys(range(6), 10),
                 15, "the first commits", members)
        assert group_type(bootstrap, group) == {"classic": ConsumerGroupType.CLASSIC,
                                                "consumer": ConsumerGroupType.CONSUMER}[protocol]

        victim, survivors = members[0], members[1:]
        orphaned, killed_at = assignment(victim), time.monotonic()
        assert victim.stop(signal.SIGKILL) == -signal.SIGKILL
        moved_at = wait_for(lambda: owns_all_exactly_once(survivors), 20, "takeover after a kill", survivors)
        assert moved_at - killed_at < GROUP_SESSION_MS / 1000 + 5, "partitions move within the session timeout"
        produce_per_partition(bootstrap, topic, 10)
        wait_for(lambda: committed(bootstrap, group, topic, GROUP_PARTITIONS) == dict.fromkeys(range(6), 20),
                 15, "the commits after the takeover", survivors)

        # The killed member's partitions were taken up where it had committed: nothing skipped.
        taken_up = [(p, o) for m in survivors for p, o in consumed(m) if p in orphaned and o >= 10]
        assert {p: min(o for q, o in taken_up if q == p) for p in orphaned} == dict.fromkeys(orphaned, 10)
        seen = set().union(*(consumed(m) for m in members))
        assert seen == {(p, o) for p in range(GROUP_PARTITIONS) for o in range(20)}
    finally:
        codes = [m.stop() for m in members]
    assert codes[1:] == [JVM_SIGTERM_EXIT] * 2
    assert all(m.values("closed") == [True] for m in members[1:])


# -- 4. times ----------------------------------------------------------------------------

def test_offsets_for_times_finds_the_earliest_record_at_or_after_a_time(java, broker):
    bootstrap, topic, per_partition = broker.bootstrap_servers, "java-times", 10
    create_topic(bootstrap, topic)
    # partition p's record i at BASE_TS + i s + p * 0.6 s: the partitions answer one time differently
    stamps = {p: [BASE_TS + i * 1000 + p * 600 for i in range(per_partition)] for p in range(3)}
    records = [(p, None, f"{p}-{i}".encode(), [], ts) for p in range(3) for i, ts in enumerate(stamps[p])]
    run_step(java, "produce", bootstrap, topic, stdin=record_lines(records))
    past_the_end = BASE_TS + per_partition * 1000 + 5000
    queries = [BASE_TS - 1, BASE_TS + 4500, BASE_TS + 9000, past_the_end]

    lines = run_step(java, "offsets-for-times", bootstrap, topic, "3", *map(str, queries))
    found = {(r["timestamp"], r["partition"]): (r["offset"], r["record_timestamp"]) for r in lines if "timestamp" in r}
    for query in queries:
        for p in range(3):
            at = next((i for i, ts in enumerate(stamps[p]) if ts >= query), None)
            assert found[query, p] == ((at, stamps[p][at]) if at is not None else (None, None)), (query, p)
    assert found[past_the_end, 0] == (None, None)
    ends = [(r["partition"], r["beginning"], r["end"]) for r in lines if "end" in r]
    assert ends == [(p, 0, per_partition) for p in range(3)]


# -- 5. admin ----------------------------------------------------------------------------

def test_admin_creates_describes_and_deletes_a_topic(java, broker):
    bootstrap, topic = broker.bootstrap_servers, "java-admin"
    lines = run_step(java, "admin", bootstrap, topic, "4", "config.cleanup.policy=compact",
                     "config.retention.ms=3600000")
    said = {key: value for line in lines for key, value in line.items()}

    dynamic = {"cleanup.policy": {"value": "compact", "source": "DYNAMIC_TOPIC_CONFIG", "read_only": False},
               "retention.ms": {"value": "3600000", "source": "DYNAMIC_TOPIC_CONFIG", "read_only": False}}
    created = said["create"]
    assert (created["partitions"], created["replication_factor"]) == (4, 1)
    assert created["configs"] == dynamic
    assert said["create_again"]["error"] == "TopicExistsException"

    described = said["describe_topic"]
    node = said["describe_cluster"]["nodes"]
    assert [f"{n['host']}:{n['port']}" for n in node] == [bootstrap]
    broker_id = node[0]["id"]
    assert (described["name"], described["internal"], described["topic_id"]) == (topic, False, created["topic_id"])
    assert described["partitions"] == [{"partition": p, "leader": broker_id, "replicas": [broker_id],
                                        "isr": [broker_id]} for p in range(4)]

    configs = said["describe_configs"]
    assert {name: configs[name] for name in dynamic} == dynamic
    assert configs["segment.bytes"]["source"] == "DEFAULT_CONFIG"
    assert said["describe_cluster"]["controller"] == broker_id and said["describe_cluster"]["cluster_id"]

    assert said["delete"] == "ok" and said["listed_after_delete"] is False
    assert topic not in AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics


# -- Kafka Streams -----------------------------------------------------------------------

WORDS = "kafka streams count words broker log partition offset group commit".split()


def latest_counts(bootstrap: str, topic: str, want: dict, timeout: float,
                  isolation: str = "read_uncommitted") -> dict:
    """word -> its latest count on the output topic, read until it equals ``want`` (or the time is up)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "wordcount-check", "enable.auto.commit": False,
                         "isolation.level": isolation})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(3)])
    counts, deadline = {}, time.monotonic() + timeout
    try:
        while counts != want and time.monotonic() < deadline:
            for m in consumer.consume(500, 0.2):
                assert m.error() is None, m.error()
                counts[m.key().decode()] = int.from_bytes(m.value(), "big", signed=True)
    finally:
        consumer.close()
    return counts


def random_lines(rng: random.Random, count: int) -> list[str]:
    return [" ".join(rng.choice(WORDS).capitalize() if rng.random() < 0.2 else rng.choice(WORDS)
                     for _ in range(rng.randint(1, 8))) + rng.choice(["", ".", "!"]) for _ in range(count)]


def produce_lines(bootstrap: str, topic: str, lines: list[str]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i, line in enumerate(lines):
        producer.produce(topic, value=line.encode(), partition=i % 3)
    assert producer.flush(10) == 0


def word_count(build: Path, bootstrap: str, app: str, state_dir: Path, log: Path) -> Running:
    """The Streams app.  It purges its repartition topic (DeleteRecords) every 100 ms instead of 30 s;
    its session times out in 3 s instead of 45 s, since Streams does not leave its group on close and
    a restarted app waits for the old member's session to end."""
    return Running(build, "wordcount", bootstrap, "lines", "counts", app, str(state_dir),
                   "repartition.purge.interval.ms=100", "session.timeout.ms=3000", "heartbeat.interval.ms=500",
                   log=log)


def assert_counted(streams: Running, bootstrap: str, want: Counter) -> None:
    counts = latest_counts(bootstrap, "counts", dict(want), 45)
    assert streams.values("error") == [], streams.describe()
    assert counts == dict(want), streams.describe()


def stop_streams(streams: Running) -> None:
    code = streams.stop()
    states = streams.values("state")
    assert "RUNNING" in states and states[-1] == "NOT_RUNNING" and code == JVM_SIGTERM_EXIT, states


def test_streams_word_count_counts_what_python_wrote(java, kavka_broker_factory, tmp_path):
    broker = kavka_broker_factory({"num.partitions": 3, "group.initial.rebalance.delay.ms": 0,
                                   "group.min.session.timeout.ms": 1000})
    bootstrap, app, log = broker.bootstrap_servers, "java-wordcount", tmp_path / "streams.log"
    create_topic(bootstrap, "lines")
    create_topic(bootstrap, "counts")
    rng = random.Random(11)
    first, second = random_lines(rng, 400), random_lines(rng, 200)
    produce_lines(bootstrap, "lines", first)
    want = Counter(word.lower() for line in first for word in re.findall(r"\w+", line))

    streams = word_count(java, bootstrap, app, tmp_path / "state-1", log)
    try:
        assert_counted(streams, bootstrap, want)
    finally:
        stop_streams(streams)

    # Restarted with an empty state directory: the counts come back from the changelog, and
    # the input is taken up at the committed offsets (a record counted twice would show).
    produce_lines(bootstrap, "lines", second)
    want.update(word.lower() for line in second for word in re.findall(r"\w+", line))
    streams = word_count(java, bootstrap, app, tmp_path / "state-2", log)
    try:
        assert_counted(streams, bootstrap, want)
        assert_internal_topics(bootstrap, app)
    finally:
        stop_streams(streams)


def assert_internal_topics(bootstrap: str, app: str) -> None:
    """A repartition topic, purged as it is consumed, and a compacted changelog, 3 partitions each."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = admin.list_topics(timeout=10).topics
    changelog, repartition = f"{app}-counts-changelog", f"{app}-words-repartition"
    assert sorted(t for t in topics if t.startswith(f"{app}-")) == [changelog, repartition]
    assert [len(topics[t].partitions) for t in (changelog, repartition)] == [3, 3]
    policies = {r.name: f.result(10)["cleanup.policy"].value for r, f in
                admin.describe_configs([ConfigResource("topic", t) for t in (changelog, repartition)]).items()}
    assert policies == {changelog: "compact", repartition: "delete"}
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        def purged() -> bool:
            marks = [consumer.get_watermark_offsets(TopicPartition(repartition, p), 10) for p in range(3)]
            return all(0 < low == high for low, high in marks)
        wait_for(purged, 15, "the repartition topic purged up to its end")
    finally:
        consumer.close()
