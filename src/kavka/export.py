"""Reading a time window of a topic as a batch: ``kavka export`` and its Python API.

Over the Kafka protocol only (a :class:`kavka.client_session.Session`: ApiVersions,
Metadata, ListOffsets, Fetch), so it reads from Apache Kafka as well as from kavka.

What "the records between FROM and TO" means
--------------------------------------------
The window is half-open, ``FROM <= timestamp < TO``, and is resolved the way a
Kafka consumer would, per partition:

1. start offset = ListOffsets(FROM): the first offset whose timestamp is at or
   after FROM (no FROM: the log start offset);
2. end offset = ListOffsets(TO): the first offset whose timestamp is at or
   after TO, or the high watermark when no record is that new (no TO: the high
   watermark).  Both are looked up once, before reading, so records produced
   during the export are not included: the result is a snapshot;
3. Fetch every record from the start offset up to (not including) the end
   offset, and keep those whose own timestamp lies in the window.

Timestamps inside a partition need not grow with offsets (producers set
CreateTime).  A record inside the offset range whose timestamp is outside the
window is dropped, and a record outside the offset range is not read even when
its timestamp is inside the window (a late record appended after the first
record at or after TO).  Records come out in offset order within a partition,
partitions in ascending order; never sorted by timestamp.

Transactions: the isolation level is Kafka's consumer setting ``isolation.level``
and defaults, as it does there, to ``read_uncommitted``: every record below the
high watermark, records of aborted (and still open) transactions included.  With
``read_committed`` the end offsets are the last stable offset (ListOffsets and
Fetch at isolation level 1), so an open transaction's records are not read, and
the records of aborted transactions are dropped the way Kafka's consumer drops
them: the Fetch answer lists the aborted transactions (producer id, first offset)
overlapping what it returned; a transactional batch of such a producer from that
first offset on is aborted data until the producer's abort marker.  Control
records (transaction markers) are never written, at either level.  Offsets that
retention deletes while the export runs are skipped and counted in
:attr:`WindowReader.skipped`.

API
---
* :func:`iter_window` yields :class:`ExportRecord` objects and needs nothing
  beyond kavka itself; :func:`write_jsonl` writes JSON lines.
* :func:`read_window` returns a ``pyarrow.Table`` (:func:`schema`);
  :func:`iter_record_batches` yields bounded ``pyarrow.RecordBatch`` es;
  :func:`write_parquet` writes row groups as it fetches, so memory stays
  bounded whatever the window's size.  These need pyarrow (``pip install
  'kavka[export]'``).

TIME arguments are epoch milliseconds (int), aware ``datetime`` objects (naive
ones are local time) or the strings ``kavka consume --from`` accepts (ISO 8601,
epoch ms, ages such as ``15m`` / ``-2h`` / ``1d ago``, ``now``); None means
unbounded.  Failures raise :class:`ExportError` with a one-line message such as
``UNKNOWN_TOPIC_OR_PARTITION: topic 'x' does not exist``.
"""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from kavka.client_session import (
    EARLIEST,
    FETCH,
    LATEST,
    READ_COMMITTED,
    READ_UNCOMMITTED,
    AbortedTransactions,
    Session,
    ToolError,
    check,
    isolation_level,
    json_bytes,
    parse_time,
)

if TYPE_CHECKING:
    import pyarrow

FETCH_BYTES = 8 * 1024 * 1024  # per Fetch (one partition at a time)
ROW_GROUP_ROWS = 131_072  # rows per RecordBatch / parquet row group, at most
ROW_GROUP_BYTES = 64 * 1024 * 1024  # key + value + header bytes per RecordBatch, at most
PIECE_ROWS = 8192  # records held as Python objects before they become Arrow arrays
CREATE_TIME, LOG_APPEND_TIME = "CreateTime", "LogAppendTime"
PYARROW_HINT = "pip install 'kavka[export]'"

_OFFSET_OUT_OF_RANGE, _NOT_LEADER, _LEADER_NOT_AVAILABLE, _FENCED_EPOCH, _UNKNOWN_EPOCH = 1, 6, 5, 74, 76
_RETRIABLE = {_NOT_LEADER, _LEADER_NOT_AVAILABLE, _FENCED_EPOCH, _UNKNOWN_EPOCH}
_RETRIES = 10

ExportError = ToolError  # the CLI's CliError too: ``kavka export`` prints it as one line


