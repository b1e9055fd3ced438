"""Helpers for the transactional compaction and retention tests: transactional writes into
a cleaner Env, and what read_committed / read_uncommitted consumers would receive."""

from __future__ import annotations

from kavka.log.partition_log import PartitionLog
from kavka.protocol import records
from kavka.protocol.control_records import read_marker
from kavka.protocol.record_codec import decode_records, encode_batch


class Crash(Exception):
    """Raised by :func:`crash_cleaning_at`'s hook: a kill -9 at that step."""


def crash_cleaning_at(cleaner, step: str) -> None:
    """Run one cleaning that stops dead at ``step`` (nothing closed or flushed after it)."""

    def hook(name):
        if name == step:
            raise Crash(name)

    try:
        cleaner.clean_once(hook=hook)
    except Crash:
        return
    raise AssertionError(f"the cleaning had no {step!r} step")


class Txns:
    """Transactional producers writing into one Partition, with their sequences."""

    def __init__(self, env) -> None:
        self.env = env
        self.seq: dict[int, int] = {}
        self.epoch: dict[int, int] = {}

    def write(self, pid: int, *pairs) -> None:
        """One transactional batch of (key, value) pairs from producer ``pid``."""
        now = self.env.clock.now_ms()
        seq = self.seq.get(pid, 0)
        batch = encode_batch([(k, v, now, ()) for k, v in pairs], producer_id=pid,
                             producer_epoch=self.epoch.get(pid, 0), base_sequence=seq, transactional=True)
        self.env.partition.append_records(bytearray(batch), 9, now)
        self.seq[pid] = seq + len(pairs)

    def end(self, pid: int, commit: bool, bump: bool = False) -> int:
        """The marker of ``pid``'s transaction; ``bump``: with the next epoch (transactions V2)."""
        epoch = self.epoch.get(pid, 0) + (1 if bump else 0)
        offset = self.env.partition.append_marker(pid, epoch, commit=commit, coordinator_epoch=0,
                                                  now_ms=self.env.clock.now_ms(),
                                                  transaction_version=2 if bump else 0)
        if bump:
            self.epoch[pid], self.seq[pid] = epoch, 0
        return offset


def stored_batches(plog: PartitionLog) -> list[tuple[records.BatchHeader, bytes]]:
    data = b"".join(s.read() for s in plog.read(plog.log_start_offset, 1 << 30).slices)
    return [(h, data[pos:pos + h.size]) for pos, h in records.iter_batches(data)]


def markers(plog: PartitionLog) -> list[tuple[int, int, bool, bool]]:
    """(offset, producer id, commit, delete horizon stamped) of every control batch holding a marker."""
    out = []
    for header, raw in stored_batches(plog):
        if header.is_control:
            marker = read_marker(raw)
            if marker is not None:
                out.append((header.base_offset, header.producer_id, marker.commit,
                            bool(header.attributes & records.ATTR_DELETE_HORIZON)))
    return out


def read_uncommitted(plog: PartitionLog) -> list[tuple[int, bytes, bytes | None]]:
    """(offset, key, value) of every data record up to the high watermark."""
    out = []
    for header, raw in stored_batches(plog):
        if not header.is_control:
            out += [(r.offset, r.key, r.value) for r in decode_records(raw)]
    return out


def read_committed(plog: PartitionLog) -> list[tuple[int, bytes, bytes | None]]:
    """What a read_committed consumer gets, by the Java consumer's algorithm: records below the
    LSO, skipping the batches of each producer in the answered aborted_transactions from the
    entry's first offset to that producer's next ABORT marker."""
    lso = plog.last_stable_offset
    read = plog.read(plog.log_start_offset, 1 << 30, max_offset=lso)
    data = b"".join(s.read() for s in read.slices)
    pending = sorted(plog.aborted_transactions(plog.log_start_offset, read.upper_bound), key=lambda t: t[1])
    aborting: set[int] = set()
    out = []
    for pos, header in records.iter_batches(data):
        while pending and pending[0][1] <= header.last_offset:
            aborting.add(pending.pop(0)[0])
        raw = data[pos:pos + header.size]
        if header.is_control:
            marker = read_marker(raw)
            if marker is not None and not marker.commit:
                aborting.discard(header.producer_id)
            continue
        if header.is_transactional and header.producer_id in aborting:
            continue
        out += [(r.offset, r.key, r.value) for r in decode_records(raw) if r.offset < lso]
    return out
