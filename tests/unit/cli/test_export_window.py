"""kavka.export without a broker: the record selection, the offset plan, the fetch loop
against a fake session, the Arrow columns and the JSON lines."""

from __future__ import annotations

import datetime
import json
from types import SimpleNamespace

import pyarrow as pa
import pytest

from kavka import export
from kavka.cli.common import parse_time
from kavka.cli.export import output_format
from kavka.cli.main import CliError
from kavka.protocol.record_codec import GZIP, Record, encode_batch

T = 1_000_000


def batch(base: int, stamps: list[int], codec: int = GZIP, **kw) -> bytes:
    return encode_batch([(f"k{base + i}".encode(), f"v{base + i}".encode(), ts, [("h", b"x")])
                         for i, ts in enumerate(stamps)], base_offset=base, codec=codec, **kw)


def select(data: bytes, position: int, end: int, start_ms, end_ms):
    """(kept [(type, offset, timestamp)], next position) of select_records."""
    scan = export.select_records(data, position, end, start_ms, end_ms)
    kept = []
    while True:
        try:
            timestamp_type, records = next(scan)
        except StopIteration as stop:
            return kept, stop.value
        kept += [(timestamp_type, r.offset, r.timestamp) for r in records]


# -- select_records --------------------------------------------------------------------------

def test_select_filters_by_offset_range_and_time():
    data = batch(10, [T + 5, T - 100, T + 7]) + batch(13, [T + 9, T + 50, T + 1])
    kept, position = select(data, 10, 100, T, T + 10)
    assert kept == [("CreateTime", 10, T + 5), ("CreateTime", 12, T + 7), ("CreateTime", 13, T + 9),
                    ("CreateTime", 15, T + 1)]
    assert position == 16
    # a fetch position inside a compressed batch, an end offset inside the next one
    kept, position = select(data, 11, 14, None, None)
    assert [k[1] for k in kept] == [11, 12, 13]
    assert position == 14


def test_select_stops_at_the_end_offset_and_steps_over_control_batches():
    control = encode_batch([(b"\x00\x00\x00\x00", b"\x00\x00", T, [])], base_offset=3, control=True,
                           producer_id=1, producer_epoch=0, transactional=True)
    data = batch(0, [T, T, T]) + control + batch(4, [T, T])
    kept, position = select(data, 0, 100, None, None)
    assert [k[1] for k in kept] == [0, 1, 2, 4, 5] and position == 6
    kept, position = select(data, 0, 4, None, None)
    assert [k[1] for k in kept] == [0, 1, 2] and position == 4
    assert select(data, 6, 100, None, None) == ([], 6)  # nothing new: no progress
    assert select(b"", 2, 5, None, None) == ([], 2)
    assert select(data[:-3], 0, 100, None, None)[1] == 4  # a trailing partial batch is left for the next fetch


def test_select_log_append_time():
    data = encode_batch([(None, b"a", T, []), (None, b"b", T + 1, [])], base_offset=0, log_append_time=T + 500)
    assert select(data, 0, 10, T + 500, T + 501)[0] == [("LogAppendTime", 0, T + 500), ("LogAppendTime", 1, T + 500)]
    assert select(data, 0, 10, T, T + 2)[0] == []


# -- plan_window -------------------------------------------------------------------------------

class FakeSession:
    """ListOffsets answers from per-partition timestamp lists; Fetch answers from a script."""

    def __init__(self, logs: dict[int, list[int]], log_start: dict[int, int] | None = None) -> None:
        self.logs = logs
        self.log_start = log_start or {}
        self.fetches: list[tuple[int, int]] = []
        self.answers: list = []  # scripted Fetch answers (partition, error, records, log_start); else from logs

    def topic(self, name: str):
        if name != "t":
            raise CliError(f"UNKNOWN_TOPIC_OR_PARTITION: topic '{name}' does not exist")
        return SimpleNamespace(name="t", partitions=[SimpleNamespace(partition_index=i, leader_id=0)
                                                     for i in sorted(self.logs)])

    def list_offsets(self, topic, partitions, timestamp, isolation=0):
        out = {}
        for i in partitions:
            stamps = self.logs[i]
            if timestamp == -1:
                out[i] = len(stamps)
            elif timestamp == -2:
                out[i] = self.log_start.get(i, 0)
            else:
                out[i] = next((o for o, ts in enumerate(stamps) if ts >= timestamp and o >= self.log_start.get(i, 0)),
                              -1)
        return out

    def builder(self, api_key):
        return SimpleNamespace(FetchRequest=lambda **kw: kw, FetchTopic=lambda **kw: kw,
                               FetchPartition=lambda **kw: kw)

    def leader(self, node_id):
        return None

    def request(self, request, client=None):
        (topic,) = request["topics"]
        (wanted,) = topic["partitions"]
        partition, offset = wanted["partition"], wanted["fetch_offset"]
        self.fetches.append((partition, offset))
        if self.answers:
            error, records, log_start = self.answers.pop(0)
        else:
            stamps = self.logs[partition]
            error, log_start = 0, 0
            records = b"".join(batch(o, [stamps[o]]) for o in range(offset, min(offset + 2, len(stamps))))
        part = SimpleNamespace(partition_index=partition, error_code=error, records=records, log_start_offset=log_start)
        return SimpleNamespace(error_code=0, responses=[SimpleNamespace(partitions=[part])])