@dataclass(frozen=True, slots=True)
class ExportRecord:
    topic: str
    partition: int
    offset: int
    timestamp: int  # epoch milliseconds
    timestamp_type: str  # "CreateTime" or "LogAppendTime"
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()

    @property
    def datetime(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.timestamp / 1000, datetime.timezone.utc)


def to_millis(moment: Any, now_ms: int | None = None, option: str = "--from") -> int | None:
    """Epoch ms of a TIME: None, int ms, datetime, or a string as the CLI accepts."""
    if moment is None:
        return None
    if isinstance(moment, bool):
        raise TypeError(f"{option}: expected a time, got {moment!r}")
    if isinstance(moment, int):
        return moment
    if isinstance(moment, datetime.datetime):
        return int(moment.timestamp() * 1000)  # naive: local time, as datetime.timestamp() does
    if isinstance(moment, str):
        return parse_time(moment, time.time_ns() // 1_000_000 if now_ms is None else now_ms, option)
    raise TypeError(f"{option}: expected epoch ms, a datetime or a string, got {type(moment).__name__}")


@dataclass
class Plan:
    """Where the window lies: partition -> [start offset, end offset)."""
    topic: str
    start_ms: int | None
    end_ms: int | None
    ranges: dict[int, tuple[int, int]]

    @property
    def offsets(self) -> int:
        return sum(end - start for start, end in self.ranges.values())


def plan_window(session: Session, topic: Any, start_ms: int | None, end_ms: int | None,
                partitions: Sequence[int] | None = None, isolation: int = READ_UNCOMMITTED) -> Plan:
    """Resolve the window to offset ranges with ListOffsets (``topic`` is Session.topic metadata);
    with READ_COMMITTED the broker bounds every answer by the last stable offset."""
    count = len(topic.partitions)
    if partitions is None:
        indexes = sorted(p.partition_index for p in topic.partitions)
    else:
        indexes = sorted(set(partitions))
        bad = [i for i in indexes if not 0 <= i < count]
        if bad:
            raise ExportError(f"topic '{topic.name}' has partitions 0-{count - 1}; there is no partition {bad[0]}")
    if start_ms is not None and end_ms is not None and start_ms > end_ms:
        raise ExportError(f"the window ends before it starts: --from {_iso(start_ms)} is after --to {_iso(end_ms)}")
    if not indexes:
        return Plan(topic.name, start_ms, end_ms, {})
    starts = session.list_offsets(topic, indexes, EARLIEST if start_ms is None else start_ms, isolation)
    ends = {} if end_ms is None else session.list_offsets(topic, indexes, end_ms, isolation)
    # The high watermark (or LSO) last: every offset found above is below it.
    latest = session.list_offsets(topic, indexes, LATEST, isolation)
    ranges = {}
    for i in indexes:
        high = latest[i]
        end = ends.get(i, -1)
        end = high if end < 0 else min(end, high)
        begin = starts[i] if starts[i] >= 0 else high  # nothing at or after FROM
        ranges[i] = (min(begin, end), end)
    return Plan(topic.name, start_ms, end_ms, ranges)


def _iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).isoformat(timespec="milliseconds")


def select_records(data: bytes, position: int, end: int, start_ms: int | None, end_ms: int | None,
                   limit: int | None = None, aborted: AbortedTransactions | None = None):
    """Scan fetched record data for one partition.

    Yields ``(timestamp_type, records)`` per batch with the records of offsets in
    [position, end) and timestamps in the window, then returns the next position
    (the offset after the last whole batch, capped at ``end``).  Control batches
    are stepped over, and with ``aborted`` (a read_committed fetch) the batches it
    drops.  Pure: no I/O.  A batch whose records do not decode
    (corrupt, or inflating past ``limit`` bytes: a decompression bomb) raises
    ExportError naming its offsets: an export stops rather than skip data.
    """
    from kavka.protocol import records as rb
    low = -(1 << 63) if start_ms is None else start_ms
    high = 1 << 63 if end_ms is None else end_ms
    for pos, header in rb.iter_batches(data):
        if header.base_offset >= end:
            return end
        dropped = aborted.drops(data, pos, header) if aborted is not None else header.is_control
        if header.next_offset <= position:
            continue
        if not dropped:
            kept = [r for r in _decode(data, pos, header, limit)
                    if position <= r.offset < end and low <= r.timestamp < high]
            if kept:
                yield LOG_APPEND_TIME if header.log_append_time else CREATE_TIME, kept
        position = min(header.next_offset, end)
        if position >= end:
            return end
    return position


