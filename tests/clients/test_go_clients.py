"""The Go clients franz-go (kgo, kadm) and Sarama against a real kavka broker.

Each test runs a step of tests/clients/go's programs (``franz`` or ``sarama``, see
README.md's scenario) as a subprocess and asserts on the JSON lines it prints;
confluent-kafka cross-checks what a Go client wrote (same keys, headers and
timestamps), and the segment files show the codec the client stored.  Sarama has
no KIP-848 consumer, so only franz-go runs the group step with
``group.protocol=consumer`` (kgo.ServerSideBalancer).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

# client name -> (program, environment); sarama-2.1 caps Sarama's request versions at Kafka 2.1's,
# the oldest client Kafka 4 still serves (KIP-896), where "sarama" asks for Kafka 4.0's
PROGRAMS = {"franz": ("franz", {}), "sarama": ("sarama", {}),
            "sarama-2.1": ("sarama", {"KAVKA_SARAMA_VERSION": "2.1.0"})}
CLIENTS = list(PROGRAMS)
CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
BASE_TS = 1_700_000_000_000
STEP_TIMEOUT = 90      # seconds for one step; each program bounds its own work to 60 s
WAIT = 30.0            # seconds for a group to reach a state
# Short group timeouts, so a killed member's partitions move within seconds (both protocols).
GROUP_SETTINGS = {"num.partitions": 3, "group.consumer.session.timeout.ms": 6000,
                  "group.consumer.heartbeat.interval.ms": 500, "group.initial.rebalance.delay.ms": 1000}


@pytest.fixture(scope="module")
def go_dir(client_build):
    return client_build("go")


def command(go_dir, client: str, step: str, bootstrap: str, *args) -> list[str]:
    return [str(go_dir / PROGRAMS[client][0]), step, bootstrap, *map(str, args)]


def environment(client: str) -> dict[str, str]:
    return {**os.environ, **PROGRAMS[client][1]}


def run_step(go_dir, client: str, step: str, bootstrap: str, *args, records=None) -> list[dict]:
    """Run one step to completion; its JSON lines, after checking it exited 0 and printed no error."""
    stdin = "".join(json.dumps(r) + "\n" for r in records or [])
    result = subprocess.run(command(go_dir, client, step, bootstrap, *args), input=stdin, env=environment(client),
                            capture_output=True, text=True, timeout=STEP_TIMEOUT)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    errors = [line for line in lines if line["event"] == "error"]
    assert result.returncode == 0 and not errors, (client, step, errors, result.stderr[-3000:])
    return lines


def events(lines: list[dict], name: str) -> list[dict]:
    return [line for line in lines if line["event"] == name]


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=10)[name].result(timeout=10)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


# -- records -------------------------------------------------------------------------------

def sample_records(partitions: int = 3) -> list[dict]:
    """Keyed records with headers and explicit timestamps, plus null key, null value and empty fields."""
    records = [{"partition": i % partitions, "key": f"key-{i}", "value": f"value-{i}-" * (1 + i % 7),
                "headers": [["h1", f"hv{i}"], ["h2", ""]], "timestamp": BASE_TS + i * 1000}
               for i in range(30)]
    return records + [
        {"partition": 0, "key": None, "value": "no key", "headers": [["h1", "nk"]], "timestamp": BASE_TS + 100_000},
        {"partition": 1, "key": "tombstone", "value": None, "headers": [], "timestamp": BASE_TS + 100_001},
        {"partition": 2, "key": "", "value": "", "headers": [["", ""]], "timestamp": BASE_TS + 100_002},
    ]


def with_offsets(records: list[dict]) -> list[tuple]:
    """(partition, offset, key, value, headers, timestamp) as stored: offsets in sending order per partition."""
    rows, next_offset = [], {}
    for r in records:
        offset = next_offset.get(r["partition"], 0)
        next_offset[r["partition"]] = offset + 1
        rows.append((r["partition"], offset, r["key"], r["value"], tuple(map(tuple, r["headers"])), r["timestamp"]))
    return sorted(rows)


def rows_of(lines: list[dict]) -> list[tuple]:
    return sorted((r["partition"], r["offset"], r["key"], r["value"], tuple(map(tuple, r["headers"])), r["timestamp"])
                  for r in events(lines, "record"))


def text(data: bytes | None) -> str | None:
    return None if data is None else data.decode()


def confluent_rows(bootstrap: str, topic: str, partitions: int, expected: int) -> list[tuple]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "go-cross-check",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    rows, deadline = [], time.monotonic() + 20
    try:
        while len(rows) < expected and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=1000, timeout=0.2):
                if m.error():
                    assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                    continue
                headers = tuple((k, text(v)) for k, v in m.headers() or ())
                rows.append((m.partition(), m.offset(), text(m.key()), text(m.value()), headers, m.timestamp()[1]))
    finally:
        consumer.close()
    return sorted(rows)


def stored_batches(broker, topic: str, partition: int) -> list:
    """The record batch headers of one partition's segment files, in order."""
    from kavka.protocol.records import iter_batches

    return [header for path in sorted((broker.data_dir / f"{topic}-{partition}").glob("*.log"))
            for _pos, header in iter_batches(path.read_bytes())]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("client", CLIENTS)
