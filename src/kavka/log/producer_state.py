"""Idempotent and transactional producer state of one partition (Kafka's ProducerStateManager, simplified).

Theory of operation
-------------------
An idempotent producer stamps each batch with (producerId, producerEpoch,
baseSequence); sequences count records per partition and wrap from 2**31-1 to
0.  For every producer id this partition keeps its epoch and the metadata of
its last five appended batches (a client has at most five requests in flight
per partition, so a retry can only repeat one of those five)::

    producer id -> epoch, deque[<=5] of (first seq, last seq, first offset,
                                         last offset, max timestamp, LogAppendTime?),
                   coordinator epoch, first offset of its open transaction (-1: none),
                   timestamp of its last batch or marker

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

A transactional batch (attributes bit 4) is judged the same way; then, as in
Kafka's ``ProducerAppendInfo``, a non-transactional batch from a producer whose
transaction is open here is refused with InvalidTxnState.

After the append, :meth:`ProducerState.update` records the batch with its
assigned offsets.  Replaying the log through ``update`` yields the same state
as live appends did: rebuilding and live handling are one code path.

Transactions (KIP-98)
---------------------
A producer's first transactional batch opens its transaction at that batch's
offset; a marker (a control batch, kavka.protocol.control_records) closes it
and, when the transaction wrote here, yields a :class:`CompletedTxn`.  Before a
marker is written, :meth:`ProducerState.check_marker` applies Kafka's rules:

    marker                                       outcome
    -------------------------------------------  -----------------------------------------
    epoch < producer's (transaction version 0/1) InvalidProducerEpoch
    epoch <= producer's (version 2, KIP-890)     InvalidProducerEpoch, except epoch ==
                                                 and no open transaction: a retry, written
    coordinator epoch < the producer's last      TransactionCoordinatorFenced
    anything else                                written; a new epoch drops the kept batches

The first unstable offset, which bounds the last stable offset (LSO), is the
smallest first offset of the open transactions and of the completed ones whose
marker is not below the high watermark yet (a follower may still lose it):
:meth:`ProducerState.first_unstable_offset`.

Verification (KIP-890)
----------------------
Before a producer's first transactional batch in this partition (no transaction
of it open here), the partition leader asks the transaction coordinator whether
the partition is in the producer's ongoing transaction.  While it waits, the
producer has a :class:`VerificationEntry` here holding a fresh
:class:`VerificationGuard`; the append that follows a positive answer must
bring that very guard (Kafka's VerificationGuard).  Any batch or marker of the
producer written meanwhile removes the entry, so an answer that arrives after
an abort marker (or after a newer verification began) names a guard that is no
longer here, and the batch is refused with InvalidTxnState: a late write of an
ended transaction cannot open a transaction the coordinator does not know,
which would hold the LSO back for ever (a *hanging transaction*).  The entry
also keeps the lowest sequence seen while verifying: a batch with a higher one
is OutOfOrderSequence until the lowest is written, as in Kafka.  Entries are
not snapshotted.  One whose verification the coordinator refused for good (the
producer must abort) goes at once (:meth:`ProducerState.end_verification`; Kafka
keeps it until expiry); one left by a verification that never completed, or
failed with a retriable error, is removed after ``producer.id.expiration.ms`` by
:meth:`ProducerState.remove_expired`.  So the table holds at most the producers
whose verification is in flight or was retriably refused within that time.

Snapshots
---------
Replaying a whole log at start-up is slow, so the state is written to
``<partition dir>/<20-digit offset>.snapshot`` when a segment rolls and at a
clean close.  The file name's offset is the log end offset the state covers
(every batch below it is included).  The file is ASCII JSON, written with
``checkpoint.write_atomically`` (temp file, fsync, rename, fsync of the
directory), so a reader sees either the old or the new file::

    {"format": 2,
     "offset": <int, = the file name's offset>,
     "producers": [{"id": <int>, "epoch": <int>,
                    "batches": [[first_seq, last_seq, first_offset,
                                 last_offset, max_timestamp, log_append_time], ...],
                    "coordinator_epoch": <int>, "txn_first_offset": <int, -1: none>,
                    "last_timestamp": <int>}, ...]}

Format 1 (before transactions) is still read: its producers have no open
transaction.  Completed transactions above the high watermark are not kept
(nor are they in Kafka's snapshots).

Loading (:meth:`ProducerState.load`):

1. delete snapshots above the log end offset: they describe batches lost in
   a truncation or an unclean shutdown;
2. read the newest remaining snapshot (at or below ``at_most`` when the
   partition must replay from there: kavka.log.partition); an unreadable one is deleted and the
   next older is tried, down to "none" (state empty, offset 0).  A snapshot below
   the first segment's base offset is deleted too, as Kafka deletes those below
   the log start: the batches after it are gone, and a transaction open in it may
   have ended in them (kept open, it would hold the LSO down for ever);
3. replay the batch headers from that offset (or the first segment's base, when
   there is no snapshot) to the log end.  The batches below the log start offset
   that are still stored (DeleteRecords moved it into a segment) are replayed too:
   a marker among them still closes its transaction.

After a crash the log itself has already been recovered (torn tail cut) when
we load, so the replay sees exactly the batches that survived.  Only the two
newest snapshots are kept; older ones only shorten a replay after a truncation
below both, which the full replay also handles.

Expiry
------
As in Kafka, a producer is forgotten (:meth:`ProducerState.remove_expired`)
once ``producer.id.expiration.ms`` (1 day) has passed since the maxTimestamp
of its last batch (or marker), unless its transaction is open, checked every
``producer.id.expiration.check.interval.ms`` (10 minutes) by the broker and
when the log manager opens the partition (as Kafka skips expired producers when
it loads a snapshot, so a restart does not bring them back); the expiration is
read at each check (dynamic, KIP-854).  Only expiry removes a producer: as in Kafka
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
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Protocol

from kavka.log.checkpoint import write_atomically
from kavka.log.errors import InvalidProducerEpoch, InvalidTxnState, OutOfOrderSequence, TransactionCoordinatorFenced
from kavka.protocol.control_records import EndTxnMarker
from kavka.protocol.records import BatchHeader

log = logging.getLogger("kavka.log")

SNAPSHOT_SUFFIX = ".snapshot"
SNAPSHOT_FORMAT = 2
READABLE_FORMATS = (1, 2)
BATCHES_KEPT = 5  # the client's max.in.flight.requests.per.connection limit for idempotence
SNAPSHOTS_KEPT = 2
MAX_SEQUENCE = 2**31 - 1
NO_TIMESTAMP = -1
NO_OFFSET = -1
NO_EPOCH = -1


Replayed = tuple[BatchHeader, "EndTxnMarker | None"]  # a batch, and its marker if it is one


class LogView(Protocol):
    """What rebuilding needs from a PartitionLog."""

    log_start_offset: int
    log_end_offset: int
    first_stored_offset: int  # base offset of the first segment (at most the log start offset)

    def iter_replay(self, from_offset: int) -> Iterator[Replayed]: ...


@dataclass(frozen=True, slots=True)
class CompletedTxn:
    """A transaction a marker closed in this partition (Kafka's CompletedTxn)."""

    producer_id: int
    first_offset: int
    last_offset: int  # the marker's offset
    aborted: bool


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
    coordinator_epoch: int = NO_EPOCH
    txn_first_offset: int = NO_OFFSET  # first offset of the open transaction, -1 when none
    # maxTimestamp of the last batch or marker: what expiry counts from, as in Kafka.
    last_timestamp: int = NO_TIMESTAMP

    @property
    def last_seq(self) -> int:
        """Sequence of the last kept batch; -1 when none (after a marker's epoch bump),
        so that the next batch must start at 0, as in Kafka."""
        return self.batches[-1].last_seq if self.batches else -1

    @property
    def in_transaction(self) -> bool:
        return self.txn_first_offset != NO_OFFSET

    def set_epoch(self, epoch: int) -> None:
        """A new epoch starts a fresh window: retries of the old epoch are fenced anyway."""
        if epoch != self.epoch:
            self.batches.clear()
            self.epoch = epoch

    def find_duplicate(self, first_seq: int, last_seq: int) -> BatchMetadata | None:
        for batch in self.batches:
            if batch.first_seq == first_seq and batch.last_seq == last_seq:
                return batch
        return None


class VerificationGuard:
    """One verification of one producer's transaction in one partition (Kafka's VerificationGuard):
    an identity, never equal to another guard, so a stale answer cannot pass for a fresh one."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"VerificationGuard({id(self):#x})"


# "Verification is in use, and this append brings no guard": a transactional batch that does not
# continue an open transaction is refused.  (``None`` means verification is off.)
NO_GUARD = VerificationGuard()


@dataclass(slots=True)
class VerificationEntry:
    """A producer being verified here (Kafka's VerificationStateEntry)."""

    guard: VerificationGuard
    created_ms: int
    lowest_seq: int
    epoch: int

    def saw(self, sequence: int, epoch: int) -> None:
        """Keep the lowest sequence of the current epoch; a newer epoch starts again."""
        if epoch == self.epoch and sequence < self.lowest_seq:
            self.lowest_seq = sequence
        elif epoch > self.epoch:
            self.epoch, self.lowest_seq = epoch, sequence


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
        self.ongoing: dict[int, int] = {}  # producer id -> first offset of its open transaction
        self.unreplicated: list[CompletedTxn] = []  # completed, marker maybe above the HW
        self.verifying: dict[int, VerificationEntry] = {}  # producer id -> its verification (KIP-890)

    # -- the produce path ------------------------------------------------------------------

    def check(self, header: BatchHeader) -> BatchMetadata | None:
        """Judge an incoming data batch against the table (see the module table).

        Returns the kept metadata of the batch it duplicates, or None to append.
        Raises InvalidProducerEpoch, OutOfOrderSequence or InvalidTxnState.  Changes nothing.
        """
        if not header.has_producer_id:
            return None
        epoch, first = header.producer_epoch, header.base_sequence
        entry = self.producers.get(header.producer_id)
        if entry is None:
            self._check_verifying(header)
            return None
        if epoch < entry.epoch:
            raise InvalidProducerEpoch(
                f"producer {header.producer_id} sent epoch {epoch}, older than its current epoch {entry.epoch}"
            )
        if epoch > entry.epoch:
            if first != 0:
                raise OutOfOrderSequence(
                    f"producer {header.producer_id}'s new epoch {epoch} must start at sequence 0, not {first}"
                )
        else:
            duplicate = entry.find_duplicate(first, header.last_sequence)
            if duplicate is not None:
                return duplicate
            if not in_sequence(entry.last_seq, first):
                raise OutOfOrderSequence(
                    f"producer {header.producer_id} sent sequence {first}, expected {(entry.last_seq + 1) % 2**31}"
                )
        self._check_verifying(header)
        if entry.in_transaction and not header.is_transactional:
            raise InvalidTxnState(
                f"producer {header.producer_id} sent a non-transactional batch while its transaction "
                f"from offset {entry.txn_first_offset} is open"
            )
        return None

    def _check_verifying(self, header: BatchHeader) -> None:
        """While a lower sequence of the producer is being verified, a higher one must wait
        (Kafka's VerificationStateEntry.lowestSequence): it would be out of order once that
        one is written."""
        verifying = self.verifying.get(header.producer_id)
        if verifying is not None and header.base_sequence > verifying.lowest_seq:
            raise OutOfOrderSequence(
                f"producer {header.producer_id} sent sequence {header.base_sequence} while sequence "
                f"{verifying.lowest_seq} is being verified"
            )

    def check_marker(self, producer_id: int, producer_epoch: int, marker: EndTxnMarker,
                     transaction_version: int = 0) -> None:
        """Judge a transaction marker about to be written (see the module table).

        Raises InvalidProducerEpoch or TransactionCoordinatorFenced.  Changes nothing.
        """
        entry = self.producers.get(producer_id)
        current = NO_EPOCH if entry is None else entry.epoch
        stale = producer_epoch <= current if transaction_version >= 2 else producer_epoch < current
        retry = (transaction_version >= 2 and entry is not None and producer_epoch == current
                 and not entry.in_transaction)
        if stale and not retry:
            raise InvalidProducerEpoch(
                f"marker for producer {producer_id} has epoch {producer_epoch}, which is "
                f"{'<=' if transaction_version >= 2 else '<'} its current epoch {current} "
                f"(transaction version {transaction_version})"
            )
        if entry is not None and entry.coordinator_epoch > marker.coordinator_epoch:
            raise TransactionCoordinatorFenced(
                f"marker for producer {producer_id} has coordinator epoch {marker.coordinator_epoch}, "
                f"older than {entry.coordinator_epoch}"
            )

    # -- verification (KIP-890) ------------------------------------------------------------

    def in_transaction(self, producer_id: int, epoch: int) -> bool:
        """Whether the producer's transaction of ``epoch`` is open here.  One of an older epoch
        is not: with transactions V2 the producer has its next epoch before the marker of its
        last transaction arrives, and its next transaction must not join the last one here
        (Kafka's hasOngoingTransaction(producerId, producerEpoch))."""
        entry = self.producers.get(producer_id)
        return entry is not None and entry.in_transaction and entry.epoch == epoch

    def start_verification(self, producer_id: int, sequence: int, epoch: int,
                           now_ms: int) -> VerificationGuard | None:
        """The guard an append of this producer's transactional batch must bring, created (or
        reused, while a verification is pending) now; None when its transaction of this epoch
        is open here already, which needs no verification."""
        if self.in_transaction(producer_id, epoch):
            return None
        entry = self.verifying.get(producer_id)
        if entry is None:
            entry = self.verifying[producer_id] = VerificationEntry(VerificationGuard(), now_ms, sequence, epoch)
        else:
            entry.saw(sequence, epoch)
        return entry.guard

    def check_verified(self, header: BatchHeader, guard: VerificationGuard | None) -> None:
        """Refuse (InvalidTxnState) a transactional batch that neither continues this producer's
        open transaction of its epoch nor brings the guard of its current verification;
        ``guard`` None: verification is off.  Changes nothing."""
        if (guard is None or not header.is_transactional
                or self.in_transaction(header.producer_id, header.producer_epoch)):
            return
        entry = self.verifying.get(header.producer_id)
        if guard is NO_GUARD or entry is None or entry.guard is not guard:
            raise InvalidTxnState("Record was not part of an ongoing transaction")

    def end_verification(self, producer_id: int, guard: VerificationGuard) -> None:
        """The coordinator refused the verification of ``guard`` for good: forget it, unless
        a newer verification replaced it already."""
        entry = self.verifying.get(producer_id)
        if entry is not None and entry.guard is guard:
            del self.verifying[producer_id]

    # -- transactions ----------------------------------------------------------------------

    def first_unstable_offset(self, high_watermark: int) -> int | None:
        """The smallest first offset of an open transaction or of a completed one whose
        marker is not below ``high_watermark``; None when there is none."""
        if not self.unreplicated:  # the usual case (a lone broker's HW is its LEO): no list
            return min(self.ongoing.values()) if self.ongoing else None
        self.unreplicated = [t for t in self.unreplicated if t.last_offset >= high_watermark]
        firsts = [t.first_offset for t in self.unreplicated] + list(self.ongoing.values())
        return min(firsts) if firsts else None

    def last_stable_offset_after(self, completed: CompletedTxn) -> int:
        """The LSO once ``completed`` is done, as its .txnindex entry records it (Kafka's
        ProducerStateManager.lastStableOffset): the first offset of the earliest other
        open transaction, else the offset after the marker.  Call after :meth:`update`."""
        return min(self.ongoing.values(), default=completed.last_offset + 1)

    # -- expiry ----------------------------------------------------------------------------

    def remove_expired(self, now_ms: int, expiration_ms: int) -> int:
        """Forget producers whose last batch is ``expiration_ms`` old and whose transaction
        is not open; how many went."""
        expired = [pid for pid, entry in self.producers.items()
                   if not entry.in_transaction and now_ms - entry.last_timestamp >= expiration_ms]
        for pid in expired:
            del self.producers[pid]
        self.verifying = {pid: entry for pid, entry in self.verifying.items()
                          if now_ms - entry.created_ms < expiration_ms}
        return len(expired)

    def update(self, header: BatchHeader, marker: EndTxnMarker | None = None) -> CompletedTxn | None:
        """Record a batch as written, with its assigned offsets and final maxTimestamp;
        ``marker``: what a control batch says (None for data, or a control batch that holds
        no marker).  Returns the transaction a marker completed, if it wrote here.

        Used for live appends, follower appends and replay alike, so it validates nothing.
        """
        self.end_offset = max(self.end_offset, header.next_offset)
        if not header.has_producer_id:
            return None
        pid = header.producer_id
        self.verifying.pop(pid, None)  # written: the transaction is open here, or ended
        entry = self.producers.get(pid)
        if entry is None:
            entry = self.producers[pid] = ProducerEntry(pid, header.producer_epoch)
        if header.is_control:
            return self._end_transaction(entry, header, marker)
        entry.set_epoch(header.producer_epoch)
        entry.batches.append(BatchMetadata(
            header.base_sequence, header.last_sequence, header.base_offset, header.last_offset,
            header.max_timestamp, header.log_append_time,
        ))
        entry.last_timestamp = header.max_timestamp
        if header.is_transactional and not entry.in_transaction:
            entry.txn_first_offset = self.ongoing[pid] = header.base_offset
        return None

    def _end_transaction(self, entry: ProducerEntry, header: BatchHeader,
                         marker: EndTxnMarker | None) -> CompletedTxn | None:
        if marker is None:  # emptied by compaction (kavka.log.txn_cleaning): its epoch still counts
            entry.set_epoch(header.producer_epoch)
            entry.last_timestamp = header.max_timestamp
            return None
        completed = None
        if entry.in_transaction:
            completed = CompletedTxn(entry.producer_id, entry.txn_first_offset, header.base_offset,
                                     aborted=not marker.commit)
            del self.ongoing[entry.producer_id]
            self.unreplicated.append(completed)
        entry.set_epoch(header.producer_epoch)
        entry.coordinator_epoch = marker.coordinator_epoch
        entry.txn_first_offset = NO_OFFSET
        entry.last_timestamp = header.max_timestamp
        return completed

    # -- rebuilding ------------------------------------------------------------------------

    def load(self, log_view: LogView, at_most: int | None = None) -> list[CompletedTxn]:
        """Rebuild from the newest usable snapshot (at or below ``at_most``) plus a replay of
        the log after it; returns the transactions completed in the replay."""
        start = self.restore(log_view, at_most)
        return self.replay(log_view.iter_replay(start), start)

    def restore(self, log_view: LogView, at_most: int | None = None) -> int:
        """Steps 1 and 2 of loading (module doc): the state of the newest usable snapshot at
        or below ``at_most``; returns the offset the replay must start from."""
        self.producers, self.ongoing, self.unreplicated = {}, {}, []
        self.end_offset = 0
        leo = log_view.log_end_offset
        names = self._listing()
        for name in names:
            if name.endswith(SNAPSHOT_SUFFIX + ".tmp"):
                (self.directory / name).unlink()  # a snapshot write interrupted by a crash
        for offset in self.snapshot_offsets(names):
            if offset > leo:
                log.info("deleting producer snapshot %d above log end offset %d", offset, leo)
                self._delete_snapshot(offset)
        stored = log_view.first_stored_offset
        for offset in reversed([o for o in self.snapshot_offsets(names) if o <= leo]):
            if at_most is not None and offset > at_most:
                continue
            if offset < stored:
                log.info("deleting producer snapshot %d below the first stored offset %d", offset, stored)
            elif self._read_snapshot(offset):
                break
            self._delete_snapshot(offset)
        start = max(self.end_offset, stored)
        self.end_offset = start
        return start

    def replay(self, batches: Iterable[Replayed], from_offset: int = 0) -> list[CompletedTxn]:
        completed = []
        for header, marker in batches:
            if header.last_offset >= from_offset:
                done = self.update(header, marker)
                if done is not None:
                    completed.append(done)
        return completed

    # -- snapshots -------------------------------------------------------------------------

    def write_snapshot(self, offset: int | None = None) -> Path:
        """Persist the table as covering everything below ``offset`` (default: end_offset)."""
        offset = self.end_offset if offset is None else offset
        body = {"format": SNAPSHOT_FORMAT, "offset": offset, "producers": [
            {"id": e.producer_id, "epoch": e.epoch, "batches": [
                [b.first_seq, b.last_seq, b.first_offset, b.last_offset, b.timestamp, b.log_append_time]
                for b in e.batches],
             "coordinator_epoch": e.coordinator_epoch, "txn_first_offset": e.txn_first_offset,
             "last_timestamp": e.last_timestamp}
            for e in self.producers.values()]}
        path = snapshot_path(self.directory, offset)
        write_atomically(path, json.dumps(body, separators=(",", ":")))
        for old in self.snapshot_offsets()[:-SNAPSHOTS_KEPT]:
            self._delete_snapshot(old)
        return path

    def snapshot_offsets(self, names: list[str] | None = None) -> list[int]:
        """Offsets of the snapshot files present (among ``names``, a listing of the
        directory at most as old as the last snapshot deleted), ascending."""
        offsets = []
        for name in self._listing() if names is None else names:
            stem = name[: -len(SNAPSHOT_SUFFIX)]
            if name.endswith(SNAPSHOT_SUFFIX) and stem.isdigit():
                offsets.append(int(stem))
        return sorted(offsets)

    def _listing(self) -> list[str]:
        try:
            return os.listdir(self.directory)
        except FileNotFoundError:
            return []

    def _read_snapshot(self, offset: int) -> bool:
        path = snapshot_path(self.directory, offset)
        try:
            body = json.loads(path.read_bytes())
            if body["format"] not in READABLE_FORMATS or body["offset"] != offset:
                raise ValueError(f"format {body['format']}, offset {body['offset']}")
            producers = {p["id"]: _entry_from_json(p) for p in body["producers"]}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring unreadable producer snapshot %s: %s", path, exc)
            return False
        self.producers = producers
        self.ongoing = {pid: e.txn_first_offset for pid, e in producers.items() if e.in_transaction}
        self.end_offset = offset
        return True

    def _delete_snapshot(self, offset: int) -> None:
        snapshot_path(self.directory, offset).unlink(missing_ok=True)


def _entry_from_json(item: dict) -> ProducerEntry:
    entry = ProducerEntry(int(item["id"]), int(item["epoch"]))
    for first_seq, last_seq, first_offset, last_offset, timestamp, lat in item["batches"]:
        entry.batches.append(BatchMetadata(first_seq, last_seq, first_offset, last_offset, timestamp, bool(lat)))
    if "last_timestamp" not in item:  # format 1: every producer had batches, and no transaction
        if not entry.batches:
            raise ValueError(f"producer {entry.producer_id} has no batches")
        entry.last_timestamp = entry.batches[-1].timestamp
        return entry
    entry.coordinator_epoch = int(item["coordinator_epoch"])
    entry.txn_first_offset = int(item["txn_first_offset"])
    entry.last_timestamp = int(item["last_timestamp"])
    return entry