def _decode(data: bytes, pos: int, header, limit: int | None) -> list:
    from kavka.protocol.record_codec import DEFAULT_MAX_UNCOMPRESSED, decode_records
    from kavka.protocol.records import InvalidBatch
    try:
        return decode_records(data, pos, DEFAULT_MAX_UNCOMPRESSED if limit is None else limit)
    except InvalidBatch as exc:
        raise ExportError(f"the batch at offsets {header.base_offset}-{header.last_offset} does not decode: "
                          f"{exc}") from None


class WindowReader:
    """One window of one topic, read once with one of ``chunks()``, ``records_iter()``,
    ``row_groups()``, ``record_batches()`` or ``table()``.  The offset plan is made when
    the reader is created; the counters (``records``, ``bytes``, ``done``, ``skipped``)
    follow the reading, and ``progress(reader)`` is called after every Fetch."""

    def __init__(self, session: Session, topic: str, start: Any = None, end: Any = None,
                 partitions: Sequence[int] | None = None, *, now_ms: int | None = None,
                 fetch_bytes: int = FETCH_BYTES, progress: Callable[["WindowReader"], None] | None = None,
                 isolation: str = "read_uncommitted") -> None:
        now_ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        self.session = session
        self.isolation = isolation_level(isolation)
        self.start_ms = to_millis(start, now_ms, "--from")
        self.end_ms = to_millis(end, now_ms, "--to")
        self.metadata = session.topic(topic)
        self.plan = plan_window(session, self.metadata, self.start_ms, self.end_ms, partitions, self.isolation)
        self.fetch_bytes = fetch_bytes
        self.progress = progress
        self.records = 0  # records yielded
        self.bytes = 0  # record data fetched (as on the wire, compressed)
        self.done = 0  # offsets of the plan read so far
        self.skipped: dict[int, int] = {}  # partition -> offsets lost to retention while reading
        self._started = False

    @property
    def topic(self) -> str:
        return self.plan.topic

    @property
    def fraction(self) -> float:
        total = self.plan.offsets
        return 1.0 if total == 0 else min(1.0, self.done / total)

    # -- reading ---------------------------------------------------------------------------

    def chunks(self) -> Iterator[tuple[int, str, list]]:
        """``(partition, timestamp_type, [record_codec.Record, ...])`` in partition then offset order."""
        if self._started:
            raise RuntimeError("a WindowReader reads its window once")
        self._started = True
        for partition, (start, end) in sorted(self.plan.ranges.items()):
            position = start
            stalls = 0
            while position < end:
                data, aborted, position = self._fetch(partition, position, end)
                if data is None:
                    continue  # skipped ahead past deleted offsets
                scan = select_records(data, position, end, self.start_ms, self.end_ms, aborted=aborted)
                while True:
                    try:
                        timestamp_type, kept = next(scan)
                    except StopIteration as stop:
                        after = stop.value
                        break
                    except ExportError as exc:
                        raise ExportError(f"partition {partition} of '{self.topic}': {exc}") from None
                    self.records += len(kept)
                    yield partition, timestamp_type, kept
                self.bytes += len(data)
                if after <= position:
                    stalls += 1
                    if stalls > _RETRIES:  # nothing more below the end offset: the log was truncated
                        break
                    time.sleep(0.05 * stalls)
                    continue
                stalls = 0
                self.done += after - position
                position = after
                if self.progress:
                    self.progress(self)
            self.done += max(0, end - position)  # whatever was left (truncated log)
        if self.progress:
            self.progress(self)

    def records_iter(self) -> Iterator[ExportRecord]:
        topic = self.topic
        for partition, timestamp_type, kept in self.chunks():
            for r in kept:
                yield ExportRecord(topic, partition, r.offset, r.timestamp, timestamp_type, r.key, r.value,
                                   tuple(r.headers))

    def record_batches(self, rows: int = ROW_GROUP_ROWS, max_bytes: int = ROW_GROUP_BYTES
                       ) -> Iterator["pyarrow.RecordBatch"]:
        """Bounded RecordBatches of :func:`schema` (at most ``rows`` rows / about ``max_bytes``)."""
        pa = require_pyarrow()
        for pieces in self.row_groups(rows, max_bytes):
            yield _join(pa, pieces)

    def row_groups(self, rows: int = ROW_GROUP_ROWS, max_bytes: int = ROW_GROUP_BYTES
                   ) -> Iterator[list["pyarrow.RecordBatch"]]:
        """Lists of RecordBatches that together hold at most ``rows`` rows / about ``max_bytes``.

        Records become Arrow arrays every :data:`PIECE_ROWS` rows: as Python objects
        they cost several times their payload, as Arrow arrays little more."""
        require_pyarrow()
        columns = _Columns(self.topic)
        pieces: list = []
        held = held_bytes = 0
        piece = min(rows, PIECE_ROWS)
        for partition, timestamp_type, kept in self.chunks():
            at = 0
            while at < len(kept):
                take = kept[at:at + min(piece - columns.rows, rows - held - columns.rows)]
                columns.add(partition, timestamp_type, take)
                at += len(take)
                if columns.rows >= piece or held + columns.rows >= rows or held_bytes + columns.bytes >= max_bytes:
                    held += columns.rows
                    held_bytes += columns.bytes
                    pieces.append(columns.flush())
                    if held >= rows or held_bytes >= max_bytes:
                        yield pieces
                        pieces, held, held_bytes = [], 0, 0
        if columns.rows:
            pieces.append(columns.flush())
        if pieces:
            yield pieces

    def table(self) -> "pyarrow.Table":
        pa = require_pyarrow()
        return pa.Table.from_batches(list(self.record_batches()), schema=schema())

    def _fetch(self, partition: int, position: int, end: int
               ) -> tuple[bytes | None, AbortedTransactions | None, int]:
        """(record data at ``position``, its aborted transactions when read_committed, position);
        (None, None, new position) after a retention skip."""
        s = self.session
        for attempt in range(_RETRIES + 1):
            leader = next(p.leader_id for p in self.metadata.partitions if p.partition_index == partition)
            q = s.builder(FETCH)
            response = s.request(q.FetchRequest(
                replica_id=-1, max_wait=datetime.timedelta(0), min_bytes=0, max_bytes=self.fetch_bytes,
                isolation_level=self.isolation, session_id=0, session_epoch=-1, forgotten_topics_data=(),
                rack_id="", topics=(q.FetchTopic(topic=self.topic, partitions=(q.FetchPartition(
                    partition=partition, current_leader_epoch=-1, fetch_offset=position, last_fetched_epoch=-1,
                    log_start_offset=-1, partition_max_bytes=self.fetch_bytes),)),)), s.leader(leader))
            check(getattr(response, "error_code", 0), None, f"fetch from '{self.topic}' failed")
            (answer,) = [p for t in response.responses for p in t.partitions if p.partition_index == partition]
            code = answer.error_code
            if code in _RETRIABLE and attempt < _RETRIES:
                time.sleep(0.1 * (attempt + 1))
                self.metadata = s.topic(self.topic)  # the leader moved
                continue
            if code == _OFFSET_OUT_OF_RANGE:
                log_start = getattr(answer, "log_start_offset", -1)
                if log_start > position:  # retention deleted what we were about to read
                    new = min(log_start, end)
                    self.skipped[partition] = self.skipped.get(partition, 0) + new - position
                    self.done += new - position
                    return None, None, new
            check(code, None, f"partition {partition} of '{self.topic}' at offset {position}")
            aborted = None
            if self.isolation == READ_COMMITTED:
                aborted = AbortedTransactions((a.producer_id, a.first_offset)
                                              for a in answer.aborted_transactions or ())
            return bytes(answer.records or b""), aborted, position
        raise AssertionError("unreachable")


