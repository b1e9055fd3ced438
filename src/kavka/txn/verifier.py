"""Transaction verification (KIP-890): a partition leader asks the transaction coordinator about
a producer's transaction before appending its first transactional batch to a partition.

:class:`TxnVerifier` is what the produce path (``kavka.api.produce_verification``) holds as
``BrokerContext.txn_verifier``.  ``verify`` names one transactional id, its producer id and
epoch, and the partitions about to receive that producer's first transactional batch;
``add`` False asks only whether each partition is in the id's ongoing transaction of that
epoch (AddPartitionsToTxn v4+ with ``verify_only``: TRANSACTION_ABORTABLE when it is not),
``add`` True adds the partitions to it, starting a transaction if none is open (a
transactions-V2 client's Produce v12+, which sends no AddPartitionsToTxn of its own).  The
answer maps each partition to the coordinator's error, at once or as an awaitable: a
cluster's implementation sends AddPartitionsToTxn to the coordinator's broker, so the produce
path never assumes the answer is immediate, and the partition's VerificationGuard
(``kavka.log.producer_state``) keeps an answer that arrives late from letting a batch in after
the transaction ended.

:class:`LocalTxnVerifier` asks this broker's own coordinator, through its runner, so the
request is applied between other coordinator requests like any other.  A partition may also be
answered ``None``: not verified, append as if verification were off (no implementation here
answers so; a coordinator that cannot answer says why, and the produce path retries).  A
cluster wires ``kavka.cluster.txn_verifier.ClusterTxnVerifier``, which asks this broker's
coordinator for the ids it coordinates and the coordinator's broker for the others.

A remote implementation answers as Kafka's AddPartitionsToTxnManager does: NETWORK_EXCEPTION
for every partition when the coordinator's broker cannot be reached or does not answer in
time, COORDINATOR_NOT_AVAILABLE when no live broker leads the id's ``__transaction_state``
partition, INVALID_TXN_STATE when the whole request is refused with
CLUSTER_AUTHORIZATION_FAILED, and otherwise the coordinator's own errors (NOT_COORDINATOR,
PRODUCER_FENCED, TRANSACTION_ABORTABLE ...), which the produce path translates for the
client's version (the retriable ones as NOT_ENOUGH_REPLICAS).
"""

from __future__ import annotations

from typing import Awaitable, Iterable, Protocol, Union

from kavka.protocol.errors import ErrorCode
from kavka.txn.model import TopicPartition

Verdicts = dict[TopicPartition, "ErrorCode | None"]   # None: not verified (see above)


class TxnVerifier(Protocol):
    def verify(self, transactional_id: str, producer_id: int, producer_epoch: int,
               partitions: Iterable[TopicPartition], add: bool) -> Union[Verdicts, Awaitable[Verdicts]]: ...


class LocalTxnVerifier:
    """Verification by this broker's own transaction coordinator (a ``TxnRunner``)."""

    def __init__(self, runner) -> None:
        self.runner = runner

    def verify(self, transactional_id: str, producer_id: int, producer_epoch: int,
               partitions: Iterable[TopicPartition], add: bool) -> Union[Verdicts, Awaitable[Verdicts]]:
        wanted = list(partitions)
        return self.runner.run(lambda c: c.add_partitions(transactional_id, producer_id, producer_epoch, wanted,
                                                          verify_only=not add))
