"""``kavka export TOPIC --from TIME --to TIME``: write a time window of a topic to a file.

The records with ``FROM <= timestamp < TO``, found the way a Kafka consumer
would (ListOffsets by timestamp, then Fetch; see :mod:`kavka.export` for the
exact rules), partition by partition in offset order:

* ``jsonl`` (default; to stdout unless ``-o FILE``): one object per line, as
  ``kavka consume --format json`` prints plus ``timestamp_type``; keys, values
  and header values that are not UTF-8 become ``{"base64": "..."}``.
* ``parquet`` (needs ``-o FILE`` and pyarrow): columns topic, partition,
  offset, timestamp (ms, UTC), timestamp_type, key, value, headers; written a
  row group at a time while fetching.

``--isolation`` is Kafka's consumer ``isolation.level``, read_uncommitted by default as
there (every record, those of aborted and open transactions too); read_committed stops at
the last stable offset and leaves out aborted transactions' records.  Transaction markers
are never written.

A file is written under a temporary name and renamed when complete.  A
progress line (records, MB fetched, percent of the offset range) is shown on
stderr when it is a terminal; a summary line always goes to stderr.
"""

from __future__ import annotations

import os
import sys
import time

from kavka.cli.common import CliError, Progress, bootstrap_parent, session
from kavka.client_session import ISOLATION_LEVELS

FORMATS = ("jsonl", "parquet")
PARQUET_CODECS = ("snappy", "zstd", "gzip", "lz4", "none")


def add_parser(commands) -> None:
    p = commands.add_parser(
        "export", parents=[bootstrap_parent()], help="write a time window of a topic to jsonl or parquet",
        description="Write the records of TOPIC whose timestamps fall in [--from, --to) to a file or stdout.")
    p.add_argument("topic")
    time_help = ("ISO 8601 (2024-05-01T12:00, local time unless it has a zone), epoch milliseconds, "
                 "an age such as 30s, 15m, 2h, 1d, or now")
    p.add_argument("--from", dest="from_time", metavar="TIME",
                   help=f"first timestamp included (default: the oldest record): {time_help}")
    p.add_argument("--to", dest="to_time", metavar="TIME",
                   help="first timestamp excluded (default: everything up to the end of the log as it was "
                        "when the export started)")
    p.add_argument("--format", choices=FORMATS,
                   help="output format (default: parquet when FILE ends in .parquet, else jsonl)")
    p.add_argument("-o", "--output", metavar="FILE", default="-", help="where to write (default -: stdout)")
    p.add_argument("-p", "--partition", type=int, nargs="+", action="extend", metavar="P",
                   help="read only these partitions (repeatable)")
    p.add_argument("--compression", choices=PARQUET_CODECS, default="snappy",
                   help="parquet compression (default snappy)")
    p.add_argument("--isolation", choices=ISOLATION_LEVELS, default="read_uncommitted",
                   help="read_uncommitted (default, as Kafka consumers): every record, aborted transactions' "
                        "too; read_committed: up to the last stable offset, without aborted transactions")


def output_format(fmt: str | None, output: str) -> str:
    if fmt:
        return fmt
    return "parquet" if output.lower().endswith((".parquet", ".pq")) else "jsonl"


def run(args) -> int:
    from kavka import export

    fmt = output_format(args.format, args.output)
    to_stdout = args.output == "-"
    if fmt == "parquet":
        if to_stdout:
            raise CliError("--format parquet needs -o FILE (parquet is not written to stdout)")
        export.require_pyarrow()
    now_ms = time.time_ns() // 1_000_000
    started = time.monotonic()
    progress = Progress()

    def show(reader: export.WindowReader) -> None:
        progress.update(f"{reader.topic}: {reader.records:,} records, {reader.bytes / 1e6:,.1f} MB, "
                        f"{reader.fraction:.0%}")

    with session(args) as s:
        reader = export.WindowReader(s, args.topic, args.from_time, args.to_time, args.partition,
                                     now_ms=now_ms, progress=show, isolation=args.isolation)
        try:
            if to_stdout:
                try:
                    export.write_jsonl_from(reader, sys.stdout.buffer)
                    sys.stdout.buffer.flush()
                except BrokenPipeError:  # e.g. `kavka export t | head`
                    progress.clear()
                    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                    return 0
            else:
                _write_file(reader, args.output, fmt, args.compression)
        finally:
            progress.clear()
    for partition, count in sorted(reader.skipped.items()):
        print(f"partition {partition}: {count} offsets were deleted by retention during the export",
              file=sys.stderr)
    where = "stdout" if to_stdout else args.output
    n = reader.records
    print(f"Exported {n:,} record{'s' * (n != 1)} from {reader.topic} ({len(reader.plan.ranges)} partitions, "
          f"{reader.bytes / 1e6:,.1f} MB fetched) to {where} in {time.monotonic() - started:.1f} s",
          file=sys.stderr)
    return 0


def _write_file(reader, path: str, fmt: str, compression: str) -> None:
    from kavka import export

    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CliError(f"cannot write {path}: no directory {directory}")
    temporary = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.partial")
    try:
        if fmt == "parquet":
            export.write_parquet_from(reader, temporary, compression)
        else:
            with open(temporary, "wb") as stream:
                export.write_jsonl_from(reader, stream)
        os.replace(temporary, path)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
