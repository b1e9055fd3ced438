"""``kavka consume TOPIC``: print a topic's records as they arrive.

Reads every partition (or ``--partition N``) from the end (only new records),
``--from-beginning``, ``--offset N`` or ``--from TIME``, with long-polling
Fetch requests to each partition's leader, and stops after ``--max-messages``,
after ``--timeout`` seconds without a new record, or at Ctrl-C.  No consumer
group is joined and no offset is committed.

Output, one record per line on stdout:

* ``text`` (default): the value, preceded with ``--print-key`` by the key and
  with ``--print-headers`` by ``name:value,...`` (``NO_HEADERS`` when none),
  separated by ``--separator`` (a tab); a null key or value prints ``null``.
  Bytes are written as they are.
* ``json``: an object with topic, partition, offset, timestamp, key, value and
  headers (a list of ``[name, value]``); bytes that are not UTF-8 become
  ``{"base64": "..."}``.

``--isolation`` is Kafka's consumer ``isolation.level``: read_uncommitted (the default, as
for Kafka's consumers) prints every record, those of aborted and open transactions too;
read_committed reads up to the last stable offset and leaves out aborted transactions'
records (the Fetch answer's aborted transactions, as Kafka's consumer drops them).
Transaction markers are never printed.

The summary ("Processed a total of N messages") goes to stderr.

A batch whose records do not decode (corrupt, or inflating past
``--max-uncompressed-bytes``: a decompression bomb) is reported on stderr as
one line naming its partition and offsets, and skipped; the exit status is
then 1.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time

from kavka.cli.common import CliError, bootstrap_parent, session
from kavka.client_session import (
    EARLIEST,
    FETCH,
    ISOLATION_LEVELS,
    LATEST,
    READ_COMMITTED,
    AbortedTransactions,
    check,
    parse_time,
)
from kavka.client_session import json_bytes as _json_bytes
from kavka.protocol.record_codec import DEFAULT_MAX_UNCOMPRESSED

POLL_WAIT = 0.5  # seconds a fetch may park at the broker
MAX_BYTES, PARTITION_MAX_BYTES = 16 * 1024 * 1024, 1024 * 1024
OFFSET_OUT_OF_RANGE = 1


def add_parser(commands) -> None:
    p = commands.add_parser("consume", parents=[bootstrap_parent()], help="print a topic's records",
                            description="Print a topic's records as they arrive (no consumer group).")
    p.add_argument("topic")
    start = p.add_mutually_exclusive_group()
    start.add_argument("--from-beginning", action="store_true", help="start at the oldest record")
    start.add_argument("--offset", type=int, metavar="N", help="start at offset N of each partition read")
    start.add_argument("--from", dest="from_time", metavar="TIME",
                       help="start at the first record at or after TIME: ISO 8601 (2024-05-01T12:00, local "
                            "time unless it has a zone), epoch milliseconds, or an age such as 30s, 15m, 2h, 1d")
    p.add_argument("-p", "--partition", type=int, metavar="N", help="read only partition N")
    p.add_argument("-n", "--max-messages", type=int, metavar="N", help="stop after N records")
    p.add_argument("--timeout", type=float, metavar="SECS",
                   help="stop after SECS without a new record (default: run until Ctrl-C)")
    p.add_argument("--format", choices=["text", "json"], default="text", help="output format (default text)")
    p.add_argument("--print-key", action="store_true", help="text format: print the key before the value")
    p.add_argument("--print-headers", action="store_true", help="text format: print the headers first")
    p.add_argument("--separator", default="\t", metavar="SEP", help="text format: between fields (default tab)")
    p.add_argument("--isolation", choices=ISOLATION_LEVELS, default="read_uncommitted",
                   help="read_uncommitted (default, as Kafka consumers): every record, aborted transactions' "
                        "too; read_committed: up to the last stable offset, without aborted transactions")
    p.add_argument("--max-uncompressed-bytes", type=int, default=DEFAULT_MAX_UNCOMPRESSED, metavar="N",
                   help="skip (and report) a batch whose records inflate past N bytes "
                        f"(default {DEFAULT_MAX_UNCOMPRESSED})")


def run(args) -> int:
    if args.max_messages is not None and args.max_messages < 1:
        raise CliError("--max-messages must be at least 1")
    out = _Output(args)
    with session(args) as s:
        topic = s.topic(args.topic)
        count = len(topic.partitions)
        if args.partition is not None and not 0 <= args.partition < count:
            raise CliError(f"topic '{topic.name}' has partitions 0-{count - 1}; there is no partition "
                            f"{args.partition}")
        indexes = [args.partition] if args.partition is not None else sorted(
            p.partition_index for p in topic.partitions)
        leaders = {p.partition_index: p.leader_id for p in topic.partitions}
        positions = _start(s, topic, indexes, args)
        try:
            _loop(s, topic.name, positions, leaders, args, out)
        except KeyboardInterrupt:
            out.finish()
            return 130
        except BrokenPipeError:  # e.g. `kavka consume t | head`
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    out.finish()
    return 1 if out.skipped else 0


def _start(s, topic, indexes: list[int], args) -> dict[int, int]:
    def offsets(wanted: list[int], timestamp: int) -> dict[int, int]:
        return s.list_offsets(topic, wanted, timestamp, ISOLATION_LEVELS[args.isolation])

    if args.from_beginning:
        return offsets(indexes, EARLIEST)
    if args.from_time is not None:
        found = offsets(indexes, parse_time(args.from_time, time.time_ns() // 1_000_000))
        missing = [i for i, o in found.items() if o < 0]  # nothing that new: wait for the next record
        ends = offsets(missing, LATEST) if missing else {}
        return {i: o if o >= 0 else ends[i] for i, o in found.items()}
    if args.offset is not None:
        starts, ends = offsets(indexes, EARLIEST), offsets(indexes, LATEST)
        for i in indexes:
            if not starts[i] <= args.offset <= ends[i]:
                raise CliError(f"OFFSET_OUT_OF_RANGE: partition {i} of '{topic.name}' holds offsets "
                                f"{starts[i]}-{ends[i] - 1}; --offset {args.offset} is outside them"
                                if ends[i] > starts[i] else
                                f"OFFSET_OUT_OF_RANGE: partition {i} of '{topic.name}' is empty; "
                                f"the next offset is {ends[i]}, not {args.offset}")
        return {i: args.offset for i in indexes}
    return offsets(indexes, LATEST)


def _loop(s, name: str, positions: dict[int, int], leaders: dict[int, int], args, out: "_Output") -> None:
    from kavka.protocol import records as rb
    by_leader: dict[int, list[int]] = {}
    for index in positions:
        by_leader.setdefault(leaders[index], []).append(index)
    idle_since = time.monotonic()
    longest = POLL_WAIT / len(by_leader)
    isolation = ISOLATION_LEVELS[args.isolation]
    while True:
        got = False
        for leader, indexes in by_leader.items():
            wait = longest
            if args.timeout is not None:
                wait = max(0.01, min(wait, args.timeout - (time.monotonic() - idle_since)))
            for index, data, aborted in _fetch(s, name, indexes, positions, leader, wait, isolation):
                for pos, header in rb.iter_batches(data):
                    if not (aborted.drops(data, pos, header) if aborted is not None else header.is_control):
                        for record in _records(data, pos, header, index, args, out):
                            if record.offset >= positions[index]:
                                got = True
                                out.write(name, index, record)
                                if out.count == args.max_messages:
                                    return
                    positions[index] = max(positions[index], header.next_offset)
            out.flush()
        now = time.monotonic()
        if got:
            idle_since = now
        elif args.timeout is not None and now - idle_since >= args.timeout:
            return


def _records(data, pos: int, header, index: int, args, out: "_Output") -> list:
    """The batch's records, or none with a one-line report when they do not decode."""
    from kavka.protocol.record_codec import decode_records
    from kavka.protocol.records import InvalidBatch
    try:
        return decode_records(data, pos, args.max_uncompressed_bytes)
    except InvalidBatch as exc:
        out.flush()
        print(f"partition {index}: skipped the batch at offsets {header.base_offset}-{header.last_offset}: {exc}",
              file=sys.stderr)
        out.skipped += 1
        return []


