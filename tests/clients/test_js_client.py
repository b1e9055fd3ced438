"""kafkajs (npm ``kafkajs`` 2.x) against kavka: the scenario of tests/clients/README.md.

``js/scenario.js STEP BOOTSTRAP`` does one step with kafkajs and prints what it saw as JSON
lines; this module starts the broker, feeds each step its input on stdin, and asserts on the
lines, and on what confluent-kafka (librdkafka) and the broker's own segment files say about
the same records: kafkajs's keys, headers and timestamps read back by another client, the
batch codec and producer id stored on disk.  The group step runs three kafkajs processes, one
of which is SIGKILLed; the survivors must take its partitions over at its committed offsets.
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.timeout(120)

BASE_TS = 1_700_000_000_000
PARTITIONS = 3
STEP_TIMEOUT = 60          # seconds for one scenario step (a kafkajs process)
CODEC_BITS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
TOPIC_RESOURCE, BROKER_RESOURCE = 2, 4   # DescribeConfigs resource types
GROUP_PARTITIONS = 6
SESSION_MS = 3000
GROUP_SETTINGS = {"group.initial.rebalance.delay.ms": 0, "group.min.session.timeout.ms": 1000,
                  "offsets.topic.num.partitions": 5}


@pytest.fixture
def broker(kavka_broker_factory):
    """Groups join at once (no initial rebalance delay): every step reads through a group."""
    return kavka_broker_factory({"num.partitions": PARTITIONS, **GROUP_SETTINGS})


@pytest.fixture(scope="module")
def js(client_build):
    return client_build("js")


def run_step(js, step: str, bootstrap: str, payload: dict) -> list[dict]:
    """The JSON lines kafkajs printed for one step (which must end with ``done``)."""
    result = subprocess.run(["node", str(js / "scenario.js"), step, bootstrap], input=json.dumps(payload),
                            capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False)
    events = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert result.returncode == 0 and events and events[-1]["event"] == "done", (events[-5:], result.stderr[-4000:])
    return events


def of(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["event"] == kind]


# -- records --------------------------------------------------------------------------------

def scenario_records() -> list[dict]:
    """Keyed records with headers and explicit timestamps over 3 partitions, and the edge cases."""
    records = [{"partition": i % PARTITIONS, "key": f"key-{i}", "value": f"value-{i}-" * (1 + i % 7),
                "headers": [["h1", f"hv{i}"], ["h2", ""]], "timestamp": BASE_TS + i * 1000} for i in range(30)]
    return records + [
        {"partition": 0, "key": None, "value": "no key", "headers": [["h1", "nk"], ["h1", "twice"], ["h3", "x"]],
         "timestamp": BASE_TS + 100_000},
        {"partition": 1, "key": "tombstone", "value": None, "headers": [], "timestamp": BASE_TS + 100_001},
        {"partition": 2, "key": "", "value": "", "headers": [["", ""]], "timestamp": BASE_TS + 100_002},
    ]


def expected_rows(records: list[dict]) -> list[tuple]:
    """(partition, offset, key, value, headers, timestamp), offsets in send order per partition."""
    rows, next_offset = [], [0] * PARTITIONS
    for r in records:
        rows.append((r["partition"], next_offset[r["partition"]], r["key"], r["value"],
                     tuple(map(tuple, r["headers"])), r["timestamp"]))
        next_offset[r["partition"]] += 1
    return sorted(rows)


def decoded(data: bytes | None) -> str | None:
    return None if data is None else data.decode()


def confluent_read(bootstrap: str, topic: str, count: int, partitions: int = PARTITIONS) -> list[tuple]:
    """Every record of the topic through librdkafka, with assign() from offset 0."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-confluent",
                         "enable.auto.commit": False, "enable.partition.eof": False})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    rows, deadline = [], time.monotonic() + 20
    try:
        while len(rows) < count and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=500, timeout=0.2):
                assert m.error() is None or m.error().code() == KafkaError._PARTITION_EOF, m.error()
                if m.error() is None:
                    headers = tuple((k, decoded(v)) for k, v in m.headers() or ())
                    rows.append((m.partition(), m.offset(), decoded(m.key()), decoded(m.value()),
                                 headers, m.timestamp()[1]))
    finally:
        consumer.close()
    return sorted(rows)


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the result is in
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(10)


def stored_batches(broker, topic: str, partitions: int) -> list:
    """The v2 batch headers of the topic's segment files, as the broker stored them."""
    from kavka.protocol.records import iter_batches

    return [header for p in range(partitions)
            for path in sorted((broker.data_dir / f"{topic}-{p}").glob("*.log"))
            for _pos, header in iter_batches(path.read_bytes())]