def _join(pa, pieces: list) -> "pyarrow.RecordBatch":
    if len(pieces) == 1:
        return pieces[0]
    if hasattr(pa, "concat_batches"):  # pyarrow 19+
        return pa.concat_batches(pieces)
    return pa.Table.from_batches(pieces).combine_chunks().to_batches()[0]


class _Columns:
    """Column lists for one RecordBatch."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self._reset()

    def _reset(self) -> None:
        self.rows = self.bytes = 0
        self.partitions: list[int] = []
        self.offsets: list[int] = []
        self.timestamps: list[int] = []
        self.types: list[str] = []
        self.keys: list[bytes | None] = []
        self.values: list[bytes | None] = []
        self.header_ends: list[int] = [0]
        self.header_keys: list[str] = []
        self.header_values: list[bytes | None] = []

    def add(self, partition: int, timestamp_type: str, records: list) -> None:
        n = len(records)
        self.rows += n
        self.partitions += [partition] * n
        self.types += [timestamp_type] * n
        self.offsets += [r.offset for r in records]
        self.timestamps += [r.timestamp for r in records]
        keys = [r.key for r in records]
        values = [r.value for r in records]
        self.keys += keys
        self.values += values
        size = sum(len(k) for k in keys if k is not None) + sum(len(v) for v in values if v is not None)
        ends, hkeys, hvalues = self.header_ends, self.header_keys, self.header_values
        count = ends[-1]
        for r in records:
            if r.headers:
                for k, v in r.headers:
                    hkeys.append(k)
                    hvalues.append(v)
                    size += len(k) + (len(v) if v is not None else 0)
                count += len(r.headers)
            ends.append(count)
        self.bytes += size

    def flush(self) -> "pyarrow.RecordBatch":
        pa = require_pyarrow()
        header_type = _header_struct()
        try:
            header_keys = pa.array(self.header_keys, pa.string())
        except (UnicodeEncodeError, pa.ArrowException):  # a header name that is not UTF-8
            header_keys = pa.array([k.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                                    for k in self.header_keys], pa.string())
        struct = pa.StructArray.from_arrays([header_keys, pa.array(self.header_values, pa.binary())],
                                            fields=list(header_type))
        headers = pa.ListArray.from_arrays(pa.array(self.header_ends, pa.int32()), struct,
                                           type=pa.list_(header_type))
        batch = pa.RecordBatch.from_arrays([
            pa.array([self.topic] * self.rows, pa.string()),
            pa.array(self.partitions, pa.int32()),
            pa.array(self.offsets, pa.int64()),
            pa.array(self.timestamps, pa.timestamp("ms", tz="UTC")),
            pa.array(self.types, pa.string()),
            pa.array(self.keys, pa.binary()),
            pa.array(self.values, pa.binary()),
            headers,
        ], schema=schema())
        self._reset()
        return batch


# -- pyarrow -----------------------------------------------------------------------------------

def require_pyarrow():
    try:
        import pyarrow
    except ImportError:
        raise ExportError(f"parquet and Arrow output need pyarrow: {PYARROW_HINT}") from None
    return pyarrow


def _header_struct():
    pa = require_pyarrow()
    return pa.struct([pa.field("key", pa.string()), pa.field("value", pa.binary())])


def schema(metadata: dict[str, str] | None = None) -> "pyarrow.Schema":
    """topic, partition, offset, timestamp (ms, UTC), timestamp_type, key, value, headers."""
    pa = require_pyarrow()
    return pa.schema([
        pa.field("topic", pa.string()),
        pa.field("partition", pa.int32()),
        pa.field("offset", pa.int64()),
        pa.field("timestamp", pa.timestamp("ms", tz="UTC")),
        pa.field("timestamp_type", pa.string()),
        pa.field("key", pa.binary()),
        pa.field("value", pa.binary()),
        pa.field("headers", pa.list_(_header_struct())),
    ], metadata=metadata)


def plan_metadata(reader: WindowReader) -> dict[str, str]:
    """What the file holds, for the parquet footer (``kavka.*`` keys)."""
    plan = reader.plan
    return {"kavka.topic": plan.topic,
            "kavka.from_ms": "" if plan.start_ms is None else str(plan.start_ms),
            "kavka.to_ms": "" if plan.end_ms is None else str(plan.end_ms),
            "kavka.offsets": json.dumps({str(p): list(r) for p, r in sorted(plan.ranges.items())})}


# -- writers -----------------------------------------------------------------------------------

def jsonl_line(topic: str, partition: int, timestamp_type: str, record) -> bytes:
    """One JSON line: ``kavka consume --format json``'s object plus timestamp_type."""
    return json.dumps({
        "topic": topic, "partition": partition, "offset": record.offset, "timestamp": record.timestamp,
        "timestamp_type": timestamp_type, "key": json_bytes(record.key), "value": json_bytes(record.value),
        "headers": [[k, json_bytes(v)] for k, v in record.headers]}, ensure_ascii=False).encode() + b"\n"