def _fetch(s, name: str, indexes: list[int], positions: dict[int, int], leader: int, wait: float,
           isolation: int):
    """(partition, records bytes, its AbortedTransactions when read_committed) for each
    partition with data."""
    q = s.builder(FETCH)
    response = s.request(q.FetchRequest(
        replica_id=-1, max_wait=datetime.timedelta(seconds=wait), min_bytes=1, max_bytes=MAX_BYTES,
        isolation_level=isolation, session_id=0, session_epoch=-1, forgotten_topics_data=(), rack_id="",
        topics=(q.FetchTopic(topic=name, partitions=tuple(q.FetchPartition(
            partition=i, current_leader_epoch=-1, fetch_offset=positions[i], last_fetched_epoch=-1,
            log_start_offset=-1, partition_max_bytes=PARTITION_MAX_BYTES) for i in indexes)),)),
        s.leader(leader))
    check(response.error_code if hasattr(response, "error_code") else 0, None, "fetch failed")
    for t in response.responses:
        for p in t.partitions:
            if p.error_code == OFFSET_OUT_OF_RANGE:  # retention passed us by: go on from the oldest
                start = p.log_start_offset if getattr(p, "log_start_offset", -1) >= 0 else 0
                print(f"partition {p.partition_index}: offset {positions[p.partition_index]} is gone; "
                      f"continuing at {start}", file=sys.stderr)
                positions[p.partition_index] = start
                continue
            check(p.error_code, None, f"partition {p.partition_index} of '{name}'")
            if p.records:
                aborted = None
                if isolation == READ_COMMITTED:
                    aborted = AbortedTransactions((a.producer_id, a.first_offset)
                                                  for a in p.aborted_transactions or ())
                yield p.partition_index, p.records, aborted


class _Output:
    def __init__(self, args) -> None:
        self.args = args
        self.sep = args.separator.encode()
        self.stream = sys.stdout.buffer
        self.count = 0
        self.skipped = 0  # batches that did not decode

    def write(self, topic: str, partition: int, record) -> None:
        if self.args.format == "json":
            line = json.dumps({
                "topic": topic, "partition": partition, "offset": record.offset, "timestamp": record.timestamp,
                "key": _json_bytes(record.key), "value": _json_bytes(record.value),
                "headers": [[k, _json_bytes(v)] for k, v in record.headers]}, ensure_ascii=False).encode()
        else:
            fields = []
            if self.args.print_headers:
                fields.append(b",".join(k.encode("utf-8", "surrogateescape") + b":" + _text(v)
                                        for k, v in record.headers) or b"NO_HEADERS")
            if self.args.print_key:
                fields.append(_text(record.key))
            fields.append(_text(record.value))
            line = self.sep.join(fields)
        self.stream.write(line + b"\n")
        self.count += 1

    def flush(self) -> None:
        self.stream.flush()

    def finish(self) -> None:
        try:
            self.flush()
        except BrokenPipeError:
            pass
        skipped = f" ({self.skipped} undecodable batch{'es' * (self.skipped != 1)} skipped)" if self.skipped else ""
        print(f"Processed a total of {self.count} message{'s' * (self.count != 1)}{skipped}", file=sys.stderr)


def _text(data: bytes | None) -> bytes:
    return b"null" if data is None else data
