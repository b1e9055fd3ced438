"""DescribeTransactions (key 65): the state of transactional ids this broker coordinates.

Each id is answered on its own: its state, timeout, start time (-1 before its first
transaction), producer id and epoch and the partitions of its transaction; an id this
broker does not hold is TRANSACTIONAL_ID_NOT_FOUND, one it does not coordinate
NOT_COORDINATOR, one whose partition is still loading COORDINATOR_LOAD_IN_PROGRESS; with an
authorizer, one the principal may not DESCRIBE TRANSACTIONAL_ID_AUTHORIZATION_FAILED.
"""

from __future__ import annotations

import datetime

from kavka.api._txn import transactional
from kavka.api.authorization import Op, Res, allowed
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode
from kavka.txn.model import TxnMetadata

KEY = 65
VERSIONS = (0, 0)
_UTC = datetime.timezone.utc
_MS = datetime.timedelta(milliseconds=1)


def _unavailable(request: Request):
    return _response(request, [(tid, ErrorCode.coordinator_not_available, None)
                               for tid in request.body.transactional_ids])


@api(KEY, "DescribeTransactions", VERSIONS)
@transactional(unavailable=_unavailable)
def handle(request: Request, transactions):
    found = [(tid, *transactions.query(lambda c, tid=tid: c.describe(tid)))
             if allowed(request, Op.DESCRIBE, Res.TRANSACTIONAL_ID, tid)
             else (tid, ErrorCode.transactional_id_authorization_failed, None)
             for tid in request.body.transactional_ids]
    return _response(request, found)


def _response(request: Request, found):
    r = builder_for(request)
    return r.DescribeTransactionsResponse(transaction_states=tuple(
        _state(r, tid, error, meta) for tid, error, meta in found))


def _state(r, transactional_id: str, error: ErrorCode, meta: TxnMetadata | None):
    if meta is None:
        return r.TransactionState(error_code=error, transactional_id=transactional_id, transaction_state="",
                                  transaction_timeout=0 * _MS, transaction_start_time=_time(0),
                                  producer_id=0, producer_epoch=0, topics=())
    by_topic: dict[str, list[int]] = {}
    for topic, index in sorted(meta.partitions):
        by_topic.setdefault(topic, []).append(index)
    return r.TransactionState(
        error_code=error, transactional_id=transactional_id, transaction_state=meta.state.kafka_name,
        transaction_timeout=meta.timeout_ms * _MS, transaction_start_time=_time(meta.start_ms),
        producer_id=meta.producer_id, producer_epoch=meta.producer_epoch,
        topics=tuple(r.TopicData(topic=topic, partitions=tuple(parts)) for topic, parts in by_topic.items()))


def _time(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, _UTC)
