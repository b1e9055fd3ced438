"""`kavka export` and kavka.export: a time window of a topic, read over the Kafka protocol.

Records are produced with confluent-kafka (explicit timestamps, some out of order, keys
that are null or not UTF-8, null values, headers, lz4 batches) and the expected result is
computed from what was produced, with Kafka's rule: per partition, offsets from the first
record at or after FROM to the first record at or after TO (or the end), then only the
records whose own timestamp is in [FROM, TO)."""

from __future__ import annotations

import base64
import datetime
import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from test_cli_tools import failed, ok

from kavka import export
from kavka.cli.common import Session
from kavka.cli.main import CliError

BASE = 1_700_000_000_000
TOPIC = "events"
COUNT = 120
TIMEOUT = 60


# -- producing and the expected answer ------------------------------------------------------

def record_for(i: int):
    partition = i % 3
    timestamp = BASE + i * 1000
    if i in (31, 50):
        timestamp = BASE - 50_000  # old: inside the offset range of most windows, outside their time
    elif i in (70, 101):
        timestamp = BASE + 30_000  # late: its time is inside the window, its offset after the end offset
    elif i == 73:
        timestamp = BASE + 900_000  # far ahead: ends partition 1's offset range early
    key = None if i % 4 == 0 else (b"\xff\xfe" + bytes([i]) if i % 4 == 1 else f"key-{i}".encode())
    value = None if i % 5 == 0 else (b"\x80bin" if i == 7 else f"value-{i}-".encode() * (1 + i % 3))
    headers = [] if i % 2 else [("n", str(i).encode()), ("empty", b""), ("null", None), ("snow\u2603", b"\xff")]
    return partition, timestamp, key, value, headers


def produce(bootstrap: str, topic: str = TOPIC, count: int = COUNT, config: dict | None = None) -> list[dict]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 3, 1, config=config or {})]).values():
        future.result(TIMEOUT)
    producer = Producer({"bootstrap.servers": bootstrap, "compression.type": "lz4", "linger.ms": 20,
                         "enable.idempotence": True})
    produced, errors = [], []

    def report(err, msg, entry):
        if err:
            errors.append(err)
        else:
            entry["offset"] = msg.offset()
            produced.append(entry)

    for i in range(count):
        partition, timestamp, key, value, headers = record_for(i)
        entry = {"partition": partition, "timestamp": timestamp, "key": key, "value": value,
                 "headers": [(k, v) for k, v in headers]}
        producer.produce(topic, value=value, key=key, partition=partition, timestamp=timestamp,
                         headers=headers or None, on_delivery=lambda err, msg, e=entry: report(err, msg, e))
    assert producer.flush(TIMEOUT) == 0 and not errors, errors
    assert len(produced) == count
    return produced


def expected(produced: list[dict], start: int | None, end: int | None, partitions=None) -> list[tuple]:
    rows = []
    for p in sorted({e["partition"] for e in produced}):
        if partitions is not None and p not in partitions:
            continue
        log = sorted((e for e in produced if e["partition"] == p), key=lambda e: e["offset"])
        assert [e["offset"] for e in log] == list(range(len(log)))
        high = len(log)
        first = 0 if start is None else next((e["offset"] for e in log if e["timestamp"] >= start), high)
        last = high if end is None else next((e["offset"] for e in log if e["timestamp"] >= end), high)
        rows += [row(e, p) for e in log if first <= e["offset"] < last
                 and (start is None or e["timestamp"] >= start) and (end is None or e["timestamp"] < end)]
    return rows


def row(e: dict, partition: int) -> tuple:
    return (partition, e["offset"], e["timestamp"], e["key"], e["value"], tuple(e["headers"]))


def naive(produced: list[dict], start: int, end: int) -> list[tuple]:
    """Every record with a timestamp in the window, which is *not* what Kafka's rule gives."""
    return sorted(row(e, e["partition"]) for e in produced if start <= e["timestamp"] < end)


def table_rows(table: pa.Table) -> list[tuple]:
    ms = lambda t: int(t.timestamp() * 1000)  # noqa: E731
    return [(r["partition"], r["offset"], ms(r["timestamp"]), r["key"], r["value"],
             tuple((h["key"], h["value"]) for h in r["headers"])) for r in table.to_pylist()]


