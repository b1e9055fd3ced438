"""The transaction coordinator: every transactional id of this broker, one request at a time.

Theory of operation
-------------------
Like the group coordinator (``kavka.group.coordinator``) this is a synchronous state machine
with an injected clock; the asyncio side lives elsewhere.  Each request is decided at once and
returns a :class:`TxnOutcome`:

1. ``records``: the id's new state, appended to its ``__transaction_state`` partition
   (:class:`Journal`); each record is applied by :meth:`TransactionCoordinator.replay`, the
   function that also rebuilds every id from the topic when the broker starts leading a
   partition (:meth:`load_partition`), so live handling and recovery cannot drift apart;
2. ``reply``: the answer, released once the records are written (and, in a cluster,
   replicated), so a client never hears of a change a crash could undo;
3. ``markers``: for a transaction that entered PrepareCommit or PrepareAbort, the
   commit/abort markers to write to each of its partitions.  The runner writes them only
   after the Prepare record is durable, retries until every partition has its marker, then
   calls :meth:`markers_written`, which records CompleteCommit / CompleteAbort.  A broker
   that takes over a partition finds transactions still in Prepare* in what it replays and
   sends their markers again (markers are idempotent on the partition side).

The rules are Kafka's TransactionCoordinator's.  Epochs: InitProducerId bumps the epoch of an
existing id (fencing any older producer of it); a transaction of a client using transactions
V2 (KIP-890, ``client_txn_version`` ≥ 2) gets a new epoch at every EndTxn, so a late write of
the finished transaction is refused by its partitions; at epoch 32766 the producer id is
replaced (a new id at epoch 0, the old one kept as ``previous_producer_id``).
InitProducerId of an id with an open transaction aborts it with a bumped epoch and answers
CONCURRENT_TRANSACTIONS until the abort completes, as Kafka does.

Time: an Ongoing transaction older than its ``timeout_ms`` is aborted by :meth:`tick` with a
bumped epoch (its producer is fenced); an id idle in a completed state for
``transactional.id.expiration.ms`` is removed (a tombstone).
"""

from __future__ import annotations

import heapq
import itertools
import logging
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Iterator, Protocol

from kavka.producer_ids import ProducerIdAllocator
from kavka.protocol.errors import ErrorCode
from kavka.txn.model import MAX_EPOCH, NO_PRODUCER_ID, TopicPartition, TxnMetadata, TxnState

log = logging.getLogger("kavka.txn")

TXN_V2 = 2   # the client transaction version from which every EndTxn bumps the epoch


@dataclass(frozen=True, slots=True)
class TxnConfig:
    max_timeout_ms: int = 900_000                   # transaction.max.timeout.ms
    id_expiration_ms: int = 604_800_000             # transactional.id.expiration.ms
    abort_check_interval_ms: int = 10_000           # transaction.abort.timed.out.transaction.cleanup.interval.ms
    expiration_check_interval_ms: int = 3_600_000   # transaction.remove.expired.transaction.cleanup.interval.ms

    @classmethod
    def from_broker(cls, config) -> "TxnConfig":
        get = config.get
        return cls(get("transaction.max.timeout.ms"), get("transactional.id.expiration.ms"),
                   get("transaction.abort.timed.out.transaction.cleanup.interval.ms"),
                   get("transaction.remove.expired.transaction.cleanup.interval.ms"))


@dataclass(frozen=True, slots=True)
class ProducerIdAndEpoch:
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = -1


@dataclass(frozen=True, slots=True)
class InitReply:
    error: ErrorCode
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = -1


@dataclass(frozen=True, slots=True)
class MarkerJob:
    """Write ``commit`` (else abort) markers for one transaction to ``partitions``."""
    transactional_id: str
    producer_id: int
    producer_epoch: int
    commit: bool
    coordinator_epoch: int
    partitions: frozenset[TopicPartition]


@dataclass(slots=True)
class TxnOutcome:
    reply: Any = None
    records: list[tuple[str, TxnMetadata | None]] = field(default_factory=list)
    markers: list[MarkerJob] = field(default_factory=list)
    written: list[tuple[int, int]] = field(default_factory=list)   # (journal partition, end offset)
    undo: list[tuple[str, TxnMetadata | None]] = field(default_factory=list)   # each record's id before it


