"""Idempotent-producer state of one partition (Kafka's ProducerStateManager, simplified).

Theory of operation
-------------------
An idempotent producer stamps each batch with (producerId, producerEpoch,
baseSequence); sequences count records per partition and wrap from 2**31-1 to
0.  For every producer id this partition keeps its epoch and the metadata of
its last five appended batches (a client has at most five requests in flight
per partition, so a retry can only repeat one of those five)::

    producer id -> epoch, deque[<=5] of (first seq, last seq, first offset,
                                         last offset, max timestamp, LogAppendTime?)

Before an append, :meth:`ProducerState.check` decides, in Kafka's order:

    incoming batch                               outcome
    -------------------------------------------  -----------------------------------------
    no producer id                               append (not idempotent)
    producer unknown here                        append, any sequence (KIP-360: the state
                                                 may have been removed with old segments)
    epoch < known epoch                          InvalidProducerEpoch (a zombie instance)
    epoch == known, seq range of a kept batch    duplicate: the original offsets, no write
    epoch == known, first seq == last seq + 1    append
    epoch == known, anything else                OutOfOrderSequence
    epoch > known, first seq == 0                append; the kept batches are dropped
    epoch > known, first seq != 0                OutOfOrderSequence

After the append, :meth:`ProducerState.update` records the batch with its
assigned offsets.  Replaying the log through ``update`` yields the same state
as live appends did: rebuilding and live handling are one code path.

Snapshots
---------
Replaying a whole log at start-up is slow, so the state is written to
``<partition dir>/<20-digit offset>.snapshot`` when a segment rolls and at a
clean close.  The file name's offset is the log end offset the state covers
(every batch below it is included).  The file is ASCII JSON, written with
``checkpoint.write_atomically`` (temp file, fsync, rename, fsync of the
directory), so a reader sees either the old or the new file::

    {"format": 1,
     "offset": <int, = the file name's offset>,
     "producers": [{"id": <int>, "epoch": <int>,
                    "batches": [[first_seq, last_seq, first_offset,
                                 last_offset, max_timestamp, log_append_time], ...]}, ...]}

Loading (:meth:`ProducerState.load`):

1. delete snapshots above the log end offset: they describe batches lost in
   a truncation or an unclean shutdown;
2. read the newest remaining snapshot; an unreadable one is deleted and the
   next older is tried, down to "none" (state empty, offset 0);
3. replay the batch headers from that offset (or the log start offset, if
   retention removed the segments in between) to the log end.

After a crash the log itself has already been recovered (torn tail cut) when
we load, so the replay sees exactly the batches that survived.  Only the two
newest snapshots are kept; older ones only shorten a replay after a truncation
below both, which the full replay also handles.

Expiry
------
As in Kafka, a producer is forgotten (:meth:`ProducerState.remove_expired`)
once ``producer.id.expiration.ms`` (1 day) has passed since the maxTimestamp
of its last batch, checked every ``producer.id.expiration.check.interval.ms``
(10 minutes) by the broker.  Only expiry removes a producer: as in Kafka
since KIP-360, it outlives its batches when retention or DeleteRecords moves
the log start offset past them (dropping it then made slow producers on
short-retention topics fail with UNKNOWN_PRODUCER_ID).  The removed entries
are simply absent from the next snapshot.  A forgotten producer that writes again is "unknown
here" in the table above: its batch is appended whatever its sequence (Kafka
4.x accepts it too; UNKNOWN_PRODUCER_ID is no longer answered since KIP-360).
As in Kafka, the timestamp is the batch's, so with CreateTime it is the
client's clock: bounded ahead by ``message.timestamp.after.max.ms``, and a
producer that sends old timestamps expires at the next check.  Nothing caps
the number of producers a partition holds within the expiry time (Kafka has
no cap either; KIP-936 proposes a per-client rate).
"""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Protocol

from kavka.log.checkpoint import write_atomically
from kavka.log.errors import InvalidProducerEpoch, OutOfOrderSequence
from kavka.protocol.records import BatchHeader

log = logging.getLogger("kavka.log")