def test_records_round_trip_with_every_codec(go_dir, broker, client, codec):
    topic = f"go-{client}-{codec}"
    create_topic(broker.bootstrap_servers, topic, 3)
    sent = sample_records()
    expected = with_offsets(sent)
    lines = run_step(go_dir, client, "records", broker.bootstrap_servers, topic, codec, 3, records=sent)

    acks = sorted((a["partition"], a["offset"], a["key"]) for a in events(lines, "ack"))
    assert acks == sorted((p, o, k) for p, o, k, *_ in expected)
    assert rows_of(lines) == expected
    assert confluent_rows(broker.bootstrap_servers, topic, 3, len(expected)) == expected
    batches = [b for p in range(3) for b in stored_batches(broker, topic, p)]
    assert sum(b.records_count for b in batches) == len(expected)
    assert {b.compression for b in batches} == {CODECS.index(codec)}


@pytest.mark.parametrize("client", CLIENTS)
def test_reads_what_confluent_wrote(go_dir, broker, client):
    topic = f"go-{client}-from-confluent"
    create_topic(broker.bootstrap_servers, topic, 3)
    sent = sample_records()
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 5, "compression.type": "zstd"})
    for r in sent:
        producer.produce(topic, key=r["key"], value=r["value"], partition=r["partition"],
                         headers=[(k, v.encode()) for k, v in r["headers"]], timestamp=r["timestamp"])
    assert producer.flush(20) == 0
    lines = run_step(go_dir, client, "read", broker.bootstrap_servers, topic, 3, len(sent))
    assert rows_of(lines) == with_offsets(sent)


# -- idempotent producer ------------------------------------------------------------------------

@pytest.mark.parametrize("client", CLIENTS)
def test_idempotent_producer_stores_each_record_once_in_order(go_dir, broker, client):
    topic, count = f"go-{client}-idempotent", 500
    create_topic(broker.bootstrap_servers, topic, 3)
    lines = run_step(go_dir, client, "idempotent", broker.bootstrap_servers, topic, count)

    assert sorted((a["partition"], a["offset"]) for a in events(lines, "ack")) == [(0, i) for i in range(count)]
    batches = stored_batches(broker, topic, 0)
    assert sum(b.records_count for b in batches) == count
    producer_ids = {b.producer_id for b in batches}
    assert len(producer_ids) == 1 and min(producer_ids) >= 0, producer_ids
    sequences = [b.base_sequence for b in batches]
    assert sequences == [sum(b.records_count for b in batches[:i]) for i in range(len(batches))]
    if client == "franz":  # kgo reports its producer id
        assert [line["producer_id"] for line in events(lines, "producer")] == list(producer_ids)
    values = [row[3] for row in confluent_rows(broker.bootstrap_servers, topic, 1, count)]
    assert values == [f"idem-{i}" for i in range(count)]


# -- offsets for times -------------------------------------------------------------------------

