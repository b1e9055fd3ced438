"""``kavka dump-log FILE...``: print a segment's batches, or an index's entries, like Kafka's
``kafka-dump-log --files``.

A ``.log`` file is read batch by batch from disk (one batch in memory at a time,
so a 1 GiB segment needs no more than its largest batch); each batch gets one
line in kafka-dump-log's wording (baseOffset, lastOffset, count, sequences,
producer, leader epoch, flags, position, timestamp, size, magic, codec, CRC and
whether it matches).  ``--print-data-log`` adds one ``|`` line per record (offset,
timestamp, key and value sizes, header keys, key and payload as text).  A batch
whose CRC does not match is shown ``isvalid: false``; a tail that does not frame
as a batch ends the dump with a line saying so.  ``.index`` / ``.timeindex`` files
print their entries with absolute offsets, ``.txnindex`` files their aborted
transactions (kavka.log.txn_index), as kafka-dump-log does.  The exit status is 1 when a file holds
a damaged batch or tail (the broker would cut the log there), else 0.

Read-only: safe on a running broker's files (the last batch may still be
arriving: a torn tail is then expected).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from kavka.cli.common import CliError

CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
_INDEX = struct.Struct(">ii")
_TIME_INDEX = struct.Struct(">qi")
_TXN_INDEX = struct.Struct(">hqqqq")


def add_parser(commands) -> None:
    p = commands.add_parser(
        "dump-log", help="print the batches of segment files (or the entries of index files)",
        description="Print each record batch of a .log segment file, or the entries of a .index / "
                    ".timeindex / .txnindex file, in kafka-dump-log's format; exit status 1 when a batch is damaged.")
    p.add_argument("files", nargs="+", metavar="FILE", help="segment (.log), .index, .timeindex or .txnindex files")
    p.add_argument("--print-data-log", action="store_true", help="print every record of each batch too")
    p.add_argument("--max-batches", type=int, default=0, metavar="N",
                   help="stop each .log file after N batches (default: all)")


def run(args) -> int:
    damaged = False
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            raise CliError(f"{name}: no such file")
        base = _base_offset(path)
        print(f"Dumping {path}")
        if path.suffix == ".log":
            print(f"Log starting offset: {base}")
            damaged |= _dump_segment(path, args.print_data_log, args.max_batches)
        elif path.suffix == ".index":
            _dump_index(path, base, _INDEX, lambda rel, pos: f"offset: {base + rel} position: {pos}")
        elif path.suffix == ".timeindex":
            _dump_index(path, base, _TIME_INDEX, lambda ts, rel: f"timestamp: {ts} offset: {base + rel}")
        elif path.suffix == ".txnindex":
            _dump_txn_index(path)
        else:
            raise CliError(f"{name}: not a .log, .index, .timeindex or .txnindex file")
    return 1 if damaged else 0


def _base_offset(path: Path) -> int:
    if not path.stem.isdigit():
        raise CliError(f"{path}: the file name is not a base offset (like 00000000000000000000.log)")
    return int(path.stem)


def _dump_segment(path: Path, print_records: bool, max_batches: int) -> bool:
    """Print every batch; True if a batch or the tail is damaged."""
    from kavka.protocol import records as rb
    from kavka.protocol.record_codec import decode_records
    damaged = False
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        position = batches = 0
        while position < size and (not max_batches or batches < max_batches):
            head = os.pread(f.fileno(), rb.HEADER_SIZE, position)
            if len(head) < rb.HEADER_SIZE:
                print(f"Found {size - position} trailing bytes at position {position}: not a whole batch header")
                return True
            header = rb.read_header(head)
            if header.magic != rb.MAGIC or header.batch_length < rb.HEADER_SIZE - rb.LOG_OVERHEAD \
                    or position + header.size > size:
                print(f"Found a damaged or torn batch at position {position} (declared size {header.size}, "
                      f"magic {header.magic}, {size - position} bytes left): the broker's recovery cuts here")
                return True
            batch = os.pread(f.fileno(), header.size, position)
            valid = rb.compute_crc(batch, 0, header.size) == header.crc
            damaged |= not valid
            print(_batch_line(header, position, valid))
            if print_records and valid:
                for record in decode_records(batch):
                    print(_record_line(record, header))
            position += header.size
            batches += 1
    return damaged


def _batch_line(h, position: int, valid: bool) -> str:
    time_type = "LogAppendTime" if h.log_append_time else "CreateTime"
    last_sequence = h.last_sequence if h.base_sequence >= 0 else -1
    return (f"baseOffset: {h.base_offset} lastOffset: {h.last_offset} count: {h.records_count} "
            f"baseSequence: {h.base_sequence} lastSequence: {last_sequence} producerId: {h.producer_id} "
            f"producerEpoch: {h.producer_epoch} partitionLeaderEpoch: {h.partition_leader_epoch} "
            f"isTransactional: {str(h.is_transactional).lower()} isControl: {str(h.is_control).lower()} "
            f"position: {position} {time_type}: {h.max_timestamp} size: {h.size} magic: {h.magic} "
            f"compresscodec: {CODECS.get(h.compression, h.compression)} crc: {h.crc} "
            f"isvalid: {str(valid).lower()}")


def _record_line(record, h) -> str:
    time_type = "LogAppendTime" if h.log_append_time else "CreateTime"
    sequence = h.base_sequence + (record.offset - h.base_offset) if h.base_sequence >= 0 else -1
    key_size = -1 if record.key is None else len(record.key)
    value_size = -1 if record.value is None else len(record.value)
    header_keys = ",".join(k for k, _v in record.headers)
    return (f"| offset: {record.offset} {time_type}: {record.timestamp} keySize: {key_size} "
            f"valueSize: {value_size} sequence: {sequence} headerKeys: [{header_keys}] "
            f"key: {_text(record.key)} payload: {_text(record.value)}")


def _text(data: bytes | None) -> str:
    return "null" if data is None else data.decode("utf-8", "backslashreplace")


def _dump_txn_index(path: Path) -> None:
    data = path.read_bytes()
    for version, producer_id, first, last, lso in _TXN_INDEX.iter_unpack(data[:len(data) - len(data) % _TXN_INDEX.size]):
        print(f"version: {version} producerId: {producer_id} firstOffset: {first} lastOffset: {last} "
              f"lastStableOffset: {lso}")


def _dump_index(path: Path, base: int, entry: struct.Struct, line) -> None:
    data = path.read_bytes()
    usable = len(data) - len(data) % entry.size
    for a, b in entry.iter_unpack(data[:usable]):
        if a == 0 and b == 0:   # preallocated, unused tail
            break
        print(line(a, b))
