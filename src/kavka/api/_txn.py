"""Helpers shared by the transaction APIs (InitProducerId with a transactional id,
AddPartitionsToTxn ... ListTransactions).

The coordinator lives on the BrokerContext as ``transactions`` (a TxnRunner); a broker
without one (only test contexts lack one) answers COORDINATOR_NOT_AVAILABLE, except InitProducerId,
which keeps refusing transactional ids (TRANSACTIONAL_ID_AUTHORIZATION_FAILED, fatal to
clients rather than retried for ever).  ``@transactional(unavailable=...)`` does that check
once for every API, as ``kavka.api._groups.coordinated`` does for groups.

PRODUCER_FENCED (error 90) is newer than some request versions; their clients are told
INVALID_PRODUCER_EPOCH instead, at the versions Kafka's KafkaApis does (:func:`fenced_as`).
"""

from __future__ import annotations

from typing import Any, Callable

from kavka.api._groups import coordinated
from kavka.metadata.features import TRANSACTION_VERSION
from kavka.protocol.errors import ErrorCode
from kavka.txn.coordinator import TXN_V2


def transactional(unavailable: Callable[[Any], Any]):
    """Call ``handler(request, transactions)``, or answer ``unavailable(request)`` when the
    broker has no transaction coordinator."""
    return coordinated(unavailable, runner="transactions")


def fenced_as(error: ErrorCode, version: int, first_fenced_version: int) -> ErrorCode:
    """``error`` as a client of request ``version`` understands it: PRODUCER_FENCED exists
    from ``first_fenced_version`` on, before it the answer is INVALID_PRODUCER_EPOCH."""
    if error == ErrorCode.producer_fenced and version < first_fenced_version:
        return ErrorCode.invalid_producer_epoch
    return error


def client_txn_version(request, first_v2_version: int) -> int:
    """The client's transaction version (KIP-890): 2 when it sends a request version made for
    transactions V2 while the cluster's ``transaction.version`` feature allows it, else 0."""
    level = request.broker.metadata.finalized_features().level(TRANSACTION_VERSION)
    return TXN_V2 if request.version >= first_v2_version and level >= TXN_V2 else 0
