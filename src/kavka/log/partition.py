"""One partition as the api layer sees it: its log plus its producer table.

Every client write goes through :meth:`Partition.append_records`, in this order:
Kafka's produce-time validation (kavka.log.validator), the producer sequence
and transaction check (an exact retry is answered with its original offsets and
not written), the append, then the producer-state update.  Producer state is
snapshotted at each segment roll, so a restart replays at most one segment of
batch headers.

Transactions: the transaction coordinator ends a producer's transaction here
with :meth:`Partition.append_marker` (a control batch, kavka.protocol.control_records).
Every batch written, by a client, a marker, a follower copying its leader, or
replayed when the producer state is rebuilt, goes through one function,
``_apply``: it updates the producer table (and so the last stable offset,
``PartitionLog.last_stable_offset``) and adds the transactions an abort marker
completes to the segment's ``.txnindex`` (kavka.log.txn_index).  Rebuilding
(open, follower truncation) restores the newest producer snapshot at or below
the first segment whose ``.txnindex`` is not trusted (recovered after a crash,
or unreadable), drops the index entries from there and replays the log, so the
indexes come back as the appends made them.

Transaction verification (KIP-890): the api layer asks :meth:`Partition.start_verification`
for a guard before a producer's first transactional batch here, asks the coordinator, and
appends with that guard; the producer table refuses a guard that a batch or marker written
meanwhile made stale.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass

from kavka.config import TopicConfig
from kavka.log.errors import StorageError
from kavka.log.log_dir import LogDirHealth
from kavka.log.partition_log import AppendInfo, PartitionLog
from kavka.log.producer_state import ProducerState, VerificationGuard
from kavka.log.txn_index import AbortedTxn
from kavka.log.validator import validate_produce_records
from kavka.protocol import records
from kavka.protocol.control_records import EndTxnMarker, encode_marker_batch
from kavka.protocol.records import BatchHeader

log = logging.getLogger("kavka.log")


@dataclass(frozen=True, slots=True)
class ProduceInfo(AppendInfo):
    """AppendInfo of a produce; ``duplicate`` means a retry answered from producer state."""

    duplicate: bool = False


class Partition:
    """What the api layer talks to: one PartitionLog plus its idempotent-producer table.

    Reads, offsets and epochs go straight to ``.log``; writes from clients come
    through :meth:`append_records`, so no batch skips validation or the
    producer check.
    """

    def __init__(self, topic: str, index: int, plog: PartitionLog, producers: ProducerState,
                 health: LogDirHealth | None = None) -> None:
        self.topic, self.index, self.log, self.producers = topic, index, plog, producers
        plog.transactions = producers  # the LSO's first unstable offset
        self._active_base = plog.active_base_offset
        # The data directory's state, shared by all its partitions (kavka.log.log_dir).
        self.health = health or LogDirHealth(plog.path.parent)

    @classmethod
    def open(cls, topic: str, index: int, plog: PartitionLog, health: LogDirHealth | None = None) -> "Partition":
        partition = cls(topic, index, plog, ProducerState(plog.path), health)
        partition._load_producers()
        return partition

    @property
    def offline(self) -> bool:
        """On a failed (offline) log directory: refuse reads and writes (KAFKA_STORAGE_ERROR)."""
        return self.health.offline

    def storage_failure(self, exc: OSError, what: str) -> StorageError:
        """The domain error for an OSError met on this partition (logged once per episode)."""
        return self.health.failed(exc, f"{what} {self.topic}-{self.index}")

    @property
    def config(self) -> TopicConfig:
        return self.log.config

    @property
    def last_stable_offset(self) -> int:
        """Kafka's LSO: read_committed consumers read below it (kavka.log.partition_log)."""
        return self.log.last_stable_offset

    def start_verification(self, producer_id: int, sequence: int, epoch: int,
                           now_ms: int) -> VerificationGuard | None:
        """Before a transactional batch: the guard its append must bring once the coordinator
        said the partition is in the producer's transaction, or None if the producer's
        transaction is open here already (kavka.log.producer_state, "Verification")."""
        return self.producers.start_verification(producer_id, sequence, epoch, now_ms)

    def end_verification(self, producer_id: int, guard: VerificationGuard) -> None:
        """The coordinator refused the verification of ``guard`` for good: forget it."""
        self.producers.end_verification(producer_id, guard)

    def append_records(self, buf: bytearray, produce_version: int, now_ms: int,
                       keys_checked: bool = False, guard: VerificationGuard | None = None) -> ProduceInfo:
        """Validate, dedupe and append a client's records; offsets are patched into ``buf``.

        A payload is one batch (Produce v3+, as in Kafka: v0-2 are refused by the api
        layer); a retry of it is answered with its original offsets and written
        nothing.  ``keys_checked``: the compacted-topic key check already ran off the
        loop (validator.check_keys).  ``guard``: with transaction verification on, the
        guard of :meth:`start_verification` (or ``NO_GUARD``); a transactional batch that
        does not continue an open transaction is refused (InvalidTxnState) unless it is
        the current one.  None: verification is off.
        """
        if self.health.degraded:
            self.health.check(f"produce to {self.topic}-{self.index}")
        ((_, header),) = validate_produce_records(buf, self.log.config, now_ms, produce_version, keys_checked)
        original = self.producers.check(header)
        if original is not None:
            return ProduceInfo(original.first_offset, original.last_offset,
                               original.log_append_time_ms, self.log.log_start_offset, True)
        self.producers.check_verified(header, guard)
        info = self._append(self.log.append, buf, now_ms=now_ms)
        self._snapshot_if_rolled()
        self._apply(records.read_header(buf, 0), None)  # with the assigned offsets
        return ProduceInfo(info.base_offset, info.last_offset, info.log_append_time_ms, info.log_start_offset)

    def append_marker(self, producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int,
                      now_ms: int, transaction_version: int = 0) -> int:
        """Write the marker that ends ``producer_id``'s transaction (WriteTxnMarkers); its offset.

        Raises InvalidProducerEpoch for a stale epoch (with ``transaction_version`` 2,
        KIP-890, the epoch must be above the producer's, except for the retry of a marker
        already written) and TransactionCoordinatorFenced for an older coordinator epoch.
        A marker for a producer with no open transaction here is written all the same, as
        in Kafka (the coordinator sends one to every partition of the transaction).
        """
        if self.health.degraded:
            self.health.check(f"a transaction marker to {self.topic}-{self.index}")
        marker = EndTxnMarker(commit, coordinator_epoch)
        self.producers.check_marker(producer_id, producer_epoch, marker, transaction_version)
        batch = encode_marker_batch(producer_id, producer_epoch, marker, now_ms)
        info = self._append(self.log.append, batch, now_ms=now_ms)
        self._snapshot_if_rolled()
        self._apply(records.read_header(batch, 0), marker)
        return info.base_offset

    def append_as_follower(self, data: bytes | bytearray | memoryview) -> AppendInfo | None:
        """Append batches copied from the leader (offsets and epochs already set), keeping
        the producer table up to date so that this replica can lead with it."""
        view = memoryview(data)
        info = None
        for pos, header in records.iter_batches(view):
            batch = view[pos : pos + header.size]
            info = self._append(self.log.append_as_follower, batch)
            self._snapshot_if_rolled()
            self._apply(header, self.log.marker_of(batch, header))
        return info

    def _apply(self, header: BatchHeader, marker: EndTxnMarker | None) -> None:
        """A batch is in the log: update the producer table and, when it aborted a
        transaction, the segment's .txnindex.  The one path of appends and replay."""
        completed = self.producers.update(header, marker)
        if completed is not None and completed.aborted:
            txn = AbortedTxn(completed.producer_id, completed.first_offset, completed.last_offset,
                             self.producers.last_stable_offset_after(completed))
            try:
                self.log.add_aborted_txn(txn)
            except OSError as exc:  # kept in memory, so reads stay right; written at the next flush
                raise self.storage_failure(exc, "the transaction index of") from None

    def _load_producers(self) -> None:
        """Rebuild producer state and the .txnindex entries of the offsets it replays
        (module doc)."""
        plog = self.log
        start = self.producers.restore(plog, plog.txn_index_rebuild_from())
        plog.truncate_txn_indexes(start)
        for header, marker in plog.iter_replay(start):
            if header.last_offset >= start:
                self._apply(header, marker)
        plog.txn_indexes_rebuilt()

    def append_internal(self, batch: bytearray, now_ms: int, guard: VerificationGuard | None = None) -> AppendInfo:
        """A batch the broker built itself (the group coordinator's journal): no
        validation, the same storage-error handling; a batch with a producer id (a
        transactional offset commit) enters the producer table as any other.  ``guard``: as
        for :meth:`append_records`, the verification a transactional batch must bring
        (TxnOffsetCommit's, KIP-890), refused with InvalidTxnState when stale."""
        self.producers.check_verified(records.read_header(batch, 0), guard)
        info = self._append(self.log.append, batch, now_ms=now_ms)
        self._snapshot_if_rolled()
        header = records.read_header(batch, 0)
        self._apply(header, self.log.marker_of(batch, header))
        return info

    def _append(self, append, *args, **kwargs) -> AppendInfo:
        """``append(*args)`` with an OSError turned into a StorageError; the log undid
        the write already (kavka.log.segment), so nothing of the batch remains."""
        health = self.health
        if health.degraded:
            health.check(f"append to {self.topic}-{self.index}")
        try:
            info = append(*args, **kwargs)
        except OSError as exc:
            raise self.storage_failure(exc, "an append to") from None
        if health.degraded:
            health.succeeded()
        return info

    def _snapshot_if_rolled(self) -> None:
        """Kafka snapshots producers at each roll, so a restart replays one segment at most.

        Called between the append and the producer update, when the table
        covers exactly the offsets below the new segment.
        """
        active_base = self.log.active_base_offset
        if active_base != self._active_base:
            self._active_base = active_base
            if self.producers.end_offset == active_base:
                try:
                    self.producers.write_snapshot()
                except OSError as exc:
                    # The batch is in the log already and will be answered: a missing
                    # snapshot only makes the next start replay more of the log.
                    log.warning("%s-%d: producer snapshot at %d failed: %s", self.topic, self.index,
                                active_base, exc)
                    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                        self.health.failed(exc, f"a producer snapshot of {self.topic}-{self.index}")

    def truncate_to(self, offset: int) -> None:
        self.log.truncate_to(offset)
        self._load_producers()  # drops snapshots above the new end, replays the rest

    def restart_at(self, offset: int) -> None:
        self.log.restart_at(offset)
        self._load_producers()

    def update_config(self, config: TopicConfig) -> None:
        self.log.update_config(config)

    def flush(self) -> None:
        self.log.flush()

    def close(self) -> None:
        """Flush, write the producer snapshot and close; a second call does nothing."""
        if self.log.is_closed:
            return
        try:
            self.log.flush()
            # At the offset the table really covers (the LEO unless batches bypassed it).
            self.producers.write_snapshot()
        finally:
            self.log.close()

    def delete(self) -> None:
        self.log.delete()
