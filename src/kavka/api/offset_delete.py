"""OffsetDelete (key 47): delete committed offsets of partitions a group no longer reads.

Refused per partition with GROUP_SUBSCRIBED_TO_TOPIC while a consumer group's
members subscribe to the topic, and for the whole group with NON_EMPTY_GROUP
for other protocol types that have members.  With an authorizer, as Kafka: DELETE on the
group (GROUP_AUTHORIZATION_FAILED) and READ on each topic (its partitions
TOPIC_AUTHORIZATION_FAILED, their offsets kept).
"""

from __future__ import annotations

from kavka.api._groups import coordinated, reply_or_wait
from kavka.api.authorization import Op, Res, group_id, refused, requires
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode

KEY = 47
VERSIONS = (0, 0)


@api(KEY, "OffsetDelete", VERSIONS)
@requires(Op.DELETE, Res.GROUP, group_id)
@coordinated(unavailable=lambda request: _response(request, ErrorCode.coordinator_not_available, {}))
def handle(request: Request, groups):
    body = request.body
    denied = refused(request, Op.READ, Res.TOPIC, (t.name for t in body.topics))
    refusals = {(t.name, p.partition_index): ErrorCode.topic_authorization_failed
                for t in body.topics if t.name in denied for p in t.partitions}
    wanted = [(t.name, p.partition_index) for t in body.topics if t.name not in denied for p in t.partitions]
    result = groups.run(lambda c: c.delete_offsets(body.group_id, wanted))
    return reply_or_wait(result, lambda result: _response(request, result[0], {**result[1], **refusals}))


def _response(request: Request, error, errors):
    r = builder_for(request)
    body = request.body
    if error != ErrorCode.none:
        return r.OffsetDeleteResponse(error_code=error, topics=())
    topics = tuple(
        r.OffsetDeleteResponseTopic(name=t.name, partitions=tuple(
            r.OffsetDeleteResponsePartition(partition_index=p.partition_index,
                                            error_code=errors[(t.name, p.partition_index)])
            for p in t.partitions))
        for t in body.topics)
    return r.OffsetDeleteResponse(error_code=ErrorCode.none, topics=topics)