def write_jsonl_from(reader: WindowReader, stream: IO[bytes]) -> int:
    topic = reader.topic
    for partition, timestamp_type, kept in reader.chunks():
        stream.write(b"".join(jsonl_line(topic, partition, timestamp_type, r) for r in kept))
    return reader.records


def write_parquet_from(reader: WindowReader, where: Any, compression: str = "snappy",
                       rows: int = ROW_GROUP_ROWS) -> int:
    """Write row groups as they fill; ``where`` is a path or a writable binary file."""
    pa = require_pyarrow()
    import pyarrow.parquet as pq
    with pq.ParquetWriter(where, schema(plan_metadata(reader)), compression=compression) as writer:
        for pieces in reader.row_groups(rows):
            writer.write_table(pa.Table.from_batches(pieces), row_group_size=rows)
    return reader.records


# -- the functions -----------------------------------------------------------------------------

def _session(bootstrap: str | Session) -> tuple[Session, bool]:
    """A Session for the first reachable of comma-separated HOST:PORT addresses."""
    if isinstance(bootstrap, Session):
        return bootstrap, False
    addresses = [a.strip() for a in str(bootstrap).split(",") if a.strip()]
    if not addresses:
        raise ExportError("no bootstrap server given")
    for address in addresses[:-1]:
        try:
            return Session(address), True
        except ExportError:
            continue
    return Session(addresses[-1]), True


