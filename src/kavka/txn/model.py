"""A transactional id's state, as the coordinator keeps it and ``__transaction_state`` stores it.

Kafka's states, with their ids in the log and their names in DescribeTransactions and
ListTransactions.  A transaction goes Empty → Ongoing (first AddPartitionsToTxn) →
PrepareCommit or PrepareAbort (EndTxn, or the coordinator aborting a timed-out or fenced
one) → CompleteCommit / CompleteAbort once every partition holds its marker, and the next
transaction starts from there.  Kafka's PrepareEpochFence is only ever an in-memory pending
state of its coordinator; kavka decides and writes in one step, so it never holds it, but
the id is reserved and a record carrying it is read as an abort in preparation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum

# An epoch this high cannot be bumped again (Kafka: Short.MaxValue - 1); the producer
# id is replaced instead, starting again at epoch 0.
MAX_EPOCH = 32766
NO_PRODUCER_ID = -1


class TxnState(IntEnum):
    EMPTY = 0
    ONGOING = 1
    PREPARE_COMMIT = 2
    PREPARE_ABORT = 3
    COMPLETE_COMMIT = 4
    COMPLETE_ABORT = 5
    DEAD = 6
    PREPARE_EPOCH_FENCE = 7

    @property
    def kafka_name(self) -> str:
        return _NAMES[self]

    @classmethod
    def from_kafka_name(cls, name: str) -> "TxnState | None":
        return _BY_NAME.get(name)

    @property
    def preparing(self) -> bool:
        return self in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT)

    @property
    def completed(self) -> bool:
        """No transaction is open: the id may start a new one or be expired."""
        return self in (TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT)


_NAMES = {
    TxnState.EMPTY: "Empty", TxnState.ONGOING: "Ongoing",
    TxnState.PREPARE_COMMIT: "PrepareCommit", TxnState.PREPARE_ABORT: "PrepareAbort",
    TxnState.COMPLETE_COMMIT: "CompleteCommit", TxnState.COMPLETE_ABORT: "CompleteAbort",
    TxnState.DEAD: "Dead", TxnState.PREPARE_EPOCH_FENCE: "PrepareEpochFence",
}
_BY_NAME = {name: state for state, name in _NAMES.items()}

# Kafka's TransactionState.validPreviousStates: the transitions a coordinator may make.
VALID_PREVIOUS: dict[TxnState, frozenset[TxnState]] = {
    TxnState.EMPTY: frozenset({TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT}),
    TxnState.ONGOING: frozenset({TxnState.ONGOING, TxnState.EMPTY,
                                 TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT}),
    TxnState.PREPARE_COMMIT: frozenset({TxnState.ONGOING}),
    TxnState.PREPARE_ABORT: frozenset({TxnState.ONGOING, TxnState.PREPARE_EPOCH_FENCE,
                                       TxnState.EMPTY, TxnState.COMPLETE_COMMIT,
                                       TxnState.COMPLETE_ABORT}),
    TxnState.COMPLETE_COMMIT: frozenset({TxnState.PREPARE_COMMIT}),
    TxnState.COMPLETE_ABORT: frozenset({TxnState.PREPARE_ABORT}),
    TxnState.DEAD: frozenset({TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT}),
    TxnState.PREPARE_EPOCH_FENCE: frozenset({TxnState.ONGOING}),
}

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True)
class TxnMetadata:
    """Everything one record of ``__transaction_state`` says about a transactional id.

    ``previous_producer_id`` is the id before an epoch exhaustion replaced it, and
    ``next_producer_id`` the id a transaction in preparation will hand over when it
    completes (transactions V2 with an exhausted epoch).  ``last_producer_epoch`` is not
    stored by Kafka's value either; it lets a retried InitProducerId of the previous epoch
    be recognised while the coordinator stays leader (-1 after a load)."""
    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState
    partitions: frozenset[TopicPartition] = frozenset()
    last_update_ms: int = -1
    start_ms: int = -1
    previous_producer_id: int = NO_PRODUCER_ID
    next_producer_id: int = NO_PRODUCER_ID
    client_txn_version: int = 0
    last_producer_epoch: int = field(default=-1, compare=False)

    def moved(self, state: TxnState, now_ms: int, **changes) -> "TxnMetadata":
        """This id in ``state`` at ``now_ms``; a transition Kafka forbids is a bug here."""
        if self.state not in VALID_PREVIOUS[state]:
            raise AssertionError(f"transaction {self.transactional_id!r}: "
                                 f"{self.state.kafka_name} -> {state.kafka_name} is not a valid transition")
        return replace(self, state=state, last_update_ms=now_ms, **changes)
