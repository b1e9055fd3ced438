"""ListTransactions (key 66): the transactional ids this broker coordinates.

Filters combine: states by Kafka's names (a name Kafka does not know comes back in
``unknown_state_filters``), producer ids, and (v1+) ``duration_filter``: only transactions
open at least that many milliseconds (-1: any).  While a ``__transaction_state`` partition
is loading the answer is COORDINATOR_LOAD_IN_PROGRESS, as Kafka's.  With an authorizer,
only the ids the principal may DESCRIBE are listed (kavka.api.authorization).
"""

from __future__ import annotations

from kavka.api._txn import transactional
from kavka.api.authorization import Op, Res, refused
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode

KEY = 66
VERSIONS = (0, 1)


@api(KEY, "ListTransactions", VERSIONS)
@transactional(unavailable=lambda request: builder_for(request).ListTransactionsResponse(
    error_code=ErrorCode.coordinator_not_available, unknown_state_filters=(), transaction_states=()))
def handle(request: Request, transactions):
    r = builder_for(request)
    body = request.body
    if transactions.query(lambda c: c.loading):
        return r.ListTransactionsResponse(error_code=ErrorCode.coordinator_load_in_progress,
                                          unknown_state_filters=(), transaction_states=())
    duration = getattr(body, "duration_filter", -1)
    found, unknown = transactions.query(lambda c: c.list(body.state_filters, body.producer_id_filters, duration))
    hidden = refused(request, Op.DESCRIBE, Res.TRANSACTIONAL_ID, (meta.transactional_id for meta in found))
    return r.ListTransactionsResponse(
        error_code=ErrorCode.none, unknown_state_filters=tuple(unknown), transaction_states=tuple(
            r.TransactionState(transactional_id=meta.transactional_id, producer_id=meta.producer_id,
                               transaction_state=meta.state.kafka_name)
            for meta in found if meta.transactional_id not in hidden))