class Journal(Protocol):
    """``__transaction_state`` as the coordinator sees it."""
    def partition_for(self, transactional_id: str) -> int: ...
    def leads(self, partition: int) -> bool: ...
    def coordinator_epoch(self, partition: int) -> int: ...
    def append(self, partition: int, records: list[tuple[str, TxnMetadata | None]]) -> int | None: ...
    def read_partition(self, partition: int) -> Iterator[tuple[str, TxnMetadata | None]]: ...


class TransactionCoordinator:
    def __init__(self, config: TxnConfig, clock, journal: Journal, producer_ids: ProducerIdAllocator,
                 offsets_partition: Callable[[str], TopicPartition]) -> None:
        """``offsets_partition(group_id)``: the ``__consumer_offsets`` partition of a group,
        which AddOffsetsToTxn adds to the transaction."""
        self.config = config
        self.clock = clock
        self.journal = journal
        self.producer_ids = producer_ids
        self.offsets_partition = offsets_partition
        self.ids: dict[str, TxnMetadata] = {}
        # A heap of (timeout deadline, n, id, metadata) for every metadata replayed as ONGOING: the
        # earliest transaction timeout without a look at every id (next_deadline runs after each
        # request, and a broker keeps ids for transactional.id.expiration.ms after their last use).
        # An entry whose metadata is no longer the id's (frozen: same object, same deadline) is stale.
        self._timeouts: list[tuple[int, int, str, TxnMetadata]] = []
        self._pushed = itertools.count()
        self.loaded: set[int] = set()          # journal partitions this broker serves
        self._loading: set[int] = set()
        self._next_expiration_check = self.now() + config.expiration_check_interval_ms
        self._timeouts_paused_until = 0   # after a failed abort write: retry at the check interval

    def now(self) -> int:
        return self.clock.now_ms()

    # -- requests ----------------------------------------------------------------------------

    def init_producer_id(self, transactional_id: str, timeout_ms: int,
                         expected: ProducerIdAndEpoch | None = None) -> TxnOutcome:
        """InitProducerId with a transactional id (KIP-98; ``expected`` is KIP-360's
        producer id and epoch of a producer that recovers from an error)."""
        if not transactional_id:
            return TxnOutcome(InitReply(ErrorCode.invalid_request))
        refusal = self._coordinator_error(transactional_id)
        if refusal is not None:
            return TxnOutcome(InitReply(refusal))
        if not 0 < timeout_ms <= self.config.max_timeout_ms:
            return TxnOutcome(InitReply(ErrorCode.invalid_transaction_timeout))
        now = self.now()
        meta = self.ids.get(transactional_id)
        if meta is None:
            fresh = TxnMetadata(transactional_id, self.producer_ids.allocate(), 0, timeout_ms,
                                TxnState.EMPTY, last_update_ms=now)
            return self._write(fresh, InitReply(ErrorCode.none, fresh.producer_id, 0))
        if meta.state.preparing:
            return TxnOutcome(InitReply(ErrorCode.concurrent_transactions))
        if expected is not None and expected.producer_id != NO_PRODUCER_ID:
            if not _is_known_epoch(meta, expected):
                return TxnOutcome(InitReply(ErrorCode.producer_fenced))
            if meta.state == TxnState.EMPTY and expected.producer_epoch == meta.last_producer_epoch:
                # A retry of the InitProducerId that already bumped the epoch: same answer.
                return TxnOutcome(InitReply(ErrorCode.none, meta.producer_id, meta.producer_epoch))
        if meta.state == TxnState.ONGOING:
            return self._abort(meta, now, fence=True, reply=InitReply(ErrorCode.concurrent_transactions))
        bumped = _bump_epoch(meta, self.producer_ids)
        ready = bumped.moved(TxnState.EMPTY, now, timeout_ms=timeout_ms, partitions=frozenset(),
                             start_ms=-1)
        return self._write(ready, InitReply(ErrorCode.none, ready.producer_id, ready.producer_epoch))

    def add_partitions(self, transactional_id: str, producer_id: int, producer_epoch: int,
                       partitions: Iterable[TopicPartition], verify_only: bool = False) -> TxnOutcome:
        """AddPartitionsToTxn: the reply maps each partition to its error.  ``verify_only``
        (v4+, sent by a partition leader before a transactional write, KIP-890) changes
        nothing and says whether each partition is in the id's ongoing transaction
        (TRANSACTION_ABORTABLE when not, as Kafka's handleVerifyPartitionsInTransaction)."""
        wanted = frozenset(partitions)
        meta, error = self._producer_check(transactional_id, producer_id, producer_epoch)
        if error is None and meta.state.preparing:
            error = ErrorCode.concurrent_transactions
        if error is not None:
            log.debug("AddPartitionsToTxn of %r (producer %d epoch %d%s): %s, state %s", transactional_id, producer_id,
                      producer_epoch, ", verify only" if verify_only else "", error.name,
                      meta.state.name if meta else None)
            return TxnOutcome({tp: error for tp in wanted})
        if verify_only:
            ongoing = meta.state == TxnState.ONGOING
            return TxnOutcome({tp: ErrorCode.none if ongoing and tp in meta.partitions
                               else ErrorCode.transaction_abortable for tp in wanted})
        if meta.state == TxnState.ONGOING and wanted <= meta.partitions:
            return TxnOutcome({tp: ErrorCode.none for tp in wanted})
        now = self.now()
        start = meta.start_ms if meta.state == TxnState.ONGOING else now
        ongoing = meta.moved(TxnState.ONGOING, now, partitions=meta.partitions | wanted, start_ms=start)
        return self._write(ongoing, {tp: ErrorCode.none for tp in wanted})

    def add_offsets(self, transactional_id: str, producer_id: int, producer_epoch: int,
                    group_id: str) -> TxnOutcome:
        """AddOffsetsToTxn: the group's ``__consumer_offsets`` partition joins the transaction,
        so TxnOffsetCommit's offsets become visible with its commit marker."""
        out = self.add_partitions(transactional_id, producer_id, producer_epoch,
                                  [self.offsets_partition(group_id)])
        out.reply = next(iter(out.reply.values()))
        return out

    def end_txn(self, transactional_id: str, producer_id: int, producer_epoch: int, commit: bool,
                client_txn_version: int = 0) -> TxnOutcome:
        """EndTxn.  The reply is an :class:`InitReply`: EndTxn v5+ hands the producer the id and
        epoch it continues with (a new epoch for transactions V2)."""
        meta = self.ids.get(transactional_id)
        v2 = client_txn_version >= TXN_V2
        if meta is not None and v2 and self._is_v2_retry(meta, producer_id, producer_epoch):
            return self._end_state_reply(meta, commit)
        meta, error = self._producer_check(transactional_id, producer_id, producer_epoch)
        if error is not None:
            return TxnOutcome(InitReply(error))
        state = meta.state
        if state == TxnState.ONGOING or (v2 and not commit and state.completed):
            now = self.now()
            meta = replace(meta, client_txn_version=client_txn_version)
            if commit:
                return self._prepare(meta, now, commit=True, bump=v2)
            return self._abort(meta, now, fence=v2)
        if state.preparing or state in (TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT):
            return self._end_state_reply(meta, commit)
        return TxnOutcome(InitReply(ErrorCode.invalid_txn_state))

    def markers_written(self, job: MarkerJob) -> TxnOutcome:
        """Every partition of ``job`` holds its marker: the transaction completes.  A job that
        no longer matches the id's state (the coordinator moved, the id was fenced) is dropped."""
        if not self.awaits_completion(job):
            return TxnOutcome()
        meta = self.ids[job.transactional_id]
        changes: dict = dict(partitions=frozenset())
        if meta.next_producer_id != NO_PRODUCER_ID:   # V2 with an exhausted epoch: hand over
            changes.update(producer_id=meta.next_producer_id, producer_epoch=0,
                           previous_producer_id=meta.producer_id, next_producer_id=NO_PRODUCER_ID)
        done = TxnState.COMPLETE_COMMIT if job.commit else TxnState.COMPLETE_ABORT
        return self._write(meta.moved(done, self.now(), **changes), None)

    def awaits_completion(self, job: MarkerJob) -> bool:
        """Whether this coordinator serves ``job``'s id and the id is still in the
        preparation the job's markers end."""
        meta = self.ids.get(job.transactional_id)
        expected = TxnState.PREPARE_COMMIT if job.commit else TxnState.PREPARE_ABORT
        return (meta is not None and meta.state == expected and meta.producer_epoch == job.producer_epoch
                and self._serves(job.transactional_id))

    def abort(self, transactional_id: str) -> TxnOutcome:
        """An operator's abort of a hanging transaction (kavka transactions abort): fences
        the producer as a timeout would.  The reply is an ErrorCode."""
        refusal = self._coordinator_error(transactional_id)
        meta = self.ids.get(transactional_id)
        if refusal is None and meta is None:
            refusal = ErrorCode.transactional_id_not_found
        if refusal is not None:
            return TxnOutcome(refusal)
        if meta.state != TxnState.ONGOING:
            return TxnOutcome(ErrorCode.invalid_txn_state)
        return self._abort(meta, self.now(), fence=True, reply=ErrorCode.none)

    # -- queries -----------------------------------------------------------------------------

    def describe(self, transactional_id: str) -> tuple[ErrorCode, TxnMetadata | None]:
        refusal = self._coordinator_error(transactional_id)
        if refusal is not None:
            return refusal, None
        meta = self.ids.get(transactional_id)
        if meta is None:
            return ErrorCode.transactional_id_not_found, None
        return ErrorCode.none, meta

    def list(self, states: Iterable[str] = (), producer_ids: Iterable[int] = (),
             min_duration_ms: int = -1) -> tuple[list[TxnMetadata], list[str]]:
        """ListTransactions: the ids matching every filter given, and the state names asked
        for that Kafka does not know (its ``unknown_state_filters``)."""
        wanted = set(states)
        unknown = sorted(name for name in wanted if TxnState.from_kafka_name(name) is None)
        pids = set(producer_ids)
        now = self.now()
        found = [meta for meta in self.ids.values()
                 if (not wanted or meta.state.kafka_name in wanted)
                 and (not pids or meta.producer_id in pids)
                 and (min_duration_ms < 0 or (meta.state == TxnState.ONGOING
                                              and now - meta.start_ms >= min_duration_ms))]
        return sorted(found, key=lambda m: m.transactional_id), unknown

    @property
    def loading(self) -> bool:
        return bool(self._loading)

    # -- time --------------------------------------------------------------------------------

    def next_deadline(self) -> int | None:
        """When :meth:`tick` has work: the earliest transaction timeout, or the next expiration
        check while any id is held."""
        deadlines = []
        timeouts = self._timeouts
        while timeouts and self.ids.get(timeouts[0][2]) is not timeouts[0][3]:
            heapq.heappop(timeouts)
        if timeouts:
            deadlines.append(max(timeouts[0][0], self._timeouts_paused_until))
        if self.ids:
            deadlines.append(self._next_expiration_check)
        return min(deadlines) if deadlines else None

    def tick(self) -> TxnOutcome:
        """Abort timed-out transactions (fencing their producers) and remove expired ids."""
        now = self.now()
        out = TxnOutcome()
        for meta in list(self.ids.values()):
            if (meta.state == TxnState.ONGOING and now >= meta.start_ms + meta.timeout_ms
                    and now >= self._timeouts_paused_until and self._serves(meta.transactional_id)):
                aborted = self._abort(meta, now, fence=True)
                if not aborted.written:
                    self._timeouts_paused_until = now + self.config.abort_check_interval_ms
                _merge(out, aborted)
        if now >= self._next_expiration_check:
            self._next_expiration_check = now + self.config.expiration_check_interval_ms
            for meta in list(self.ids.values()):
                if (meta.state.completed and now - meta.last_update_ms >= self.config.id_expiration_ms
                        and self._serves(meta.transactional_id)):
                    _merge(out, self._write_records([(meta.transactional_id, None)], None))
        return out

    # -- state: load and replay --------------------------------------------------------------

    def replay(self, transactional_id: str, meta: TxnMetadata | None) -> None:
        """Apply one record of ``__transaction_state``: live, after an append, and at load."""
        if meta is None:
            self.ids.pop(transactional_id, None)
        else:
            self.ids[transactional_id] = meta
            if meta.state == TxnState.ONGOING:
                heapq.heappush(self._timeouts, (meta.start_ms + meta.timeout_ms, next(self._pushed),
                                                transactional_id, meta))
                if len(self._timeouts) > 2 * len(self.ids) + 1024:   # mostly stale: keep the live ones
                    self._timeouts = [entry for entry in self._timeouts if self.ids.get(entry[2]) is entry[3]]
                    heapq.heapify(self._timeouts)

    def load_partition(self, partition: int) -> TxnOutcome:
        """This broker now leads ``partition``: replay it, then send the markers of the
        transactions it finds in preparation (their previous coordinator may have died
        before writing them all)."""
        self._loading.add(partition)
        try:
            for transactional_id, meta in self.journal.read_partition(partition):
                self.replay(transactional_id, meta)
        finally:
            self._loading.discard(partition)
        self.loaded.add(partition)
        epoch = self.journal.coordinator_epoch(partition)
        out = TxnOutcome()
        for meta in self.ids.values():
            if meta.state.preparing and self.journal.partition_for(meta.transactional_id) == partition:
                out.markers.append(_marker_job(meta, epoch))
        return out

    def unload_partition(self, partition: int) -> None:
        """Leadership of ``partition`` moved away: forget its ids (the new leader replays them)."""
        self.loaded.discard(partition)
        for transactional_id in [t for t in self.ids if self.journal.partition_for(t) == partition]:
            del self.ids[transactional_id]

    def revert(self, out: TxnOutcome) -> None:
        """``out``'s records did not replicate: each id goes back to its state before them,
        unless a later record changed it again (the client, told to retry, decides anew)."""
        for (transactional_id, wrote), (_, before) in zip(reversed(out.records), reversed(out.undo)):
            if self.ids.get(transactional_id) == wrote:
                self.replay(transactional_id, before)

    # -- helpers -----------------------------------------------------------------------------

    def _serves(self, transactional_id: str) -> bool:
        partition = self.journal.partition_for(transactional_id)
        return partition in self.loaded and self.journal.leads(partition)

    def _coordinator_error(self, transactional_id: str) -> ErrorCode | None:
        partition = self.journal.partition_for(transactional_id)
        if partition in self._loading:
            return ErrorCode.coordinator_load_in_progress
        if not self._serves(transactional_id):
            return ErrorCode.not_coordinator
        return None

    def _producer_check(self, transactional_id: str, producer_id: int,
                        producer_epoch: int) -> tuple[TxnMetadata | None, ErrorCode | None]:
        """Kafka's checks of a request naming a producer, in its order."""
        if not transactional_id:
            return None, ErrorCode.invalid_request
        refusal = self._coordinator_error(transactional_id)
        if refusal is not None:
            return None, refusal
        meta = self.ids.get(transactional_id)
        if meta is None or meta.producer_id != producer_id:
            return meta, ErrorCode.invalid_producer_id_mapping
        if meta.producer_epoch != producer_epoch:
            return meta, ErrorCode.producer_fenced
        return meta, None

    @staticmethod
    def _is_v2_retry(meta: TxnMetadata, producer_id: int, producer_epoch: int) -> bool:
        """A transactions-V2 EndTxn retried after its answer was lost: it names the epoch the
        transaction had before EndTxn bumped it (or the id an exhausted epoch replaced).  As in
        Kafka, that is judged whatever it decides, so the other decision is INVALID_TXN_STATE,
        not a fencing."""
        if not (meta.state.preparing or meta.state in (TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT)):
            return False
        if meta.producer_id == producer_id:
            return producer_epoch == meta.producer_epoch - 1
        return meta.previous_producer_id == producer_id and meta.producer_epoch == 0

    def _end_state_reply(self, meta: TxnMetadata, commit: bool) -> TxnOutcome:
        """EndTxn of a transaction that already ends: the same decision again is answered
        (CONCURRENT_TRANSACTIONS while its markers are written), the other one refused."""
        same = (meta.state in (TxnState.PREPARE_COMMIT, TxnState.COMPLETE_COMMIT)) == commit
        if not same:
            return TxnOutcome(InitReply(ErrorCode.invalid_txn_state))
        if meta.state.preparing:
            return TxnOutcome(InitReply(ErrorCode.concurrent_transactions))
        return TxnOutcome(InitReply(ErrorCode.none, meta.producer_id, meta.producer_epoch))

    def _prepare(self, meta: TxnMetadata, now: int, commit: bool, bump: bool,
                 reply: Any = None) -> TxnOutcome:
        """Write PrepareCommit/PrepareAbort (with a new epoch when ``bump``) and the job of
        writing its markers."""
        if bump:
            if meta.producer_epoch >= MAX_EPOCH and meta.next_producer_id == NO_PRODUCER_ID:
                meta = replace(meta, next_producer_id=self.producer_ids.allocate())
            else:
                meta = replace(meta, producer_epoch=meta.producer_epoch + 1,
                               last_producer_epoch=meta.producer_epoch)
        state = TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT
        prepared = meta.moved(state, now)
        if reply is None:
            reply = InitReply(ErrorCode.none, prepared.producer_id, prepared.producer_epoch)
        out = self._write(prepared, reply)
        if out.written:
            out.markers.append(_marker_job(prepared, self.journal.coordinator_epoch(
                self.journal.partition_for(meta.transactional_id))))
        return out

    def _abort(self, meta: TxnMetadata, now: int, fence: bool, reply: Any = None) -> TxnOutcome:
        return self._prepare(meta, now, commit=False, bump=fence, reply=reply)

    def _write(self, meta: TxnMetadata, reply: Any) -> TxnOutcome:
        return self._write_records([(meta.transactional_id, meta)], reply)

    def _write_records(self, records: list[tuple[str, TxnMetadata | None]], reply: Any) -> TxnOutcome:
        """Append, then replay; if the append fails nothing changes and the client is told to
        retry (NOT_COORDINATOR, as Kafka answers a failed append of its coordinator)."""
        written, undo = [], []
        for transactional_id, meta in records:
            partition = self.journal.partition_for(transactional_id)
            end = self.journal.append(partition, [(transactional_id, meta)])
            if end is None:
                return TxnOutcome(failed_reply(reply))
            written.append((partition, end))
            undo.append((transactional_id, self.ids.get(transactional_id)))
            self.replay(transactional_id, meta)
        return TxnOutcome(reply, records, written=written, undo=undo)


