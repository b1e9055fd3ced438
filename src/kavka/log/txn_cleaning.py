"""What compaction does with transactions (Kafka's CleanedTransactionMetadata and the
transaction rules of LogCleaner's batch filter, KIP-98 and KIP-534).

Theory of operation
-------------------
A cleaning walks the partition's closed segments in offset order, from the
first segment to the end of the cleaned range.  The aborted transactions are
known from the ``.txnindex`` entries (kavka.log.txn_index) overlapping that
range, collected on the event loop into the job: an entry (producer id, first
offset, marker offset) covers that producer's transactional batches between
the two offsets.  Every transaction whose batches lie below the last stable
offset (where a cleaning stops) has its marker written already, so a
transactional batch not covered by an entry was committed.

:class:`TxnScan` follows one walk (one per cleaning, across all its groups of
segments, so that a marker in a later group still sees the batches of its
transaction in an earlier one) and answers, per batch:

    batch                                        decision
    -------------------------------------------  ------------------------------------------
    transactional data, in an aborted txn        discard every record (the offset map
                                                 skips it too: an aborted record must not
                                                 shadow a committed one of the same key)
    transactional data, committed                normal key dedupe
    ABORT marker whose batches were traversed    keep, and its entry goes into the cleaned
                                                 segment's .txnindex
    ABORT marker, no batch of its txn left       may go: drop its .txnindex entry
    COMMIT marker, batches traversed             keep
    COMMIT marker, no batch of its txn left      may go
    empty control batch (emptied earlier)        may go
    control batch of another type / undecodable  keep as it is

A marker that may go is not dropped at once (KIP-534): the first cleaning
stamps its batch with a delete horizon (attribute bit 6, baseTimestamp = now +
``delete.retention.ms``), exactly as for tombstones, and the first cleaning at
or after the horizon removes it, so a consumer that read the transaction's
records before they were cleaned still gets its marker.  As for data, the
last batch of each producer known to the producer state survives, emptied of
records (:class:`ProducerTail`): its last data batch, or, when the producer's
last entry is a marker (the epoch was bumped and it has no data batch since),
the control batch of its current epoch, so producer state rebuilt from the log
keeps the producer's sequence and epoch.

Why nothing aborted is exposed: a .txnindex entry is dropped only by a
cleaning that found no batch of its transaction, i.e. after its data is gone,
and its marker outlives it; a read_committed fetch therefore never meets an
aborted record without the entry that hides it, nor an entry without its
marker (which would hide the producer's later committed records).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from typing import Iterable

from kavka.log.txn_index import AbortedTxn
from kavka.protocol.control_records import EndTxnMarker
from kavka.protocol.records import BatchHeader


@dataclass(frozen=True, slots=True)
class ProducerTail:
    """The batch of a producer that must survive: its last data batch's last offset
    (-1 when it has none since its last epoch bump), and its epoch."""

    last_data_offset: int
    epoch: int

    def keeps(self, header: BatchHeader) -> bool:
        if header.is_control:
            return self.last_data_offset < 0 and header.producer_epoch == self.epoch
        return header.last_offset == self.last_data_offset


class AbortedRanges:
    """The aborted transactions of a range, per producer, sorted by first offset."""

    def __init__(self, aborted: Iterable[AbortedTxn]) -> None:
        self._by_producer: dict[int, list[AbortedTxn]] = {}
        for txn in sorted(aborted, key=lambda t: t.first_offset):
            self._by_producer.setdefault(txn.producer_id, []).append(txn)
        self._firsts = {pid: [t.first_offset for t in txns] for pid, txns in self._by_producer.items()}

    def covering(self, header: BatchHeader) -> AbortedTxn | None:
        """The aborted transaction a transactional data batch belongs to, if any."""
        if not header.is_transactional or header.is_control:
            return None
        firsts = self._firsts.get(header.producer_id)
        if not firsts:
            return None
        i = bisect_right(firsts, header.base_offset) - 1
        if i < 0:
            return None
        txn = self._by_producer[header.producer_id][i]
        return txn if header.base_offset < txn.last_offset else None

    def ended_by(self, header: BatchHeader) -> AbortedTxn | None:
        """The aborted transaction whose marker is the control batch ``header``."""
        for txn in self._by_producer.get(header.producer_id, ()):
            if txn.last_offset == header.base_offset:
                return txn
        return None


@dataclass(frozen=True, slots=True)
class MarkerDecision:
    discardable: bool               # no batch of its transaction is left: may go after its horizon
    entry: AbortedTxn | None = None  # the .txnindex entry the cleaned segment keeps for it


class TxnScan:
    """The transaction state of one cleaning's walk (see the module doc)."""

    def __init__(self, aborted: Iterable[AbortedTxn]) -> None:
        self.ranges = AbortedRanges(aborted)
        self._observed: set[AbortedTxn] = set()  # aborted transactions with a batch traversed
        self._committing: set[int] = set()       # producers with a committed batch since their last marker

    def data_batch(self, header: BatchHeader) -> bool:
        """Traverse a data batch; True when its records are aborted (to be discarded)."""
        if not header.is_transactional:
            return False
        txn = self.ranges.covering(header)
        if txn is not None:
            self._observed.add(txn)
            return True
        self._committing.add(header.producer_id)
        return False

    def control_batch(self, header: BatchHeader, marker: EndTxnMarker | None, empty: bool) -> MarkerDecision:
        """Traverse a control batch: ``marker`` as read from it, ``empty`` when it has no record."""
        if empty:
            return MarkerDecision(True)
        if marker is None:
            return MarkerDecision(False)  # a control type kavka does not know: kept as it is
        pid = header.producer_id
        if marker.commit:
            traversed = pid in self._committing
            self._committing.discard(pid)
            return MarkerDecision(not traversed)
        stray = pid in self._committing  # batches no index entry covers: keep what ends them
        self._committing.discard(pid)
        txn = self.ranges.ended_by(header)
        if txn is not None and txn in self._observed:
            self._observed.discard(txn)
            return MarkerDecision(False, txn)
        return MarkerDecision(not stray)
