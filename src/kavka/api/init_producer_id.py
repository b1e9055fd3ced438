"""InitProducerId (key 22): producer ids for idempotent producers.

As in Kafka, a non-transactional producer always gets a fresh producer id at
epoch 0, even when it names its previous id (v3+ ``producer_id`` and
``producer_epoch``: KIP-360 epoch bumps only apply to transactional ids), so
naming another client's id reaches nothing of it.  Ids are random 63-bit
numbers (kavka.producer_ids), not a sequence another client could guess.  Transactions are not supported yet: a transactional id is
refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which clients report as
fatal rather than retrying forever.
"""

from __future__ import annotations

from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode

KEY = 22
VERSIONS = (0, 5)


@api(KEY, "InitProducerId", VERSIONS)
def handle(request: Request):
    r = builder_for(request)
    if request.body.transactional_id is not None:
        return r.InitProducerIdResponse(
            error_code=ErrorCode.transactional_id_authorization_failed, producer_id=-1, producer_epoch=-1)
    new_id = request.broker.producer_ids.allocate()
    return r.InitProducerIdResponse(error_code=ErrorCode.none, producer_id=new_id, producer_epoch=0)
