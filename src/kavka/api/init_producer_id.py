"""InitProducerId (key 22): producer ids for idempotent and transactional producers.

Without a transactional id, as in Kafka, a producer always gets a fresh producer id at
epoch 0, even when it names its previous id (v3+ ``producer_id`` and ``producer_epoch``:
KIP-360 epoch bumps only apply to transactional ids), so naming another client's id
reaches nothing of it.  Ids are random 63-bit numbers (kavka.producer_ids), not a sequence
another client could guess.

With a transactional id the transaction coordinator answers (kavka.txn.coordinator): the
id's producer id with a bumped epoch, fencing any older producer of it; v3+ name the
producer id and epoch of a producer recovering from an error (KIP-360).  PRODUCER_FENCED
is INVALID_PRODUCER_EPOCH before v4.  A broker without a coordinator (only test contexts lack one)
refuses transactional ids with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which clients report
as fatal rather than retrying forever.
"""

from __future__ import annotations

from kavka.api._groups import ms, reply_or_wait
from kavka.api._txn import fenced_as
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode
from kavka.txn.coordinator import InitReply, ProducerIdAndEpoch

KEY = 22
VERSIONS = (0, 5)
FENCED_FROM = 4   # the first version whose clients know PRODUCER_FENCED


@api(KEY, "InitProducerId", VERSIONS)
def handle(request: Request):
    r = builder_for(request)
    body = request.body
    if body.transactional_id is None:
        new_id = request.broker.producer_ids.allocate()
        return r.InitProducerIdResponse(error_code=ErrorCode.none, producer_id=new_id, producer_epoch=0)
    transactions = request.broker.transactions
    if transactions is None:
        return r.InitProducerIdResponse(
            error_code=ErrorCode.transactional_id_authorization_failed, producer_id=-1, producer_epoch=-1)
    expected = None
    if request.version >= 3:
        expected = ProducerIdAndEpoch(body.producer_id, body.producer_epoch)
    timeout_ms = ms(body.transaction_timeout)
    result = transactions.run(lambda c: c.init_producer_id(body.transactional_id, timeout_ms, expected))
    return reply_or_wait(result, lambda reply: _response(r, request.version, reply))


def _response(r, version: int, reply: InitReply):
    return r.InitProducerIdResponse(error_code=fenced_as(reply.error, version, FENCED_FROM),
                                    producer_id=reply.producer_id, producer_epoch=reply.producer_epoch)
