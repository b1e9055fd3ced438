"""AddOffsetsToTxn (key 25): a consumer group's offsets join a producer's transaction.

The group's ``__consumer_offsets`` partition becomes one of the transaction's partitions,
so the offsets TxnOffsetCommit sends count only once the transaction commits.
PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2.
"""

from __future__ import annotations

from kavka.api._groups import reply_or_wait
from kavka.api._txn import fenced_as, transactional
from kavka.api.authorization import Op, Res, group_id, requires, transactional_id
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode

KEY = 25
VERSIONS = (0, 4)
FENCED_FROM = 2


@api(KEY, "AddOffsetsToTxn", VERSIONS)
@requires(Op.WRITE, Res.TRANSACTIONAL_ID, transactional_id)
@requires(Op.READ, Res.GROUP, group_id)
@transactional(unavailable=lambda request: builder_for(request).AddOffsetsToTxnResponse(
    error_code=ErrorCode.coordinator_not_available))
def handle(request: Request, transactions):
    r = builder_for(request)
    body = request.body
    result = transactions.run(lambda c: c.add_offsets(body.transactional_id, body.producer_id,
                                                      body.producer_epoch, body.group_id))
    return reply_or_wait(result, lambda error: r.AddOffsetsToTxnResponse(
        error_code=fenced_as(error, request.version, FENCED_FROM)))