def _is_known_epoch(meta: TxnMetadata, expected: ProducerIdAndEpoch) -> bool:
    """KIP-360: a producer may re-initialise from its current epoch, the previous one (a retry),
    or, after an exhaustion replaced its id, from the old id."""
    if expected.producer_id == meta.producer_id:
        return expected.producer_epoch in (meta.producer_epoch, meta.last_producer_epoch)
    return expected.producer_id == meta.previous_producer_id


def _bump_epoch(meta: TxnMetadata, producer_ids: ProducerIdAllocator) -> TxnMetadata:
    if meta.producer_epoch >= MAX_EPOCH:
        return replace(meta, producer_id=producer_ids.allocate(), producer_epoch=0,
                       previous_producer_id=meta.producer_id, last_producer_epoch=-1)
    return replace(meta, producer_epoch=meta.producer_epoch + 1, last_producer_epoch=meta.producer_epoch)


def _marker_job(meta: TxnMetadata, coordinator_epoch: int) -> MarkerJob:
    return MarkerJob(meta.transactional_id, meta.producer_id, meta.producer_epoch,
                     meta.state == TxnState.PREPARE_COMMIT, coordinator_epoch, meta.partitions)


def failed_reply(reply: Any, error: ErrorCode = ErrorCode.not_coordinator) -> Any:
    """``reply`` turned into ``error`` (NOT_COORDINATOR, or COORDINATOR_NOT_AVAILABLE when too
    few replicas took the records): its records could not be written or replicated."""
    if isinstance(reply, InitReply):
        return InitReply(error)
    if isinstance(reply, dict):
        return {key: error for key in reply}
    return error if reply is not None else None


def _merge(into: TxnOutcome, other: TxnOutcome) -> None:
    into.records += other.records
    into.markers += other.markers
    into.written += other.written
    into.undo += other.undo
