"""``kavka produce TOPIC``: every input line becomes one record.

Lines come from stdin (or ``--file``), without their line ending.  With
``--key-separator SEP`` each line is split at its first SEP into key and
value.  ``--header NAME=VALUE`` adds the same header to every record.

Partitions are chosen like Kafka's default partitioner: a keyed record goes to
``murmur2(key) & 0x7fffffff % partitions`` (so kavka and the Java client agree
on where a key lives), records without a key go round-robin, and
``--partition`` sends everything to one partition.

Records are batched: one record batch per partition and many partitions per
ProduceRequest, sent when a batch reaches 512 KiB, when the pending records
reach 4 MiB, when the input pauses (someone typing) and at the end.  The count
of records written goes to stderr, with a progress line on a terminal for long
inputs.  If the topic does not exist and the broker creates topics on first
use, it is created (and the user told so).
"""

from __future__ import annotations

import os
import select
import sys
import time
from typing import Iterator

from kavka.cli.common import CliError, Progress, bootstrap_parent, parse_pairs, session
from kavka.client_session import PRODUCE, check

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
ACKS = {"0": 0, "1": 1, "all": -1, "-1": -1}
BATCH_BYTES = 512 * 1024
PENDING_BYTES = 4 * 1024 * 1024
LINGER = 0.05  # seconds of input silence after which pending records are sent
RECORD_OVERHEAD = 24  # rough bytes of framing per record, for the batch size estimate


def add_parser(commands) -> None:
    p = commands.add_parser("produce", parents=[bootstrap_parent()], help="write lines of input as records",
                            description="Write each line of stdin (or --file) as one record.")
    p.add_argument("topic")
    p.add_argument("-f", "--file", help="read lines from FILE instead of stdin")
    p.add_argument("-k", "--key-separator", metavar="SEP",
                   help="split each line at the first SEP into key and value (default: no keys)")
    p.add_argument("-p", "--partition", type=int, metavar="N", help="write every record to partition N")
    p.add_argument("-H", "--header", action="append", default=[], metavar="NAME=VALUE",
                   help="a header on every record (repeatable)")
    p.add_argument("-z", "--compression", choices=list(CODECS), default="none", help="compression codec")
    p.add_argument("--acks", choices=["0", "1", "all"], default="all",
                   help="0: do not wait, 1: the leader has it, all: every in-sync replica has it (default)")


# -- partitioning --------------------------------------------------------------------------

def murmur2(data: bytes) -> int:
    """32-bit MurmurHash2 with Kafka's seed (0x9747b28c), as an unsigned int."""
    m, mask = 0x5BD1E995, 0xFFFFFFFF
    length = len(data)
    h = (0x9747B28C ^ length) & mask
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & mask
        k ^= k >> 24
        k = (k * m) & mask
        h = ((h * m) & mask) ^ k
    tail = data[whole:]
    if tail:
        for shift, byte in enumerate(tail):
            h ^= byte << (8 * shift)
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h