def test_plan_window_offsets():
    s = FakeSession({0: [T, T + 10, T + 20, T + 30], 1: [T + 12, T - 5], 2: []})
    plan = export.plan_window(s, s.topic("t"), T + 10, T + 25)
    assert plan.ranges == {0: (1, 3), 1: (0, 2), 2: (0, 0)}  # 1: no record at or after TO: the end
    assert plan.offsets == 4
    assert export.plan_window(s, s.topic("t"), T + 1000, None).ranges == {0: (4, 4), 1: (2, 2), 2: (0, 0)}
    assert export.plan_window(s, s.topic("t"), None, None, [1]).ranges == {1: (0, 2)}
    assert export.plan_window(s, s.topic("t"), T + 5, T + 5).ranges[0] == (1, 1)
    with pytest.raises(CliError, match="^topic 't' has partitions 0-2; there is no partition 3$"):
        export.plan_window(s, s.topic("t"), None, None, [0, 3])
    with pytest.raises(CliError, match="^the window ends before it starts: --from 1970-01-01T00:16:40.010"):
        export.plan_window(s, s.topic("t"), T + 10, T)


# -- the fetch loop ------------------------------------------------------------------------

def test_reader_fetches_each_partition_in_order():
    s = FakeSession({0: [T + i for i in range(7)], 1: [T + 3, T + 1, T + 9, T + 4]})
    seen = []
    reader = export.WindowReader(s, "t", T + 2, T + 5, progress=lambda r: seen.append((r.done, r.records)))
    got = [(r.partition, r.offset, r.timestamp, r.key) for r in reader.records_iter()]
    assert got == [(0, 2, T + 2, b"k2"), (0, 3, T + 3, b"k3"), (0, 4, T + 4, b"k4"), (1, 0, T + 3, b"k0")]
    assert reader.plan.ranges == {0: (2, 5), 1: (0, 2)}  # partition 1 ends at T + 9's offset
    assert s.fetches == [(0, 2), (0, 4), (1, 0)]
    assert seen[-1] == (5, 4) and reader.fraction == 1.0
    with pytest.raises(RuntimeError):
        next(reader.records_iter())


def test_reader_skips_offsets_lost_to_retention():
    s = FakeSession({0: [T + i for i in range(6)]})
    s.answers = [(1, b"", 4)]  # OFFSET_OUT_OF_RANGE, the log now starts at 4
    reader = export.WindowReader(s, "t")
    assert [r.offset for r in reader.records_iter()] == [4, 5]
    assert reader.skipped == {0: 4} and reader.done == 6


def test_reader_gives_up_on_a_truncated_log(monkeypatch):
    monkeypatch.setattr(export.time, "sleep", lambda s: None)
    s = FakeSession({0: [T, T, T]})
    s.answers = [(0, batch(0, [T]), 0)] + [(0, b"", 0)] * 20
    reader = export.WindowReader(s, "t")
    assert [r.offset for r in reader.records_iter()] == [0]
    assert len(s.fetches) == 2 + export._RETRIES and reader.fraction == 1.0


def test_reader_errors():
    s = FakeSession({0: [T]})
    with pytest.raises(CliError, match="^UNKNOWN_TOPIC_OR_PARTITION: topic 'x' does not exist$"):
        export.WindowReader(s, "x")
    s.answers = [(29, b"", 0)]
    with pytest.raises(CliError, match="^TOPIC_AUTHORIZATION_FAILED: partition 0 of 't' at offset 0$"):
        list(export.WindowReader(s, "t").records_iter())