@pytest.mark.parametrize("client", CLIENTS)
def test_offsets_for_times(go_dir, broker, client):
    topic = f"go-{client}-times"
    create_topic(broker.bootstrap_servers, topic, 3)
    sent = sample_records()[:30]          # partition i % 3, timestamp BASE_TS + i s
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for r in sent:
        producer.produce(topic, key=r["key"], value=r["value"], partition=r["partition"], timestamp=r["timestamp"])
    assert producer.flush(20) == 0
    asked = [BASE_TS - 1, BASE_TS + 10_500, BASE_TS + 20_000, BASE_TS + 3_600_000]
    lines = run_step(go_dir, client, "times", broker.bootstrap_servers, topic, *asked)

    got = {(o["asked"], o["partition"]): o["offset"] for o in events(lines, "offset")}
    assert all(o["error"] == "" for o in events(lines, "offset"))
    for ts in asked[:3]:
        for p in range(3):
            first = min(i for i in range(p, 30, 3) if BASE_TS + i * 1000 >= ts)
            assert got[(ts, p)] == first // 3, (ts, p)
    # past the last record Kafka answers -1; kadm turns that into the end offset (its documented behaviour)
    past = 10 if client == "franz" else -1
    assert [got[(asked[3], p)] for p in range(3)] == [past] * 3
    assert {o["partition"]: o["offset"] for o in events(lines, "end")} == {0: 10, 1: 10, 2: 10}
    if client == "franz":  # kadm also reports the found record's timestamp
        stamps = {(o["asked"], o["partition"]): o["timestamp"] for o in events(lines, "offset")}
        assert stamps[(BASE_TS + 10_500, 2)] == BASE_TS + 11_000


# -- admin --------------------------------------------------------------------------------------

@pytest.mark.parametrize("client", CLIENTS)
def test_admin_create_describe_delete(go_dir, broker, client):
    topic = f"go-{client}-admin"
    lines = run_step(go_dir, client, "admin", broker.bootstrap_servers, topic)

    first, second = events(lines, "created")
    assert first["error"] == "" and second["error"] == "TOPIC_ALREADY_EXISTS"
    if client == "franz":  # CreateTopics v5+ answers the topic's layout and id
        assert (first["partitions"], first["replication_factor"], first["has_id"]) == (4, 1, True)
    [described] = events(lines, "topic")
    assert described["error"] == "" and not described["internal"]
    [cluster] = events(lines, "cluster")
    [node] = cluster["brokers"]
    assert cluster["controller"] == node["node_id"]
    port = int(broker.bootstrap_servers.rsplit(":", 1)[1])
    assert node.get("port", port) == port and node.get("addr", broker.bootstrap_servers).endswith(f":{port}")
    assert [(p["partition"], p["leader"], p["replicas"], p["isr"], p["error"]) for p in described["partitions"]] == \
        [(i, node["node_id"], [node["node_id"]], [node["node_id"]], "") for i in range(4)]
    [configs] = events(lines, "configs")
    entries = configs["configs"]
    dynamic = "DYNAMIC_TOPIC_CONFIG" if client == "franz" else "Topic"   # Sarama's name for the source
    assert entries["cleanup.policy"] == {"value": "compact", "source": dynamic, "sensitive": False}
    assert entries["retention.ms"]["value"] == "3600000" and entries["retention.ms"]["source"] == dynamic
    assert entries["segment.bytes"]["value"] == "1073741824"
    assert [d["error"] for d in events(lines, "deleted")] == [""]
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    wait_for(lambda: topic not in admin.list_topics(timeout=5).topics, 10, "the deleted topic gone")


# -- consumer groups ---------------------------------------------------------------------------

class Member:
    """A group member process; a thread collects its JSON lines as they come."""

    def __init__(self, go_dir, client, bootstrap, topic, group, protocol, stderr_path):
        self.stderr_path = stderr_path
        self.lines: list[dict] = []
        with open(stderr_path, "w") as stderr:
            self.process = subprocess.Popen(command(go_dir, client, "group", bootstrap, topic, group, protocol),
                                            env=environment(client), stdout=subprocess.PIPE, stderr=stderr, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            if line.strip():
                self.lines.append(json.loads(line))

    def assignment(self) -> set[int]:
        changes = events(list(self.lines), "assignment")
        return set(changes[-1]["partitions"]) if changes else set()

    def consumed(self) -> set[tuple[int, int]]:
        return {tuple(r) for line in events(list(self.lines), "records") for r in line["records"]}

    def problems(self) -> list[dict]:
        return [line for line in list(self.lines) if line["event"] == "error"]

    def stderr(self) -> str:
        return self.stderr_path.read_text()[-2000:]

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)