def partition_for_key(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


# -- reading input -------------------------------------------------------------------------

def read_lines(fd: int, linger: float = LINGER) -> Iterator[bytes | None]:
    """Lines of ``fd`` without their line ending; ``None`` whenever the input pauses."""
    pending = b""
    while True:
        if not select.select([fd], [], [], linger)[0]:
            yield None
            select.select([fd], [], [])
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError as exc:
            raise CliError(f"cannot read the input: {exc.strerror or exc}") from None
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            yield line[:-1] if line.endswith(b"\r") else line
    if pending:
        yield pending[:-1] if pending.endswith(b"\r") else pending


# -- sending -------------------------------------------------------------------------------

class BatchingProducer:
    def __init__(self, s, topic, codec: int, acks: int, partition: int | None) -> None:
        self.s, self.topic, self.codec, self.acks = s, topic, codec, acks
        self.leaders = {p.partition_index: p.leader_id for p in topic.partitions}
        self.count = len(self.leaders)
        self.partition = partition
        self.round_robin = 0
        self.pending: dict[int, list[tuple]] = {}
        self.batch_bytes: dict[int, int] = {}
        self.pending_bytes = self.pending_count = 0
        self.written = 0
        self.touched: set[int] = set()

    def add(self, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        if self.partition is not None:
            index = self.partition
        elif key is not None:
            index = partition_for_key(key, self.count)
        else:
            index, self.round_robin = self.round_robin % self.count, self.round_robin + 1
        size = len(value) + len(key or b"") + sum(len(k) + len(v) for k, v in headers) + RECORD_OVERHEAD
        self.pending.setdefault(index, []).append((key, value, time.time_ns() // 1_000_000, headers))
        self.batch_bytes[index] = self.batch_bytes.get(index, 0) + size
        self.pending_bytes += size
        self.pending_count += 1
        if self.batch_bytes[index] >= BATCH_BYTES or self.pending_bytes >= PENDING_BYTES:
            self.flush()

    def flush(self) -> None:
        from kavka.protocol.record_codec import encode_batch
        if not self.pending:
            return
        by_leader: dict[int, dict[int, bytes]] = {}
        for index, records in self.pending.items():
            by_leader.setdefault(self.leaders[index], {})[index] = encode_batch(records, codec=self.codec)
        counts = {index: len(records) for index, records in self.pending.items()}
        self.pending, self.batch_bytes, self.pending_bytes, self.pending_count = {}, {}, 0, 0
        for leader, batches in by_leader.items():
            self._send(leader, batches, counts)

    def _send(self, leader: int, batches: dict[int, bytes], counts: dict[int, int]) -> None:
        import datetime
        q = self.s.builder(PRODUCE)
        response = self.s.request(q.ProduceRequest(
            transactional_id=None, acks=self.acks, timeout=datetime.timedelta(seconds=30),
            topic_data=(q.TopicProduceData(name=self.topic.name, partition_data=tuple(
                q.PartitionProduceData(index=i, records=b) for i, b in sorted(batches.items()))),)),
            self.s.leader(leader))
        results = [] if response is None else [p for t in response.responses for p in t.partition_responses]
        for p in results:
            if p.error_code:
                before = f"; {self.written} records were written before" if self.written else ""
                message = getattr(p, "error_message", None) or "the broker refused the records"
                check(p.error_code, f"{message} (partition {p.index}{before})", "")
        for index in batches:
            self.written += counts[index]
            self.touched.add(index)


def run(args) -> int:
    headers = [(k, v.encode()) for k, v in parse_pairs(args.header, "--header")]
    separator = args.key_separator.encode() if args.key_separator else None
    if separator == b"":
        raise CliError("--key-separator must not be empty")
    try:
        fd = os.open(args.file, os.O_RDONLY) if args.file else sys.stdin.fileno()
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    started = time.monotonic()
    with session(args) as s:
        topic = _topic(s, args.topic)
        producer = BatchingProducer(s, topic, CODECS[args.compression], ACKS[args.acks],
                                    _check_partition(topic, args.partition))
        progress = Progress()
        try:
            _produce(producer, read_lines(fd), separator, headers, progress)
        except KeyboardInterrupt:
            producer.flush()
            _report(producer, args, started, progress)
            return 130
        _report(producer, args, started, progress)
    return 0


def _topic(s, name: str):
    topic = s.find_topic(name)
    if topic is None:
        topic = s.find_topic(name, auto_create=True)
        if topic is None:
            raise CliError(f"UNKNOWN_TOPIC_OR_PARTITION: topic '{name}' does not exist "
                            f"(create it with: kavka topics create {name})")
        n = len(topic.partitions)
        print(f"Topic {name} did not exist; the broker created it with {n} partition{'s' * (n != 1)}.",
              file=sys.stderr)
    return topic


def _check_partition(topic, partition: int | None) -> int | None:
    count = len(topic.partitions)
    if partition is not None and not 0 <= partition < count:
        raise CliError(f"topic '{topic.name}' has partitions 0-{count - 1}; there is no partition {partition}")
    return partition


def _produce(producer: BatchingProducer, lines, separator: bytes | None, headers, progress: Progress) -> None:
    number = 0
    for line in lines:
        if line is None:
            producer.flush()
            continue
        number += 1
        key, value = None, line
        if separator is not None:
            key, found, value = line.partition(separator)
            if not found:
                producer.flush()
                raise CliError(f"line {number} has no key separator {separator.decode()!r}"
                                f" ({producer.written} records before it were written)")
        producer.add(key, value, headers)
        progress.update(f"{producer.written + producer.pending_count:,} records read, {producer.written:,} written")
    producer.flush()


def _report(producer: BatchingProducer, args, started: float, progress: Progress) -> None:
    progress.clear()
    n, touched = producer.written, len(producer.touched)
    verb = "Sent" if ACKS[args.acks] == 0 else "Wrote"
    where = f" ({touched} partition{'s' * (touched != 1)})" if touched > 1 else ""
    print(f"{verb} {n} record{'s' * (n != 1)} to {args.topic}{where} in {time.monotonic() - started:.2f} s.",
          file=sys.stderr)
