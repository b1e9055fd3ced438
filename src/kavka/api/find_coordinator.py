"""FindCoordinator (key 10): which broker coordinates a group or transactional id.

A lone broker coordinates everything it is asked about.  In a cluster a group's
coordinator is the leader of its ``__consumer_offsets`` partition; the topic is
created (through the controller) on the first lookup, with
``offsets.topic.num.partitions`` partitions and up to
``offsets.topic.replication.factor`` replicas, and COORDINATOR_NOT_AVAILABLE is
the answer until a leader is known.  Transactions are not supported in a
cluster yet (COORDINATOR_NOT_AVAILABLE).  v0-3 carry one key;
v4+ carry a batch of keys and answer one coordinator each.  Share groups
(key type 2) are not supported.

Advertising this API from v0 matters beyond groups: librdkafka enables LZ4
compression only when FindCoordinator v0 is in the broker's ApiVersions.
"""

from __future__ import annotations

from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.internal_topics import OFFSETS_TOPIC
from kavka.protocol.errors import ErrorCode

KEY = 10
VERSIONS = (0, 6)
GROUP, TRANSACTION = 0, 1


@api(KEY, "FindCoordinator", VERSIONS)
def handle(request: Request):
    if request.broker.cluster is not None:
        return _in_cluster(request)
    r = builder_for(request)
    body, broker = request.body, request.broker
    key_type = getattr(body, "key_type", GROUP)
    error = ErrorCode.none if key_type in (GROUP, TRANSACTION) else ErrorCode.invalid_request
    message = None if error == ErrorCode.none else f"coordinator key type {key_type} is not supported"
    node = dict(node_id=broker.node_id if not error else -1, host=broker.host if not error else "",
                port=broker.port if not error else -1, error_code=error, error_message=message)
    if request.version >= 4:
        return r.FindCoordinatorResponse(
            coordinators=tuple(r.Coordinator(key=key, **node) for key in body.coordinator_keys))
    return r.FindCoordinatorResponse(**node)


async def _in_cluster(request: Request):
    r = builder_for(request)
    body, broker = request.body, request.broker
    cluster = broker.cluster
    key_type = getattr(body, "key_type", GROUP)
    keys = tuple(body.coordinator_keys) if request.version >= 4 else (body.key,)
    if key_type == GROUP and cluster.topic(OFFSETS_TOPIC) is None and cluster.live_broker_ids():
        config = broker.config
        await cluster.create_topic_anywhere(
            OFFSETS_TOPIC, config.get("offsets.topic.num.partitions"),
            min(config.get("offsets.topic.replication.factor"), len(cluster.live_broker_ids())), None,
            {"cleanup.policy": "compact", "segment.bytes": str(config.get("offsets.topic.segment.bytes"))})
    answers = []
    for key in keys:
        found = cluster.coordinator_of(key) if key_type == GROUP else None
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