def json_value(v):
    if v is None:
        return None
    if isinstance(v, dict):
        return base64.b64decode(v["base64"])
    return v.encode()


def jsonl_rows(text: str) -> list[tuple]:
    rows = []
    for line in text.splitlines():
        r = json.loads(line)
        assert r["topic"] == TOPIC and r["timestamp_type"] == "CreateTime"
        rows.append((r["partition"], r["offset"], r["timestamp"], json_value(r["key"]), json_value(r["value"]),
                     tuple((k, json_value(v)) for k, v in r["headers"])))
    return rows


def kavka(broker, *args: str, pre: str = ""):
    env = dict(os.environ, KAVKA_BOOTSTRAP=broker.bootstrap_servers)
    code = f"{pre}import sys; from kavka.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, env=env, timeout=TIMEOUT)




def iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).isoformat()


FROM, TO = BASE + 20_000, BASE + 80_000


@pytest.fixture
def produced(kavka_broker):
    return produce(kavka_broker.bootstrap_servers)


@pytest.fixture
def out_dir(tmp_path):
    """Empty, unlike tmp_path, which also holds the broker's data."""
    (tmp_path / "out").mkdir()
    return tmp_path / "out"


# -- the Python API -------------------------------------------------------------------------

def test_read_window_follows_kafka_offsets_for_times(kavka_broker, produced):
    bootstrap = kavka_broker.bootstrap_servers
    want = expected(produced, FROM, TO)
    # the data exercises the rule: records dropped by time inside the range, and records
    # with a timestamp in the window outside it
    assert len(want) > 10 and want != naive(produced, FROM, TO)
    assert {r[0] for r in want} == {0, 1, 2}

    table = export.read_window(bootstrap, TOPIC, FROM, TO)
    assert table.schema == export.schema()
    assert table.schema.field("timestamp").type == pa.timestamp("ms", tz="UTC")
    assert table.column("timestamp_type").to_pylist() == ["CreateTime"] * len(want)
    assert table.column("topic").to_pylist() == [TOPIC] * len(want)
    assert table_rows(table) == want

    # the iterator form, with datetimes and a partition subset
    start = datetime.datetime.fromtimestamp(FROM / 1000, datetime.timezone.utc)
    records = list(export.iter_window(bootstrap, TOPIC, start, iso(TO), partitions=[2, 0]))
    assert [(r.partition, r.offset, r.timestamp, r.key, r.value, r.headers) for r in records] == \
        expected(produced, FROM, TO, {0, 2})


def test_batches_and_file_writers(kavka_broker, produced, out_dir):
    bootstrap = kavka_broker.bootstrap_servers
    want = expected(produced, FROM, TO)
    batches = list(export.iter_record_batches(bootstrap, TOPIC, FROM, TO, rows=7))
    assert max(b.num_rows for b in batches) == 7 and table_rows(pa.Table.from_batches(batches)) == want
    assert export.write_parquet(bootstrap, TOPIC, out_dir / "f.parquet", FROM, TO, compression="gzip") == len(want)
    assert table_rows(pq.read_table(out_dir / "f.parquet")) == want
    with open(out_dir / "f.jsonl", "wb") as stream:
        assert export.write_jsonl(bootstrap, TOPIC, stream, FROM, TO, partitions=[1]) == \
            len(expected(produced, FROM, TO, {1}))
    assert jsonl_rows((out_dir / "f.jsonl").read_text()) == expected(produced, FROM, TO, {1})


def test_small_fetches_and_progress(kavka_broker, produced):
    """One batch per Fetch (fetch_bytes=1): fetches starting inside compressed batches,
    many round trips; the progress fraction only grows and ends at 1."""
    fractions = []
    with Session(kavka_broker.bootstrap_servers) as s:
        reader = export.WindowReader(s, TOPIC, FROM, TO, fetch_bytes=1,
                                     progress=lambda r: fractions.append(r.fraction))
        batches = list(reader.record_batches(rows=4))
    assert all(b.num_rows <= 4 for b in batches)
    assert table_rows(pa.Table.from_batches(batches)) == expected(produced, FROM, TO)
    assert reader.records == sum(b.num_rows for b in batches)
    assert len(fractions) > 3 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert reader.bytes > 0 and reader.skipped == {}


