"""EndTxn (key 26): commit or abort a producer's ongoing transaction.

The coordinator writes PrepareCommit/PrepareAbort and answers; the markers follow in the
background, and until they are all written the next transaction of the id is answered
CONCURRENT_TRANSACTIONS (clients retry).  v5+ hand back the producer id and epoch the
producer continues with: a new epoch after every transaction for a client using
transactions V2 (KIP-890), which needs the cluster's ``transaction.version`` at 2 (the
default, as on a new Kafka 4 cluster).  PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2.
"""

from __future__ import annotations

from kavka.api._groups import reply_or_wait
from kavka.api._txn import client_txn_version, fenced_as, transactional
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode
from kavka.txn.coordinator import InitReply

KEY = 26
VERSIONS = (0, 5)
FENCED_FROM = 2
V2_FROM = 5   # the first version a transactions-V2 client sends


@api(KEY, "EndTxn", VERSIONS)
@transactional(unavailable=lambda request: builder_for(request).EndTxnResponse(
    error_code=ErrorCode.coordinator_not_available, producer_id=-1, producer_epoch=-1))
def handle(request: Request, transactions):
    r = builder_for(request)
    body = request.body
    txn_version = client_txn_version(request, V2_FROM)
    result = transactions.run(lambda c: c.end_txn(body.transactional_id, body.producer_id, body.producer_epoch,
                                                  body.committed, txn_version))
    return reply_or_wait(result, lambda reply: _response(r, request.version, reply))


def _response(r, version: int, reply: InitReply):
    return r.EndTxnResponse(error_code=fenced_as(reply.error, version, FENCED_FROM),
                            producer_id=reply.producer_id, producer_epoch=reply.producer_epoch)
