"""FindCoordinator (key 10): which broker coordinates a group or transactional id.

A lone broker coordinates everything it is asked about.  In a cluster a group's
coordinator is the leader of its ``__consumer_offsets`` partition; the topic is
created (through the controller) on the first lookup, with
``offsets.topic.num.partitions`` partitions and up to
``offsets.topic.replication.factor`` replicas, and COORDINATOR_NOT_AVAILABLE is
the answer until a leader is known.  A transactional id's coordinator is likewise
the leader of its ``__transaction_state`` partition (``transaction.state.log.*``).
v0-3 carry one key;
v4+ carry a batch of keys and answer one coordinator each.  Share groups
(key type 2) are not supported.

Advertising this API from v0 matters beyond groups: librdkafka enables LZ4
compression only when FindCoordinator v0 is in the broker's ApiVersions.
"""

from __future__ import annotations

from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode

KEY = 10
VERSIONS = (0, 6)
GROUP, TRANSACTION = 0, 1


@api(KEY, "FindCoordinator", VERSIONS)
async def handle(request: Request):
    r = builder_for(request)
    body, broker = request.body, request.broker
    key_type = getattr(body, "key_type", GROUP)
    keys = tuple(body.coordinator_keys) if request.version >= 4 else (body.key,)
    if key_type == GROUP:
        await broker.admin.ensure_offsets_topic()
    elif key_type == TRANSACTION:
        await broker.admin.ensure_transaction_state_topic()
    answers = []
    for key in keys:
        found = None
        if key_type == GROUP:
            found = broker.metadata.group_coordinator(key)
        elif key_type == TRANSACTION:
            found = broker.metadata.transaction_coordinator(key)
        if key_type not in (GROUP, TRANSACTION):
            error, message = ErrorCode.invalid_request, f"coordinator key type {key_type} is not supported"
        elif found is None:
            error, message = ErrorCode.coordinator_not_available, None
        else:
            error, message = ErrorCode.none, None
        answers.append((key, dict(node_id=found.broker_id if found else -1, host=found.host if found else "",
                                  port=found.port if found else -1, error_code=error, error_message=message)))
    if request.version >= 4:
        return r.FindCoordinatorResponse(coordinators=tuple(r.Coordinator(key=k, **node) for k, node in answers))
    return r.FindCoordinatorResponse(**answers[0][1])