@pytest.mark.parametrize("codec", list(CODEC_BITS))
def test_records_every_codec_read_back_by_kafkajs_and_confluent(js, broker, codec):
    topic, records = f"js-records-{codec}", scenario_records()
    seek = {0: 4, 1: 9, 2: 0}   # inside the one batch kafkajs sends per partition, at its end, at its start
    events = run_step(js, "records", broker.bootstrap_servers,
                      {"topic": topic, "codec": codec, "partitions": PARTITIONS, "records": records, "seek": seek})
    assert of(events, "created") == [{"event": "created", "topic": topic, "created": True}]
    sent = of(events, "sent")
    assert sorted((s["partition"], s["base_offset"], s["error_code"]) for s in sent) == \
        [(p, 0, 0) for p in range(PARTITIONS)]

    expected = expected_rows(records)
    got = sorted((r["partition"], r["offset"], r["key"], r["value"], tuple(map(tuple, r["headers"])), r["timestamp"])
                 for r in of(events, "record"))
    assert got == expected, "kafkajs read back what it wrote"
    seeked = sorted((r["partition"], r["offset"], r["key"], r["value"], tuple(map(tuple, r["headers"])), r["timestamp"])
                    for r in of(events, "seeked"))
    assert seeked == [row for row in expected if row[1] >= seek[row[0]]], "kafkajs read on from where it seeked"
    assert confluent_read(broker.bootstrap_servers, topic, len(records)) == expected, "confluent-kafka reads it too"

    batches = stored_batches(broker, topic, PARTITIONS)
    assert len(batches) == PARTITIONS, "one batch per partition: the seeks above land inside it"
    assert {b.compression for b in batches} == {CODEC_BITS[codec]}
    assert sum(b.records_count for b in batches) == len(records)


# -- idempotent -----------------------------------------------------------------------------

def test_idempotent_producer_stores_each_record_once_in_order_with_one_producer_id(js, broker):
    topic, count, per_send = "js-idempotent", 50, 7
    events = run_step(js, "idempotent", broker.bootstrap_servers, {"topic": topic, "count": count, "per_send": per_send})
    assert [(s["base_offset"], s["error_code"]) for s in of(events, "sent")] == \
        [(start, 0) for start in range(0, count, per_send)]

    batches = stored_batches(broker, topic, 1)
    assert len({(b.producer_id, b.producer_epoch) for b in batches}) == 1 and batches[0].producer_id >= 0
    assert [(b.base_offset, b.base_sequence, b.records_count) for b in batches] == \
        [(start, start, min(per_send, count - start)) for start in range(0, count, per_send)]
    rows = confluent_read(broker.bootstrap_servers, topic, count, partitions=1)
    assert [(r[1], r[2], r[3]) for r in rows] == [(i, f"k{i}", f"idempotent-{i}") for i in range(count)]


# -- group ----------------------------------------------------------------------------------

class Member:
    """One kafkajs group member (``scenario.js group``) in its own process; its lines as they come."""

    def __init__(self, js, bootstrap: str, settings: dict, log: Path) -> None:
        self.log = log  # kafkajs's log: a file, so a chatty client never blocks on a full pipe
        with open(log, "w") as stderr:
            self.proc = subprocess.Popen(["node", str(js / "scenario.js"), "group", bootstrap], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=stderr, text=True)
        self.proc.stdin.write(json.dumps(settings))
        self.proc.stdin.close()
        self.events: list[dict] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            if line.strip():
                self.events.append({**json.loads(line), "at": time.monotonic()})

    @property
    def assignment(self) -> frozenset:
        joins = of(list(self.events), "assignment")
        return frozenset(joins[-1]["partitions"]) if joins and self.proc.poll() is None else frozenset()

    def consumed(self, since: float = 0.0) -> set[tuple[int, int]]:
        return {(b["partition"], o) for b in of(list(self.events), "batch") if b["at"] >= since for o in b["offsets"]}

    def stop(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.reader.join(5)

    def log_tail(self) -> str:
        return self.log.read_text()[-3000:]


def wait_for(predicate, timeout: float, what: str, members=()) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.05)
    states = [(sorted(m.assignment), m.proc.poll(), m.events[-3:], m.log_tail()) for m in members]
    raise AssertionError(f"{what} not reached within {timeout} s: {states}")


def owns_all_once(members) -> bool:
    sets = [m.assignment for m in members]
    return all(sets) and sum(map(len, sets)) == GROUP_PARTITIONS and set().union(*sets) == set(range(GROUP_PARTITIONS))