def test_unbounded_and_empty_windows(kavka_broker, produced):
    bootstrap = kavka_broker.bootstrap_servers
    everything = export.read_window(bootstrap, TOPIC)
    assert table_rows(everything) == expected(produced, None, None)
    assert everything.num_rows == COUNT
    assert table_rows(export.read_window(bootstrap, TOPIC, FROM)) == expected(produced, FROM, None)
    assert table_rows(export.read_window(bootstrap, TOPIC, None, TO)) == expected(produced, None, TO)
    for start, end in [(FROM, FROM), (BASE + 5_000_000, None), (BASE + 5_000_000, BASE + 6_000_000),
                       (0, BASE - 100_000)]:
        empty = export.read_window(bootstrap, TOPIC, start, end)
        assert empty.num_rows == 0 and empty.schema == export.schema()
        assert list(export.iter_window(bootstrap, TOPIC, start, end)) == []


def test_python_api_errors(kavka_broker, produced):
    bootstrap = kavka_broker.bootstrap_servers
    with pytest.raises(CliError, match="^UNKNOWN_TOPIC_OR_PARTITION: topic 'nowhere' does not exist$"):
        export.read_window(bootstrap, "nowhere", FROM, TO)
    with pytest.raises(export.ExportError, match="there is no partition 3"):
        list(export.iter_window(bootstrap, TOPIC, FROM, TO, partitions=[3]))
    with pytest.raises(CliError, match="the window ends before it starts"):
        export.read_window(bootstrap, TOPIC, TO, FROM)


def test_write_parquet_in_row_groups(kavka_broker, produced, out_dir):
    path = out_dir / "w.parquet"
    with Session(kavka_broker.bootstrap_servers) as s:
        reader = export.WindowReader(s, TOPIC, FROM, TO)
        assert export.write_parquet_from(reader, str(path), rows=5) == len(expected(produced, FROM, TO))
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups >= len(expected(produced, FROM, TO)) // 5
    assert all(meta.row_group(i).num_rows <= 5 for i in range(meta.num_row_groups))
    assert table_rows(pq.read_table(path)) == expected(produced, FROM, TO)


# -- the command line -----------------------------------------------------------------------

@pytest.mark.slow
def test_cli_jsonl(kavka_broker, produced, out_dir):
    b = kavka_broker
    result = kavka(b, "export", TOPIC, "--from", iso(FROM), "--to", str(TO))
    assert jsonl_rows(ok(result)) == expected(produced, FROM, TO)
    assert result.stderr.decode().startswith(f"Exported {len(expected(produced, FROM, TO))} records from events "
                                             f"(3 partitions, ")
    assert "\x1b" not in result.stderr.decode()  # no progress line when stderr is not a terminal
    out = out_dir / "part.jsonl"
    ok(kavka(b, "export", TOPIC, "--from", str(FROM), "--to", str(TO), "-p", "2", "--partition", "0",
             "-o", str(out)))
    assert jsonl_rows(out.read_text()) == expected(produced, FROM, TO, {0, 2})
    assert os.listdir(out_dir) == ["part.jsonl"]  # the temporary file is gone
    assert jsonl_rows(ok(kavka(b, "export", TOPIC, "--to", "now"))) == expected(produced, None, None)


@pytest.mark.slow
def test_cli_parquet(kavka_broker, produced, out_dir):
    b = kavka_broker
    out = out_dir / "window.parquet"
    ok(kavka(b, "export", TOPIC, "--from", str(FROM), "--to", iso(TO), "-o", str(out)))
    table = pq.read_table(out)
    assert table.schema.remove_metadata() == export.schema()
    assert table_rows(table) == expected(produced, FROM, TO)
    meta = pq.read_metadata(out).metadata
    assert meta[b"kavka.topic"] == b"events" and meta[b"kavka.from_ms"] == str(FROM).encode()
    other = out_dir / "zstd.pq"
    ok(kavka(b, "export", TOPIC, "--format", "parquet", "--compression", "zstd", "-p", "1", "-o", str(other)))
    assert pq.ParquetFile(other).metadata.row_group(0).column(0).compression == "ZSTD"
    assert table_rows(pq.read_table(other)) == expected(produced, None, None, {1})


