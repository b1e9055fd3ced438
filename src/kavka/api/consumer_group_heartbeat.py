"""ConsumerGroupHeartbeat (key 68): the consumer protocol of KIP-848.

One request does what JoinGroup, SyncGroup, Heartbeat and LeaveGroup do in the
classic protocol: the member says which topics it subscribes to and which
partitions it owns, and gets back its member epoch and, when it changed, the
partitions it may own now; UNSUPPORTED_VERSION while group.version is 0.  The broker assigns (kavka.group.consumer_group).
Topics travel by id; ids this broker does not know are ignored in the owned
list, as Kafka does.  From v1 the member id is chosen by the client.  With an authorizer, as Kafka:
READ on the group (GROUP_AUTHORIZATION_FAILED) and DESCRIBE on every subscribed topic name
(TOPIC_AUTHORIZATION_FAILED naming the refused ones) before the coordinator is asked.
"""

from __future__ import annotations

import datetime

from kavka.api._groups import client_host, consumer_protocol, coordinated, ms, reply_or_wait
from kavka.api.authorization import Op, Res, group_id, refused, requires
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.group.consumer_group import HeartbeatRequest
from kavka.group.outcome import HeartbeatReply
from kavka.protocol.errors import ErrorCode

KEY = 68
VERSIONS = (0, 1)


@api(KEY, "ConsumerGroupHeartbeat", VERSIONS)
@requires(Op.READ, Res.GROUP, group_id)
@consumer_protocol(off=lambda request: _response(request, HeartbeatReply(ErrorCode.unsupported_version)))
@coordinated(unavailable=lambda request: _response(request, HeartbeatReply(ErrorCode.coordinator_not_available)))
def handle(request: Request, groups):
    body = request.body
    broker = request.broker
    hidden = refused(request, Op.DESCRIBE, Res.TOPIC, body.subscribed_topic_names or ())
    if hidden:
        return _response(request, HeartbeatReply(ErrorCode.topic_authorization_failed,
                                                 message=f"Not authorized to access topics: {sorted(hidden)}"))
    owned = None
    if body.topic_partitions is not None:
        owned = {}
        for tp in body.topic_partitions:
            name = broker.metadata.topic_name_of(tp.topic_id)
            if name is not None:
                owned[name] = owned.get(name, frozenset()) | frozenset(tp.partitions)
    heartbeat = HeartbeatRequest(
        group_id=body.group_id, member_id=body.member_id, member_epoch=body.member_epoch,
        instance_id=body.instance_id, rack_id=body.rack_id, rebalance_timeout_ms=ms(body.rebalance_timeout),
        topics=tuple(body.subscribed_topic_names) if body.subscribed_topic_names is not None else None,
        regex=getattr(body, "subscribed_topic_regex", None), server_assignor=body.server_assignor,
        owned=owned, client_id=request.client_id or "", client_host=client_host(request.peer))
    version = request.version
    return reply_or_wait(groups.run(lambda c: c.consumer_heartbeat(heartbeat, version)),
                         lambda reply: _response(request, reply))


def _response(request: Request, reply: HeartbeatReply):
    r = builder_for(request)
    assignment = None
    if reply.assignment is not None:
        broker = request.broker
        parts = []
        for topic, partitions in sorted(reply.assignment.items()):
            topic_id = broker.metadata.topic_id_of(topic)
            if topic_id is not None and partitions:
                parts.append(r.TopicPartitions(topic_id=topic_id, partitions=tuple(sorted(partitions))))
        assignment = r.Assignment(topic_partitions=tuple(parts))
    member_id = reply.member_id if reply.error == ErrorCode.none else None
    return r.ConsumerGroupHeartbeatResponse(
        error_code=reply.error, error_message=reply.message, member_id=member_id, member_epoch=reply.member_epoch,
        heartbeat_interval=datetime.timedelta(milliseconds=reply.heartbeat_interval_ms), assignment=assignment)