SNAPSHOT_SUFFIX = ".snapshot"
SNAPSHOT_FORMAT = 1
BATCHES_KEPT = 5  # the client's max.in.flight.requests.per.connection limit for idempotence
SNAPSHOTS_KEPT = 2
MAX_SEQUENCE = 2**31 - 1
NO_TIMESTAMP = -1


class LogView(Protocol):
    """What rebuilding needs from a PartitionLog."""

    log_start_offset: int
    log_end_offset: int

    def iter_batch_headers(self, from_offset: int = 0) -> Iterator[tuple[int, BatchHeader]]: ...


@dataclass(frozen=True, slots=True)
class BatchMetadata:
    """What a retry of this batch must be answered with."""

    first_seq: int
    last_seq: int
    first_offset: int
    last_offset: int
    timestamp: int  # the batch's maxTimestamp (the append time when log_append_time)
    log_append_time: bool

    @property
    def log_append_time_ms(self) -> int:
        """The produce response's logAppendTime: -1 unless the topic stamps append time."""
        return self.timestamp if self.log_append_time else NO_TIMESTAMP


@dataclass(slots=True)
class ProducerEntry:
    producer_id: int
    epoch: int
    batches: deque[BatchMetadata] = field(default_factory=lambda: deque(maxlen=BATCHES_KEPT))

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq

    @property
    def last_timestamp(self) -> int:
        """maxTimestamp of the last batch: what expiry counts from, as in Kafka."""
        return self.batches[-1].timestamp

    def find_duplicate(self, first_seq: int, last_seq: int) -> BatchMetadata | None:
        for batch in self.batches:
            if batch.first_seq == first_seq and batch.last_seq == last_seq:
                return batch
        return None


def in_sequence(last_seq: int, next_seq: int) -> bool:
    return next_seq == last_seq + 1 or (next_seq == 0 and last_seq == MAX_SEQUENCE)


def snapshot_path(directory: Path, offset: int) -> Path:
    return directory / f"{offset:020d}{SNAPSHOT_SUFFIX}"