def spread(members: list[Member], partitions: int) -> bool:
    """Every member owns some partitions, no partition twice, all of them once."""
    owned = [m.assignment() for m in members]
    return all(owned) and sum(map(len, owned)) == partitions and set().union(*owned) == set(range(partitions))


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        return {tp.partition: tp.offset
                for tp in consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)}
    finally:
        consumer.close()


def described(bootstrap: str, group: str) -> tuple[str, int]:
    """The group's type (CLASSIC or CONSUMER, KIP-848) and member count, as confluent-kafka describes it."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    description = admin.describe_consumer_groups([group], request_timeout=10)[group].result(timeout=10)
    return description.type.name, len(description.members)


def produce_batch(bootstrap: str, topic: str, partitions: int, per_partition: int, start: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(start, start + per_partition):
        for p in range(partitions):
            producer.produce(topic, key=f"k-{p}-{i}", value=f"v-{p}-{i}", partition=p)
    assert producer.flush(20) == 0


GROUP_CASES = [pytest.param("franz", "classic", id="franz-classic"),
               pytest.param("franz", "consumer", id="franz-consumer"),
               pytest.param("sarama", "classic", id="sarama-classic"),
               pytest.param("sarama-2.1", "classic", id="sarama-2.1-classic")]


@pytest.mark.slow
@pytest.mark.parametrize(("client", "protocol"), GROUP_CASES)
def test_group_of_three_survives_a_killed_member(go_dir, kavka_broker_factory, tmp_path, client, protocol):
    broker = kavka_broker_factory(GROUP_SETTINGS)
    bootstrap, topic, group, partitions, per_phase = broker.bootstrap_servers, "go-group", f"go-{client}", 6, 50
    create_topic(bootstrap, topic, partitions)
    members = [Member(go_dir, client, bootstrap, topic, group, protocol, tmp_path / f"member-{i}.err")
               for i in range(3)]
    try:
        def state():
            return ([sorted(m.assignment()) for m in members], [m.problems() for m in members],
                    [m.stderr() for m in members])

        wait_for(lambda: spread(members, partitions), WAIT, f"partitions spread over 3 members {state()}")
        assert described(bootstrap, group) == (protocol.upper(), 3)
        produce_batch(bootstrap, topic, partitions, per_phase, 0)
        wait_for(lambda: committed(bootstrap, group, topic, partitions) == dict.fromkeys(range(partitions), per_phase),
                 WAIT, f"first phase committed {state()}")
        assert all(m.consumed() for m in members), "every member consumed some records"

        victim, survivors = members[0], members[1:]
        orphaned = victim.assignment()
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait(10)
        wait_for(lambda: spread(survivors, partitions), WAIT, f"the survivors own every partition {state()}")
        assert described(bootstrap, group) == (protocol.upper(), 2)
        produce_batch(bootstrap, topic, partitions, per_phase, per_phase)
        end = dict.fromkeys(range(partitions), 2 * per_phase)
        wait_for(lambda: committed(bootstrap, group, topic, partitions) == end, WAIT, f"committed to the end {state()}")

        everything = {(p, o) for p in range(partitions) for o in range(2 * per_phase)}
        assert set().union(*(m.consumed() for m in members)) == everything
        taken_over = set().union(*(s.consumed() for s in survivors))
        assert {(p, o) for p in orphaned for o in range(per_phase, 2 * per_phase)} <= taken_over
        for survivor in survivors:
            survivor.process.send_signal(signal.SIGTERM)
        for survivor in survivors:
            assert survivor.process.wait(20) == 0, survivor.stderr()
            survivor.reader.join(5)
            assert events(survivor.lines, "closed") and not survivor.problems(), survivor.lines[-5:]
    finally:
        for m in members:
            m.stop()