def produce_each(bootstrap: str, topic: str, count: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2})
    for i in range(count):
        for p in range(GROUP_PARTITIONS):
            producer.produce(topic, value=f"{p}-{i}".encode(), partition=p)
    assert producer.flush(10) == 0


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return {tp.partition: tp.offset for tp in
                consumer.committed([TopicPartition(topic, p) for p in range(GROUP_PARTITIONS)], timeout=10)}
    finally:
        consumer.close()


@pytest.mark.slow  # three node processes, two rebalances and a session timeout (~15 s)
def test_group_of_three_processes_one_killed_the_others_take_over(js, broker, tmp_path):
    bootstrap, topic, group = broker.bootstrap_servers, "js-group", "js-group"
    create_topic(bootstrap, topic, GROUP_PARTITIONS)
    produce_each(bootstrap, topic, 10)
    settings = {"topic": topic, "group": group, "session_ms": SESSION_MS, "heartbeat_ms": 300, "rebalance_ms": 10000}
    members = [Member(js, bootstrap, settings, tmp_path / f"member-{i}.log") for i in range(3)]
    try:
        wait_for(lambda: owns_all_once(members), 40, "3 kafkajs members owning 6 partitions", members)
        wait_for(lambda: committed(bootstrap, group, topic) == dict.fromkeys(range(6), 10), 20, "first commits", members)

        victim, survivors = members[0], members[1:]
        orphaned, killed_at = victim.assignment, time.monotonic()
        victim.stop(signal.SIGKILL)
        moved_at = wait_for(lambda: owns_all_once(survivors), 30, "takeover after a SIGKILL", survivors)
        assert moved_at - killed_at < SESSION_MS / 1000 + 5, "partitions move about a session timeout after the kill"

        produce_each(bootstrap, topic, 10)
        wait_for(lambda: committed(bootstrap, group, topic) == dict.fromkeys(range(6), 20), 20, "commits at the end",
                 survivors)
        seen = set().union(*(m.consumed() for m in members))
        assert seen >= {(p, o) for p in range(GROUP_PARTITIONS) for o in range(20)}, "every record consumed"
        after = set().union(*(m.consumed(killed_at) for m in survivors))
        assert {p: min(o for q, o in after if q == p) for p in orphaned} == dict.fromkeys(orphaned, 10), \
            "the killed member's partitions resume at its committed offsets"

        check_live_group(js, bootstrap, group, topic, survivors)

        for member in survivors:
            member.stop(signal.SIGTERM)
            assert of(member.events, "left") and member.proc.returncode == 0, member.log_tail()
        check_empty_group(js, bootstrap, group, topic)
    finally:
        for member in members:
            member.stop(signal.SIGKILL)


def check_live_group(js, bootstrap: str, group: str, topic: str, survivors) -> None:
    """kafkajs's admin sees the two survivors, their assignments and their commits; it may not delete the group."""
    events = run_step(js, "groups", bootstrap, {"group": group, "topic": topic, "live": True})
    (described,) = of(events, "described")
    assert (described["state"], described["protocol_type"], described["error_code"]) == ("Stable", "consumer", 0)
    assigned = sorted(sorted(m["assignment"][topic]) for m in described["members"])
    assert assigned == sorted(sorted(m.assignment) for m in survivors)
    assert {"group": group, "protocol_type": "consumer"} in of(events, "groups")[0]["groups"]
    assert of(events, "offsets")[0]["partitions"] == [{"partition": p, "offset": 20} for p in range(GROUP_PARTITIONS)]
    refused = {e["what"]: e for e in of(events, "error")}
    assert refused["delete a live group"]["errors"] == ["NON_EMPTY_GROUP"]
    assert "no running instances" in refused["set offsets of a live group"]["message"]


def check_empty_group(js, bootstrap: str, group: str, topic: str) -> None:
    """Once its members left, kafkajs's admin sets two of the group's offsets, then deletes it."""
    moved = {0: 3, 5: 7}
    events = run_step(js, "groups", bootstrap, {"group": group, "topic": topic, "live": False,
                                                "set": [{"partition": p, "offset": str(o)} for p, o in moved.items()]})
    (described,) = of(events, "described")
    assert (described["state"], described["members"]) == ("Empty", [])
    before, after = of(events, "offsets")
    assert [p["offset"] for p in before["partitions"]] == [20] * GROUP_PARTITIONS
    assert {p["partition"]: p["offset"] for p in after["partitions"]} == {p: moved.get(p, 20) for p in range(6)}
    assert of(events, "deleted") == [{"event": "deleted", "groups": [{"group": group, "error_code": 0}]}]
    assert group not in [g["group"] for g in of(events, "groups")[-1]["groups"]]
    assert committed(bootstrap, group, topic) == dict.fromkeys(range(6), OFFSET_INVALID), "its offsets went with it"


