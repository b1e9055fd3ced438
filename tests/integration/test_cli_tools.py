"""`kavka topics|configs|produce|consume` as a user runs them: subprocesses talking to an
in-process broker over the Kafka protocol, with one-line errors."""

from __future__ import annotations

import datetime
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic

from kavka.cli.common import Progress, error_name
from kavka.cli.consume import parse_time
from kavka.cli.produce import murmur2, partition_for_key, read_lines
from kavka.client import Client
from kavka.protocol import records as rb

TIMEOUT = 60


def kavka(broker, *args: str, input: str | bytes | None = None, env: dict | None = None):
    environment = dict(os.environ, KAVKA_BOOTSTRAP=broker.bootstrap_servers if broker else "")
    environment.update(env or {})
    data = input.encode() if isinstance(input, str) else input
    return subprocess.run([sys.executable, "-m", "kavka", *args], input=data, capture_output=True,
                          env=environment, timeout=TIMEOUT)


def ok(result) -> str:
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def failed(result) -> str:
    """The single error line of a failed command."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def consume_json(broker, topic: str, *args: str) -> list[dict]:
    out = ok(kavka(broker, "consume", topic, "--from-beginning", "--timeout", "0.5", "--format", "json", *args))
    return [json.loads(line) for line in out.splitlines()]


def batch_count(broker, topic: str, partition: int = 0) -> int:
    request = FetchRequest(
        replica_id=-1, max_wait=datetime.timedelta(0), min_bytes=0, max_bytes=64 << 20, isolation_level=0,
        session_id=0, session_epoch=-1, forgotten_topics_data=(), rack_id="",
        topics=(FetchTopic(topic=topic, partitions=(FetchPartition(
            partition=partition, current_leader_epoch=-1, fetch_offset=0, last_fetched_epoch=-1,
            log_start_offset=-1, partition_max_bytes=64 << 20),)),))
    with Client(broker.bootstrap_servers) as client:
        data = client.request(request).responses[0].partitions[0].records
    return len(list(rb.iter_batches(data)))


# -- topics --------------------------------------------------------------------------------

@pytest.mark.slow
def test_topic_lifecycle(kavka_broker):
    b = kavka_broker
    assert ok(kavka(b, "topics", "create", "orders", "--partitions", "3", "--config", "retention.ms=60000")) \
        == "Created topic orders with 3 partitions.\n"
    ok(kavka(b, "topics", "create", "audit", "--replication-factor", "1"))
    assert ok(kavka(b, "topics", "list")).split() == ["audit", "orders"]

    ok(kavka(b, "produce", "orders", "--partition", "2", input="one\ntwo\n"))
    described = ok(kavka(b, "topics", "describe", "orders")).splitlines()
    assert described[0].startswith("Topic: orders  TopicId: ")
    assert described[0].endswith("Partitions: 3  ReplicationFactor: 1")
    assert described[1] == "Configs: retention.ms=60000"
    assert described[2].split() == ["PARTITION", "LEADER", "REPLICAS", "ISR", "LOG-START", "LOG-END"]
    assert [line.split() for line in described[3:]] == [
        ["0", "0", "0", "0", "0", "0"], ["1", "0", "0", "0", "0", "0"], ["2", "0", "0", "0", "0", "2"]]

    assert ok(kavka(b, "topics", "alter", "orders", "--partitions", "5")) == "Topic orders now has 5 partitions.\n"
    assert len(ok(kavka(b, "topics", "describe", "orders")).splitlines()) == 3 + 5
    assert ok(kavka(b, "topics", "delete", "orders")) == "Deleted topic orders.\n"
    assert ok(kavka(b, "topics", "list")).split() == ["audit"]
    assert ok(kavka(b, "topics", "delete", "orders", "--if-exists")) == "Topic orders does not exist.\n"


@pytest.mark.slow
def test_topic_errors_are_one_line(kavka_broker):
    b = kavka_broker
    ok(kavka(b, "topics", "create", "taken"))
    assert failed(kavka(b, "topics", "create", "taken")) == \
        "kavka topics: TOPIC_ALREADY_EXISTS: Topic 'taken' already exists."
    assert ok(kavka(b, "topics", "create", "taken", "--if-not-exists")) == "Topic taken already exists.\n"
    assert failed(kavka(b, "topics", "describe", "nowhere")) == \
        "kavka topics: UNKNOWN_TOPIC_OR_PARTITION: topic 'nowhere' does not exist"
    assert failed(kavka(b, "topics", "delete", "nowhere")).startswith("kavka topics: UNKNOWN_TOPIC_OR_PARTITION")
    assert failed(kavka(b, "topics", "create", "bad name")).startswith("kavka topics: INVALID_TOPIC_EXCEPTION: ")
    line = failed(kavka(b, "topics", "create", "t", "--config", "cleanup.policy=shred"))
    assert line.startswith("kavka topics: INVALID_CONFIG: ") and "cleanup.policy" in line
    assert failed(kavka(b, "topics", "alter", "taken", "--partitions", "1")).startswith(
        "kavka topics: INVALID_PARTITIONS: ")
    assert failed(kavka(b, "topics", "create", "t", "--config", "oops")) == \
        "kavka topics: --config wants NAME=VALUE, got 'oops'"


@pytest.mark.slow
def test_unreachable_broker():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        for args in (("topics", "list"), ("consume", "t"), ("configs", "describe", "t")):
            result = kavka(None, *args, env={"KAVKA_BOOTSTRAP": f"127.0.0.1:{port}"})
            assert failed(result) == f"kavka {args[0]}: cannot connect to 127.0.0.1:{port}: Connection refused"
        result = kavka(None, "produce", "t", "--bootstrap-server", f"127.0.0.1:{port}", input="x\n")
        assert failed(result) == f"kavka produce: cannot connect to 127.0.0.1:{port}: Connection refused"


def test_a_list_of_brokers_skips_the_dead_ones(kavka_broker):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
        ok(kavka(None, "topics", "create", "alive", "-b", f"{dead}, {kavka_broker.bootstrap_servers}"))
        listed = ok(kavka(None, "topics", "list", env={"KAVKA_BOOTSTRAP": f"{dead},{kavka_broker.bootstrap_servers}"}))
        assert "alive" in listed
        both_dead = kavka(None, "topics", "list", "-b", f"{dead},{dead}")
        assert failed(both_dead) == (f"kavka topics: none of the 2 brokers answered: cannot connect to {dead}: "
                                     f"Connection refused; cannot connect to {dead}: Connection refused")
        assert failed(kavka(None, "topics", "list", "-b", f"{dead},nonsense")) == (
            "kavka topics: the broker address must be HOST:PORT, got 'nonsense'")


# -- configs -------------------------------------------------------------------------------

@pytest.mark.slow
def test_configs_describe_and_alter(kavka_broker_factory):
    b = kavka_broker_factory({"log.segment.bytes": "1048576"})
    ok(kavka(b, "topics", "create", "events", "--config", "retention.ms=1000"))
    assert ok(kavka(b, "configs", "describe", "events")).splitlines() == [
        "NAME          VALUE  SOURCE", "retention.ms  1000   topic"]
    assert ok(kavka(b, "configs", "alter", "events", "--set", "max.message.bytes=2000000", "--delete",
                    "retention.ms", "--append", "cleanup.policy=compact")) == \
        "Updated topic events: max.message.bytes=2000000, retention.ms deleted, cleanup.policy += compact\n"
    rows = [line.split() for line in ok(kavka(b, "configs", "describe", "events")).splitlines()]
    assert rows == [["NAME", "VALUE", "SOURCE"], ["cleanup.policy", "delete,compact", "topic"],
                    ["max.message.bytes", "2000000", "topic"]]
    every = {line.split()[0]: line.split(None, 2)[1:] for line in
             ok(kavka(b, "configs", "describe", "events", "--all")).splitlines()[1:]}
    assert every["retention.ms"] == ["604800000", "default"]
    assert every["segment.bytes"] == ["1048576", "broker (log.segment.bytes)"]
    assert every["cleanup.policy"] == ["delete,compact", "topic"]

    assert ok(kavka(b, "configs", "alter", "events", "--set", "retention.ms=5", "--dry-run")).startswith("Valid")
    line = failed(kavka(b, "configs", "alter", "events", "--set", "retention.ms=soon"))
    assert line == "kavka configs: INVALID_CONFIG: retention.ms: 'soon' is not a whole number"
    line = failed(kavka(b, "configs", "alter", "events", "--append", "retention.ms=5"))
    assert line == "kavka configs: INVALID_CONFIG: Can't APPEND to key retention.ms because its type is not LIST."
    assert failed(kavka(b, "configs", "describe", "nowhere")).startswith(
        "kavka configs: UNKNOWN_TOPIC_OR_PARTITION: ")
    assert failed(kavka(b, "configs", "alter", "events")).startswith("kavka configs: nothing to change")
    rows = [line.split() for line in ok(kavka(b, "configs", "describe", "events")).splitlines()]
    assert rows[1:] == [["cleanup.policy", "delete,compact", "topic"], ["max.message.bytes", "2000000", "topic"]]
    ok(kavka(b, "configs", "alter", "events", "--delete", "cleanup.policy", "--delete", "max.message.bytes"))
    assert ok(kavka(b, "configs", "describe", "events")) == \
        "Topic events has no config overrides (--all shows every setting).\n"



@pytest.mark.slow
def test_configs_of_a_broker_and_the_cluster_defaults(kavka_broker_factory):
    b = kavka_broker_factory({"log.segment.bytes": "1048576"})
    assert ok(kavka(b, "configs", "describe", "--broker", "0")) == \
        "Broker 0 has no dynamic configs (--all shows every setting).\n"
    assert ok(kavka(b, "configs", "alter", "--broker", "0", "--set", "log.cleaner.threads=2")) == \
        "Updated broker 0: log.cleaner.threads=2\n"
    assert ok(kavka(b, "configs", "alter", "--broker-default", "--set", "log.retention.ms=3600000",
                    "--set", "log.cleaner.threads=3")) == \
        "Updated the cluster-wide broker defaults: log.retention.ms=3600000, log.cleaner.threads=3\n"
    rows = [line.split(None, 2) for line in ok(kavka(b, "configs", "describe", "--broker", "0")).splitlines()]
    assert rows == [["NAME", "VALUE", "SOURCE"], ["log.cleaner.threads", "2", "dynamic (this broker)"],
                    ["log.retention.ms", "3600000", "dynamic (cluster default)"]]
    rows = [line.split(None, 2) for line in ok(kavka(b, "configs", "describe", "--broker-default")).splitlines()]
    assert rows == [["NAME", "VALUE", "SOURCE"], ["log.cleaner.threads", "3", "dynamic (cluster default)"],
                    ["log.retention.ms", "3600000", "dynamic (cluster default)"]]
    every = {line.split()[0]: line.split(None, 2)[1:] for line in
             ok(kavka(b, "configs", "describe", "--broker", "0", "--all")).splitlines()[1:]}
    assert every["log.segment.bytes"] == ["1048576", "static (config file)"]
    assert every["num.io.threads"] == ["8", "default"]

    ok(kavka(b, "topics", "create", "events"))
    topic = {line.split()[0]: line.split(None, 2)[1:] for line in
             ok(kavka(b, "configs", "describe", "events", "--all")).splitlines()[1:]}
    assert topic["retention.ms"] == ["3600000", "cluster default (dynamic)"]

    line = failed(kavka(b, "configs", "alter", "--broker", "0", "--set", "listeners=PLAINTEXT://:1"))
    assert line == "kavka configs: INVALID_REQUEST: Cannot update these configs dynamically: Set(listeners)"
    assert failed(kavka(b, "configs", "describe", "--broker", "7")) == ("kavka configs: INVALID_REQUEST: "
                                                                       "Unexpected broker id, expected 0 or empty "
                                                                       "string, but received 7")
    assert failed(kavka(b, "configs", "describe", "events", "--broker", "0")) == \
        "kavka configs: name exactly one of: a topic, --broker ID, --broker-default"
    assert ok(kavka(b, "configs", "alter", "--broker", "0", "--delete", "log.cleaner.threads")) == \
        "Updated broker 0: log.cleaner.threads deleted\n"
    rows = [line.split(None, 2) for line in ok(kavka(b, "configs", "describe", "--broker", "0")).splitlines()]
    assert rows[1:] == [["log.cleaner.threads", "3", "dynamic (cluster default)"],
                        ["log.retention.ms", "3600000", "dynamic (cluster default)"]]

# -- produce and consume -------------------------------------------------------------------

@pytest.mark.slow
def test_produce_keys_and_headers_then_consume_text(kavka_broker):
    b = kavka_broker
    ok(kavka(b, "topics", "create", "greetings", "--partitions", "1"))
    result = kavka(b, "produce", "greetings", "--key-separator", ":", "--header", "source=cli",
                   "--header", "lang=en", input="alice:hello\nbob:hi there\r\n:no key\n")
    ok(result)
    assert result.stderr.decode().startswith("Wrote 3 records to greetings in ")
    out = ok(kavka(b, "consume", "greetings", "--from-beginning", "--timeout", "0.5"))
    assert out == "hello\nhi there\nno key\n"
    result = kavka(b, "consume", "greetings", "--from-beginning", "--max-messages", "2", "--print-key",
                   "--print-headers")
    assert ok(result) == "source:cli,lang:en\talice\thello\nsource:cli,lang:en\tbob\thi there\n"
    assert result.stderr.decode() == "Processed a total of 2 messages\n"
    ok(kavka(b, "produce", "greetings", input="plain\n"))
    out = ok(kavka(b, "consume", "greetings", "--offset", "3", "--timeout", "0.5", "--print-key", "--print-headers",
                   "--separator", " | "))
    assert out == "NO_HEADERS | null | plain\n"


@pytest.mark.slow
def test_consume_json(kavka_broker):
    b = kavka_broker
    ok(kavka(b, "topics", "create", "j", "--partitions", "1"))
    before = int(time.time() * 1000)
    ok(kavka(b, "produce", "j", "-k", "=", "-H", "trace=7", input="k1=v1\n=empty key\n"))
    ok(kavka(b, "produce", "j", input="no key\nsnowman \u2603\n"))
    records = consume_json(b, "j")
    assert [(r["offset"], r["key"], r["value"], r["headers"]) for r in records] == [
        (0, "k1", "v1", [["trace", "7"]]), (1, "", "empty key", [["trace", "7"]]),
        (2, None, "no key", []), (3, None, "snowman \u2603", [])]
    assert all(r["topic"] == "j" and r["partition"] == 0 and r["timestamp"] >= before for r in records)
    assert [r["offset"] for r in consume_json(b, "j", "--max-messages", "1")] == [0]


@pytest.mark.slow
def test_partitions_follow_key_hash_and_round_robin(kavka_broker):
    b = kavka_broker
    ok(kavka(b, "topics", "create", "spread", "--partitions", "3"))
    keys = [f"user-{i}" for i in range(30)]
    ok(kavka(b, "produce", "spread", "-k", ":", input="".join(f"{k}:v\n" for k in keys)))
    ok(kavka(b, "produce", "spread", input="a\nb\nc\nd\ne\nf\n"))
    records = consume_json(b, "spread")
    keyed = {r["key"]: r["partition"] for r in records if r["key"] is not None}
    assert keyed == {k: partition_for_key(k.encode(), 3) for k in keys}
    assert len(set(keyed.values())) == 3
    unkeyed = sorted(r["partition"] for r in records if r["key"] is None)
    assert unkeyed == [0, 0, 1, 1, 2, 2]
    ok(kavka(b, "produce", "spread", "--partition", "1", input="x\ny\n"))
    assert [r["value"] for r in consume_json(b, "spread", "--partition", "1")][-2:] == ["x", "y"]
    assert failed(kavka(b, "produce", "spread", "--partition", "3", input="x\n")) == \
        "kavka produce: topic 'spread' has partitions 0-2; there is no partition 3"


def test_produce_batches_many_records_per_request(kavka_broker):
    b = kavka_broker
    ok(kavka(b, "topics", "create", "bulk", "--partitions", "1"))
    lines = "".join(f"record number {i}\n" for i in range(20000))
    result = kavka(b, "produce", "bulk", "--compression", "lz4", input=lines)
    assert result.stderr.decode().startswith("Wrote 20000 records to bulk in "), result.stderr
    assert batch_count(b, "bulk") <= 3
    out = ok(kavka(b, "consume", "bulk", "--from-beginning", "--max-messages", "20000"))
    assert out == lines


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_compressed_round_trip(kavka_broker, codec):
    ok(kavka(kavka_broker, "produce", codec, "--compression", codec, "--acks", "1", input="x\n" * 50 + "last\n"))
    out = ok(kavka(kavka_broker, "consume", codec, "--from-beginning", "--max-messages", "51"))
    assert out.splitlines()[-1] == "last"


@pytest.mark.slow
def test_consume_positions_and_errors(kavka_broker):
    b = kavka_broker
    ok(kavka(b, "topics", "create", "pos", "--partitions", "1"))
    ok(kavka(b, "produce", "pos", input="a\nb\nc\n"))
    assert ok(kavka(b, "consume", "pos", "--offset", "1", "--timeout", "0.5")) == "b\nc\n"
    assert ok(kavka(b, "consume", "pos", "--from", "10m", "--timeout", "0.5")) == "a\nb\nc\n"
    assert ok(kavka(b, "consume", "pos", "--from", "2999-01-01T00:00", "--timeout", "0.5")) == ""
    result = kavka(b, "consume", "pos", "--timeout", "0.5")  # from the end: nothing new
    assert ok(result) == "" and result.stderr.decode() == "Processed a total of 0 messages\n"
    assert failed(kavka(b, "consume", "pos", "--offset", "7")) == \
        "kavka consume: OFFSET_OUT_OF_RANGE: partition 0 of 'pos' holds offsets 0-2; --offset 7 is outside them"
    assert failed(kavka(b, "consume", "nowhere", "--timeout", "0.5")) == \
        "kavka consume: UNKNOWN_TOPIC_OR_PARTITION: topic 'nowhere' does not exist"
    assert failed(kavka(b, "consume", "pos", "--from", "someday")).startswith("kavka consume: --from wants")
    assert failed(kavka(b, "produce", "pos", "-k", ":", input="k:v\nnokey\n")) == \
        "kavka produce: line 2 has no key separator ':' (1 records before it were written)"


def test_produce_creates_a_missing_topic_when_the_broker_does(kavka_broker_factory):
    b = kavka_broker_factory({"num.partitions": "2"})
    result = kavka(b, "produce", "auto", input="x\n")
    assert ok(result) == ""
    assert result.stderr.decode().splitlines()[0] == \
        "Topic auto did not exist; the broker created it with 2 partitions."
    strict = kavka_broker_factory({"auto.create.topics.enable": "false"})
    assert failed(kavka(strict, "produce", "auto", input="x\n")) == (
        "kavka produce: UNKNOWN_TOPIC_OR_PARTITION: topic 'auto' does not exist "
        "(create it with: kavka topics create auto)")


@pytest.mark.timeout(60)
def test_consume_stops_cleanly_on_ctrl_c(kavka_broker):
    b = kavka_broker
    ok(kavka(b, "produce", "live", input="first\n"))
    env = dict(os.environ, KAVKA_BOOTSTRAP=b.bootstrap_servers)
    proc = subprocess.Popen([sys.executable, "-m", "kavka", "consume", "live", "--from-beginning"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        assert proc.stdout.readline() == b"first\n"
        ok(kavka(b, "produce", "live", input="second\n"))
        assert proc.stdout.readline() == b"second\n"  # the long poll wakes up
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert err.decode() == "Processed a total of 2 messages\n"


# -- helpers, in process -------------------------------------------------------------------

def test_murmur2_matches_kafka():
    # Values from Kafka's own tests of Utils.murmur2, as signed 32-bit ints.
    def signed(value):
        return value - (1 << 32) if value >= 1 << 31 else value
    assert signed(murmur2(b"21")) == -973932308
    assert signed(murmur2(b"foobar")) == -790332482
    assert signed(murmur2(b"a-little-bit-long-string")) == -985981536
    assert signed(murmur2(b"a-little-bit-longer-string")) == -1486304829
    assert signed(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8")) == -58897971
    assert signed(murmur2(b"abc")) == 479470107


def test_parse_time():
    now = 1_700_000_000_000
    assert parse_time("1714564800000", now) == 1714564800000
    assert parse_time("15m", now) == now - 15 * 60_000
    assert parse_time("-2h", now) == now - 2 * 3_600_000
    assert parse_time("1.5d ago", now) == now - 129_600_000
    assert parse_time("2024-05-01T12:00:00+00:00", now) == 1714564800000
    assert parse_time("2024-05-01T12:00:00Z", now) == 1714564800000


def test_read_lines_splits_and_reports_pauses():
    read, write = os.pipe()
    os.write(write, b"one\r\ntwo\nthr")
    lines = read_lines(read, linger=0.05)
    assert [next(lines), next(lines), next(lines)] == [b"one", b"two", None]  # paused mid-line
    os.write(write, b"ee")
    os.close(write)
    assert list(lines) == [b"three"]
    os.close(read)


def test_progress_line_and_error_names():
    stream = io.StringIO()
    progress = Progress(stream, enabled=True, delay=0, every=0)
    progress.update("10 records")
    progress.clear()
    assert stream.getvalue() == "\r\x1b[K10 records\r\x1b[K"
    quiet = io.StringIO()
    Progress(quiet, enabled=False, delay=0).update("x")
    assert quiet.getvalue() == ""
    assert error_name(36) == "TOPIC_ALREADY_EXISTS"
    assert error_name(3) == "UNKNOWN_TOPIC_OR_PARTITION"
    assert error_name(9999) == "ERROR_9999"