@pytest.mark.slow
def test_cli_empty_windows(kavka_broker, produced, out_dir):
    b = kavka_broker
    result = kavka(b, "export", TOPIC, "--from", str(FROM), "--to", str(FROM))
    assert ok(result) == "" and result.stderr.decode().startswith("Exported 0 records from events")
    assert ok(kavka(b, "export", TOPIC, "--from", "2999-01-01T00:00Z")) == ""  # past the end
    assert ok(kavka(b, "export", TOPIC, "--from", "1m")) == ""  # all timestamps are from 2023
    out = out_dir / "empty.parquet"
    ok(kavka(b, "export", TOPIC, "--from", str(BASE + 5_000_000), "-o", str(out)))
    table = pq.read_table(out)
    assert table.num_rows == 0 and table.schema.remove_metadata() == export.schema()


@pytest.mark.slow
def test_cli_errors(kavka_broker, produced, out_dir):
    b = kavka_broker
    assert failed(kavka(b, "export", "nowhere", "--from", "1h")) == \
        "kavka export: UNKNOWN_TOPIC_OR_PARTITION: topic 'nowhere' does not exist"
    assert failed(kavka(b, "export", "nowhere", "-o", str(out_dir / "x.parquet"))) == \
        "kavka export: UNKNOWN_TOPIC_OR_PARTITION: topic 'nowhere' does not exist"
    assert os.listdir(out_dir) == []
    assert failed(kavka(b, "export", TOPIC, "-p", "0", "3")) == \
        "kavka export: topic 'events' has partitions 0-2; there is no partition 3"
    assert failed(kavka(b, "export", TOPIC, "--from", "1h", "--to", "2h")).startswith(
        "kavka export: the window ends before it starts: --from ")
    assert failed(kavka(b, "export", TOPIC, "--to", "someday")) == (
        "kavka export: --to wants a time such as 2024-05-01T12:00, 1714564800000 or 15m, not 'someday'")
    assert failed(kavka(b, "export", TOPIC, "--format", "parquet")) == \
        "kavka export: --format parquet needs -o FILE (parquet is not written to stdout)"
    assert failed(kavka(b, "export", TOPIC, "-o", str(out_dir / "no" / "such.jsonl"))).startswith(
        "kavka export: cannot write ")


@pytest.mark.slow
def test_without_pyarrow(kavka_broker, produced, out_dir):
    b = kavka_broker
    hide = "import sys; sys.modules['pyarrow'] = None; "
    assert failed(kavka(b, "export", TOPIC, "-o", str(out_dir / "x.parquet"), pre=hide)) == \
        "kavka export: parquet and Arrow output need pyarrow: pip install 'kavka[export]'"
    assert os.listdir(out_dir) == []
    assert jsonl_rows(ok(kavka(b, "export", TOPIC, "--from", str(FROM), "--to", str(TO), pre=hide))) == \
        expected(produced, FROM, TO)


def test_log_append_time_topic(kavka_broker):
    before = int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1000)
    produced = produce(kavka_broker.bootstrap_servers, "stamped", 12, {"message.timestamp.type": "LogAppendTime"})
    table = export.read_window(kavka_broker.bootstrap_servers, "stamped", "10m")
    assert table.num_rows == 12
    assert set(table.column("timestamp_type").to_pylist()) == {"LogAppendTime"}
    stamps = [int(t.timestamp() * 1000) for t in table.column("timestamp").to_pylist()]
    assert all(before - 1000 <= t <= before + 60_000 for t in stamps)
    by_offset = {(e["partition"], e["offset"]): e["value"] for e in produced}
    assert {(r["partition"], r["offset"]): r["value"] for r in table.to_pylist()} == by_offset
    assert export.read_window(kavka_broker.bootstrap_servers, "stamped", BASE, BASE + 1_000_000).num_rows == 0