# -- times ----------------------------------------------------------------------------------

def test_offsets_for_times(js, broker):
    topic, records = "js-times", scenario_records()[:30]
    create_topic(broker.bootstrap_servers, topic, PARTITIONS)
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers})
    for r in records:
        producer.produce(topic, value=r["value"].encode(), key=r["key"].encode(), partition=r["partition"],
                         timestamp=r["timestamp"])
    assert producer.flush(10) == 0
    rows = expected_rows(records)
    end = {p: sum(1 for r in rows if r[0] == p) for p in range(PARTITIONS)}
    probes = [0, BASE_TS, BASE_TS + 4500, BASE_TS + 17_000, BASE_TS + 28_999, BASE_TS + 10**9]

    delete_before = {0: 4, 2: end[2]}
    events = run_step(js, "times", broker.bootstrap_servers, {"topic": topic, "timestamps": probes, "delete_before": [
        {"partition": p, "offset": str(o)} for p, o in delete_before.items()]})
    before, after = of(events, "ends")
    assert before["partitions"] == [{"partition": p, "low": 0, "high": end[p]} for p in range(PARTITIONS)]
    assert after["partitions"] == [{"partition": p, "low": delete_before.get(p, 0), "high": end[p]}
                                   for p in range(PARTITIONS)], "DeleteRecords moved the log start offsets"
    for probe, found in zip(probes, of(events, "offsets"), strict=True):
        # the earliest offset whose timestamp is at or after the probe; none: kafkajs answers the end
        wanted = {p: min([r[1] for r in rows if r[0] == p and r[5] >= probe], default=end[p]) for p in range(PARTITIONS)}
        assert found["timestamp"] == probe
        assert {x["partition"]: x["offset"] for x in found["partitions"]} == wanted, probe


# -- admin ----------------------------------------------------------------------------------

def test_admin_create_describe_delete(js, kavka_broker_factory):
    broker = kavka_broker_factory({"num.partitions": PARTITIONS, "broker.id": 7})
    topic, configs = "js-admin", {"retention.ms": "123456", "cleanup.policy": "compact"}
    altered = {"retention.ms": "654321", "max.message.bytes": "200000"}
    events = run_step(js, "admin", broker.bootstrap_servers, {
        "topic": topic, "partitions": 4, "replication": 1, "configs": configs, "too_many_replicas": 3,
        "grow_to": 6, "altered": altered, "broker_configs": ["num.partitions", "log.retention.hours"]})
    assert [e["created"] for e in of(events, "created")] == [True, False], "the second create: TOPIC_ALREADY_EXISTS"
    (refused,) = of(events, "error")
    assert refused["what"] == "bad replication factor" and refused["errors"] == ["INVALID_REPLICATION_FACTOR"]

    created, grown = of(events, "metadata")
    for metadata, count in ((created, 4), (grown, 6)):
        assert metadata["partitions"] == [{"partition": p, "leader": 7, "replicas": [7], "isr": [7], "error_code": 0}
                                          for p in range(count)]
    described, altered_configs, broker_configs = of(events, "configs")
    assert (described["type"], described["name"], described["error_code"]) == (TOPIC_RESOURCE, topic, 0)
    for name, value in configs.items():
        assert described["entries"][name] == {"value": value, "is_default": False}
    assert described["entries"]["segment.bytes"] == {"value": "1073741824", "is_default": True}
    # AlterConfigs (not incremental) replaces the topic's whole set: cleanup.policy is back to its default
    for name, value in altered.items():
        assert altered_configs["entries"][name] == {"value": value, "is_default": False}
    assert altered_configs["entries"]["cleanup.policy"] == {"value": "delete", "is_default": True}
    assert (broker_configs["type"], broker_configs["name"]) == (BROKER_RESOURCE, "7")
    assert broker_configs["entries"] == {"num.partitions": {"value": "3", "is_default": False},
                                         "log.retention.hours": {"value": "168", "is_default": True}}

    (cluster,) = of(events, "cluster")
    assert cluster["controller"] == 7 and cluster["cluster_id"]
    assert cluster["brokers"] == [{"node_id": 7, "host": "127.0.0.1", "port": broker.port}]
    before, after = (e["names"] for e in of(events, "topics"))
    assert topic in before and topic not in after and f"{topic}-rf" not in before
    assert topic not in AdminClient({"bootstrap.servers": broker.bootstrap_servers}).list_topics(timeout=10).topics