class ProducerState:
    """Producer table of one partition, with its snapshots in ``directory``."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.producers: dict[int, ProducerEntry] = {}
        # Offset after the last batch this state has seen; a snapshot taken now covers it.
        self.end_offset = 0

    # -- the produce path ------------------------------------------------------------------

    def check(self, header: BatchHeader) -> BatchMetadata | None:
        """Judge an incoming batch against the table (see the module table).

        Returns the kept metadata of the batch it duplicates, or None to append.
        Raises InvalidProducerEpoch or OutOfOrderSequence.  Changes nothing.
        """
        if not header.has_producer_id:
            return None
        entry = self.producers.get(header.producer_id)
        if entry is None:
            return None
        epoch, first = header.producer_epoch, header.base_sequence
        if epoch < entry.epoch:
            raise InvalidProducerEpoch(
                f"producer {header.producer_id} sent epoch {epoch}, older than its current epoch {entry.epoch}"
            )
        if epoch > entry.epoch:
            if first != 0:
                raise OutOfOrderSequence(
                    f"producer {header.producer_id}'s new epoch {epoch} must start at sequence 0, not {first}"
                )
            return None
        duplicate = entry.find_duplicate(first, header.last_sequence)
        if duplicate is not None:
            return duplicate
        if not in_sequence(entry.last_seq, first):
            raise OutOfOrderSequence(
                f"producer {header.producer_id} sent sequence {first}, expected {(entry.last_seq + 1) % 2**31}"
            )
        return None

    # -- expiry ----------------------------------------------------------------------------

    def remove_expired(self, now_ms: int, expiration_ms: int) -> int:
        """Forget producers whose last batch is ``expiration_ms`` old; how many went."""
        expired = [pid for pid, entry in self.producers.items()
                   if now_ms - entry.last_timestamp >= expiration_ms]
        for pid in expired:
            del self.producers[pid]
        return len(expired)

    def update(self, header: BatchHeader) -> None:
        """Record a batch as written, with its assigned offsets and final maxTimestamp.

        Used for live appends and for replay alike, so it validates nothing.
        """
        self.end_offset = max(self.end_offset, header.next_offset)
        if not header.has_producer_id:
            return
        entry = self.producers.get(header.producer_id)
        if entry is None or entry.epoch != header.producer_epoch:
            # A new epoch starts a fresh window: retries of the old epoch are fenced anyway.
            entry = ProducerEntry(header.producer_id, header.producer_epoch)
            self.producers[header.producer_id] = entry
        entry.batches.append(BatchMetadata(
            header.base_sequence, header.last_sequence, header.base_offset, header.last_offset,
            header.max_timestamp, header.log_append_time,
        ))

    # -- rebuilding ------------------------------------------------------------------------

    def load(self, log_view: LogView) -> None:
        """Rebuild from the newest usable snapshot plus a replay of the log after it."""
        self.producers = {}
        self.end_offset = 0
        leo = log_view.log_end_offset
        for leftover in self.directory.glob("*" + SNAPSHOT_SUFFIX + ".tmp"):
            leftover.unlink()  # a snapshot write interrupted by a crash
        for offset in self.snapshot_offsets():
            if offset > leo:
                log.info("deleting producer snapshot %d above log end offset %d", offset, leo)
                self._delete_snapshot(offset)
        for offset in reversed(self.snapshot_offsets()):
            if self._read_snapshot(offset):
                break
            self._delete_snapshot(offset)
        start = max(self.end_offset, log_view.log_start_offset)
        self.end_offset = start
        self.replay(log_view.iter_batch_headers(start), start)

    def replay(self, headers: Iterable[tuple[int, BatchHeader]], from_offset: int = 0) -> None:
        for _pos, header in headers:
            if header.last_offset >= from_offset:
                self.update(header)

    # -- snapshots -------------------------------------------------------------------------

    def write_snapshot(self, offset: int | None = None) -> Path:
        """Persist the table as covering everything below ``offset`` (default: end_offset)."""
        offset = self.end_offset if offset is None else offset
        body = {"format": SNAPSHOT_FORMAT, "offset": offset, "producers": [
            {"id": e.producer_id, "epoch": e.epoch, "batches": [
                [b.first_seq, b.last_seq, b.first_offset, b.last_offset, b.timestamp, b.log_append_time]
                for b in e.batches]}
            for e in self.producers.values()]}
        path = snapshot_path(self.directory, offset)
        write_atomically(path, json.dumps(body, separators=(",", ":")))
        for old in self.snapshot_offsets()[:-SNAPSHOTS_KEPT]:
            self._delete_snapshot(old)
        return path

    def snapshot_offsets(self) -> list[int]:
        """Offsets of the snapshot files present, ascending."""
        offsets = []
        for path in self.directory.glob("*" + SNAPSHOT_SUFFIX):
            stem = path.name[: -len(SNAPSHOT_SUFFIX)]
            if stem.isdigit():
                offsets.append(int(stem))
        return sorted(offsets)

    def _read_snapshot(self, offset: int) -> bool:
        path = snapshot_path(self.directory, offset)
        try:
            body = json.loads(path.read_bytes())
            if body["format"] != SNAPSHOT_FORMAT or body["offset"] != offset:
                raise ValueError(f"format {body['format']}, offset {body['offset']}")
            producers = {p["id"]: _entry_from_json(p) for p in body["producers"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable producer snapshot %s: %s", path, exc)
            return False
        self.producers = producers
        self.end_offset = offset
        return True

    def _delete_snapshot(self, offset: int) -> None:
        snapshot_path(self.directory, offset).unlink(missing_ok=True)


def _entry_from_json(item: dict) -> ProducerEntry:
    entry = ProducerEntry(int(item["id"]), int(item["epoch"]))
    for first_seq, last_seq, first_offset, last_offset, timestamp, lat in item["batches"]:
        entry.batches.append(BatchMetadata(first_seq, last_seq, first_offset, last_offset, timestamp, bool(lat)))
    if not entry.batches:
        raise ValueError(f"producer {entry.producer_id} has no batches")
    return entry