@dataclass
class _Open:
    """A reader with its session, closed when reading ends."""
    reader: WindowReader
    owned: Session | None = field(default=None)

    def close(self) -> None:
        if self.owned is not None:
            self.owned.close()


def _open(bootstrap, topic, start, end, partitions, **options) -> _Open:
    session, owned = _session(bootstrap)
    try:
        return _Open(WindowReader(session, topic, start, end, partitions, **options), session if owned else None)
    except BaseException:
        if owned:
            session.close()
        raise


def iter_window(bootstrap: str | Session, topic: str, start: Any = None, end: Any = None,
                partitions: Iterable[int] | None = None, isolation: str = "read_uncommitted"
                ) -> Iterator[ExportRecord]:
    """The window's records, one :class:`ExportRecord` at a time (no pyarrow needed).

    Lazy: the broker is asked for the offsets at the first ``next()``, and records
    are fetched as the iteration advances; the connection closes when it ends."""
    opened = _open(bootstrap, topic, start, end, None if partitions is None else list(partitions),
                   isolation=isolation)
    try:
        yield from opened.reader.records_iter()
    finally:
        opened.close()


def iter_record_batches(bootstrap: str | Session, topic: str, start: Any = None, end: Any = None,
                        partitions: Iterable[int] | None = None, rows: int = ROW_GROUP_ROWS,
                        isolation: str = "read_uncommitted") -> Iterator["pyarrow.RecordBatch"]:
    """The window as bounded pyarrow RecordBatches (:func:`schema`); lazy like :func:`iter_window`."""
    require_pyarrow()
    opened = _open(bootstrap, topic, start, end, None if partitions is None else list(partitions),
                   isolation=isolation)
    try:
        yield from opened.reader.record_batches(rows)
    finally:
        opened.close()


def read_window(bootstrap: str | Session, topic: str, start: Any = None, end: Any = None,
                partitions: Iterable[int] | None = None, isolation: str = "read_uncommitted") -> "pyarrow.Table":
    """The records of ``topic`` with ``start <= timestamp < end`` as one pyarrow Table
    (in memory: for big windows use :func:`write_parquet` or :func:`iter_record_batches`)."""
    require_pyarrow()
    opened = _open(bootstrap, topic, start, end, None if partitions is None else list(partitions),
                   isolation=isolation)
    try:
        return opened.reader.table()
    finally:
        opened.close()


def write_parquet(bootstrap: str | Session, topic: str, path: Any, start: Any = None, end: Any = None,
                  partitions: Iterable[int] | None = None, compression: str = "snappy",
                  isolation: str = "read_uncommitted") -> int:
    """Write the window to a parquet file, one row group at a time; returns the record count."""
    require_pyarrow()
    opened = _open(bootstrap, topic, start, end, None if partitions is None else list(partitions),
                   isolation=isolation)
    try:
        return write_parquet_from(opened.reader, path, compression)
    finally:
        opened.close()


def write_jsonl(bootstrap: str | Session, topic: str, stream: IO[bytes], start: Any = None, end: Any = None,
                partitions: Iterable[int] | None = None, isolation: str = "read_uncommitted") -> int:
    """Write the window as JSON lines to a binary stream; returns the record count."""
    opened = _open(bootstrap, topic, start, end, None if partitions is None else list(partitions),
                   isolation=isolation)
    try:
        return write_jsonl_from(opened.reader, stream)
    finally:
        opened.close()