# -- Arrow columns and JSON lines -------------------------------------------------------------

def test_record_batches_are_bounded_and_typed():
    s = FakeSession({0: [T + i for i in range(5)], 1: [T + 10 + i for i in range(3)]})
    batches = list(export.WindowReader(s, "t").record_batches(rows=3))
    assert [b.num_rows for b in batches] == [3, 3, 2]
    table = pa.Table.from_batches(batches)
    assert table.schema == export.schema()
    assert table.column("partition").to_pylist() == [0] * 5 + [1] * 3
    assert table.column("offset").to_pylist() == [0, 1, 2, 3, 4, 0, 1, 2]
    first = table.slice(0, 1).to_pylist()[0]
    assert first["timestamp"] == datetime.datetime.fromtimestamp(T / 1000, datetime.timezone.utc)
    assert first["key"] == b"k0" and first["headers"] == [{"key": "h", "value": b"x"}]


def test_record_batches_join_pieces_and_respect_the_byte_cap(monkeypatch):
    monkeypatch.setattr(export, "PIECE_ROWS", 2)
    s = FakeSession({0: [T + i for i in range(7)]})
    batches = list(export.WindowReader(s, "t").record_batches(rows=5))
    assert [b.num_rows for b in batches] == [5, 2]
    assert [b.column(2).to_pylist() for b in batches] == [[0, 1, 2, 3, 4], [5, 6]]
    s = FakeSession({0: [T + i for i in range(7)]})
    # each record holds 2 + 2 + 1 + 1 bytes of key, value and header: a batch closes once it
    # reaches 13 bytes, i.e. at its third record
    batches = list(export.WindowReader(s, "t").record_batches(rows=100, max_bytes=13))
    assert [b.num_rows for b in batches] == [3, 3, 1]
    s = FakeSession({0: [T + i for i in range(7)]})
    assert [b.num_rows for b in export.WindowReader(s, "t").record_batches(rows=100, max_bytes=1000)] == [7]


def test_columns_headers_nulls_and_odd_names():
    columns = export._Columns("t")
    columns.add(3, "CreateTime", [
        Record(7, T, None, None, ()),
        Record(8, T + 1, b"\xff", b"", (("a", None), ("b\udcff", b"\x00"))),  # name bytes that are not UTF-8
    ])
    rows = pa.Table.from_batches([columns.flush()]).to_pylist()
    assert rows[0]["key"] is None and rows[0]["value"] is None and rows[0]["headers"] == []
    assert rows[1]["key"] == b"\xff" and rows[1]["value"] == b""
    assert rows[1]["headers"] == [{"key": "a", "value": None}, {"key": "b\ufffd", "value": b"\x00"}]
    assert columns.rows == 0  # reset after a flush


def test_jsonl_line_matches_consume_json():
    record = Record(5, T, b"\xfe", "snow \u2603".encode(), (("h", b"\x80"), ("n", None)))
    line = export.jsonl_line("t", 2, "LogAppendTime", record)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"topic": "t", "partition": 2, "offset": 5, "timestamp": T,
                                "timestamp_type": "LogAppendTime", "key": {"base64": "/g=="},
                                "value": "snow \u2603", "headers": [["h", {"base64": "gA=="}], ["n", None]]}


# -- times and options -------------------------------------------------------------------------

def test_times():
    now = 1_700_000_000_000
    assert parse_time("now", now) == now and parse_time("-1h", now) == now - 3_600_000
    with pytest.raises(CliError, match="^--to wants a time"):
        parse_time("later", now, "--to")
    assert export.to_millis(None) is None and export.to_millis(123) == 123
    assert export.to_millis(datetime.datetime(2024, 5, 1, 12, tzinfo=datetime.timezone.utc)) == 1714564800000
    assert export.to_millis("15m", now) == now - 900_000
    with pytest.raises(TypeError):
        export.to_millis(True)
    with pytest.raises(TypeError):
        export.to_millis(1.5)


def test_output_format():
    assert output_format(None, "-") == "jsonl"
    assert output_format(None, "x.PARQUET") == "parquet" and output_format(None, "x.pq") == "parquet"
    assert output_format("jsonl", "x.parquet") == "jsonl"
    assert output_format(None, "x.json") == "jsonl"
