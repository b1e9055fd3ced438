"""Produce's transaction verification (KIP-890 part 1, and part 2's implicit add): before a
producer's first transactional batch in a partition, ask the coordinator about the partition.

What Kafka's ReplicaManager.handleProduceAppend does, for a request with a transactional id
while ``transaction.partition.verification.enable`` is true (Produce v12+ adds its partitions
even when it is false, since the client relies on it; the partition then checks no guard):

1. every partition whose batch is transactional names the request's one producer (two
   producer ids in one request: INVALID_PRODUCER_ID_MAPPING for all, Kafka's
   InvalidPidMappingException);
2. a partition whose producer has no transaction open there gets a VerificationGuard
   (``Partition.start_verification``); the others need no question;
3. those partitions go to the broker's ``txn_verifier`` (kavka.txn.verifier) in one call:
   verify only for Produce v0-11, add to the transaction for v12+ (a transactions-V2 client
   sends no AddPartitionsToTxn; Kafka's TransactionSupportedOperation ADD_PARTITION);
4. each refused partition is answered with Kafka's translation of the coordinator's error
   (:func:`refusal`) and not appended (a refusal for good also ends the partition's
   verification: the client must abort, and the entry would only wait for its expiry); the
   others append with their guard, which the partition checks again (an abort marker
   written meanwhile makes it stale).

The answer of step 3 may come later (a cluster asks another broker): :func:`begin` then
returns an awaitable of the :class:`Verified` it otherwise returns at once.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

from kavka.api.registry import Request
from kavka.log.producer_state import NO_GUARD, VerificationGuard
from kavka.protocol import records
from kavka.protocol.errors import ErrorCode

ADD_PARTITION_FROM = 12        # Produce v12+: the leader adds the partition (transactions V2)
GENERIC_ERROR_FROM = 11        # Produce v11+: the client knows TRANSACTION_ABORTABLE
UNVERIFIED = "Unable to verify the partition has been added to the transaction. Underlying error: "
# Retriable coordinator errors that older clients do not retry on Produce: NOT_ENOUGH_REPLICAS
# makes them retry without a metadata refresh, as Kafka answers.
_RETRY_AS_NOT_ENOUGH_REPLICAS = frozenset({ErrorCode.network_exception, ErrorCode.coordinator_load_in_progress,
                                           ErrorCode.coordinator_not_available, ErrorCode.not_coordinator})
_RETRIABLE = _RETRY_AS_NOT_ENOUGH_REPLICAS | {ErrorCode.concurrent_transactions}

Key = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Verified:
    """Per partition, what to append with: ``default`` (None: verification is off; NO_GUARD:
    on) unless ``guards`` has the partition's own; ``refused`` partitions are answered with
    (error, message) and not appended."""
    default: VerificationGuard | None = None
    guards: dict[Key, VerificationGuard | None] = field(default_factory=dict)
    refused: dict[Key, tuple[ErrorCode, str | None]] = field(default_factory=dict)

    def guard(self, key: Key) -> VerificationGuard | None:
        return self.guards.get(key, self.default)


OFF = Verified()


def begin(request: Request):
    """The request's :class:`Verified`, or an awaitable of it while the coordinator answers."""
    broker = request.broker
    body = request.body
    add = request.version >= ADD_PARTITION_FROM
    checked = broker.config.get("transaction.partition.verification.enable")
    if body.transactional_id is None or broker.txn_verifier is None or not (checked or add):
        return OFF
    default = NO_GUARD if checked else None
    batches = _transactional_batches(body)
    if len({(h.producer_id, h.producer_epoch) for h in batches.values()}) > 1:
        refused = (ErrorCode.invalid_producer_id_mapping, "Transactional records contained more than one producer ID")
        return Verified(default, refused={(t.name, p.index): refused for t in body.topic_data
                                          for p in t.partition_data})
    guards = _start(request, batches)
    if not guards:
        return Verified(default)
    header = next(iter(batches.values()))
    answer = broker.txn_verifier.verify(body.transactional_id, header.producer_id, header.producer_epoch,
                                        list(guards), add=add)
    settle = _Settle(request, header.producer_id, default, guards, checked)
    if inspect.isawaitable(answer):
        return settle.later(answer)
    return settle(answer)


def refusal(error: ErrorCode, version: int) -> tuple[ErrorCode, str | None]:
    """The Produce answer for a partition the coordinator did not confirm (Kafka's
    AddPartitionsToTxnManager and ReplicaManager translations)."""
    if error == ErrorCode.producer_fenced:   # producers expect INVALID_PRODUCER_EPOCH here
        return ErrorCode.invalid_producer_epoch, None
    if error == ErrorCode.transaction_abortable and version < GENERIC_ERROR_FROM:
        error = ErrorCode.invalid_txn_state
    if error == ErrorCode.invalid_txn_state:
        return error, "Partition was not added to the transaction"
    if error in _RETRY_AS_NOT_ENOUGH_REPLICAS or (error == ErrorCode.concurrent_transactions
                                                 and version < ADD_PARTITION_FROM):
        return ErrorCode.not_enough_replicas, UNVERIFIED + error.name.upper()
    return error, None


def _transactional_batches(body) -> dict[Key, records.BatchHeader]:
    """The header of each partition's first batch, for partitions whose batch is transactional
    (the bytes are not validated yet; the append validates them)."""
    found = {}
    for topic in body.topic_data:
        for data in topic.partition_data:
            raw = data.records
            if raw is not None and len(raw) >= records.HEADER_SIZE:
                header = records.read_header(raw, 0)
                if header.is_transactional and header.has_producer_id:
                    found[(topic.name, data.index)] = header
    return found


def _start(request: Request, batches: dict[Key, records.BatchHeader]) -> dict[Key, VerificationGuard]:
    """A guard for each led partition where the producer has no transaction open yet."""
    broker = request.broker
    now_ms = broker.clock.now_ms()
    guards = {}
    for key, header in batches.items():
        partition, error = broker.leader_partition(*key)
        if error != ErrorCode.none:
            continue   # the append answers it
        guard = partition.start_verification(header.producer_id, header.base_sequence, header.producer_epoch,
                                             now_ms)
        if guard is not None:
            guards[key] = guard
    return guards


@dataclass(frozen=True, slots=True)
class _Settle:
    """Turns the coordinator's answer into the request's :class:`Verified`."""
    request: Request
    producer_id: int
    default: VerificationGuard | None
    guards: dict[Key, VerificationGuard]
    checked: bool   # transaction.partition.verification.enable: the partitions check the guards

    async def later(self, answer) -> Verified:
        return self(await answer)

    def __call__(self, answer: dict) -> Verified:
        errors = {key: answer.get(key, ErrorCode.none) for key in self.guards}
        refused = {key: refusal(error, self.request.version) for key, error in errors.items()
                   if error not in (ErrorCode.none, None)}
        for key, error in errors.items():
            if error not in (ErrorCode.none, None) and error not in _RETRIABLE:
                self._end(key)
        kept = {k: (g if self.checked and errors[k] is not None else None)   # None: not verified, not checked
                for k, g in self.guards.items() if k not in refused}
        return Verified(self.default, kept, refused)

    def _end(self, key: Key) -> None:
        partition = self.request.broker.logs.partition(*key)
        if partition is not None:
            partition.end_verification(self.producer_id, self.guards[key])
