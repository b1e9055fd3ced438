"""ConsumerGroupDescribe (key 69): groups of the consumer protocol (KIP-848).

Per group its state, epochs and assignor; per member its epoch, subscription,
current assignment and target assignment.  A classic group or an unknown id is
GROUP_ID_NOT_FOUND (DescribeGroups answers classic groups); every group is
UNSUPPORTED_VERSION while group.version is 0, as on Kafka.  With an authorizer, a group the
principal may not DESCRIBE is GROUP_AUTHORIZATION_FAILED; authorized operations are answered
when asked (kavka.api.authorization).
"""

from __future__ import annotations

from kavka.api._groups import consumer_protocol, coordinated
from kavka.api.authorization import Op, Res, allowed, authorized_operations
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.group.consumer_group import to_map
from kavka.protocol.errors import ErrorCode

KEY = 69
VERSIONS = (0, 1)
MEMBER_TYPE_CONSUMER = 1


@api(KEY, "ConsumerGroupDescribe", VERSIONS)
@consumer_protocol(off=lambda request: _unsupported(request))
@coordinated(unavailable=lambda request: _answer(
    request, lambda _: (ErrorCode.coordinator_not_available, None, None)))
def handle(request: Request, groups):
    return _answer(request, lambda group_id: groups.query(lambda c: c.describe_consumer_group(group_id)))


def _unsupported(request: Request):
    """Every group UNSUPPORTED_VERSION, the other fields at their defaults, as Kafka's error response."""
    r = builder_for(request)
    return r.ConsumerGroupDescribeResponse(groups=tuple(
        r.DescribedGroup(error_code=ErrorCode.unsupported_version, group_id=g, group_state="", group_epoch=0,
                         assignment_epoch=0, assignor_name="", members=()) for g in request.body.group_ids))


def _answer(request: Request, describe):
    """The response, with ``describe(group_id)`` giving each group's (error, message, group)."""
    r = builder_for(request)
    described = []
    for group_id in request.body.group_ids:
        if allowed(request, Op.DESCRIBE, Res.GROUP, group_id):
            error, message, group = describe(group_id)
        else:
            error, message, group = ErrorCode.group_authorization_failed, None, None
        if group is None:
            described.append(r.DescribedGroup(error_code=error, error_message=message, group_id=group_id,
                                              group_state="Dead" if error == ErrorCode.group_id_not_found else "",
                                              group_epoch=-1, assignment_epoch=-1, assignor_name="", members=()))
            continue
        described.append(r.DescribedGroup(
            error_code=ErrorCode.none, group_id=group_id, group_state=group.state,
            group_epoch=group.value.group_epoch, assignment_epoch=group.value.assignment_epoch,
            assignor_name=group.value.assignor,
            authorized_operations=authorized_operations(request, Res.GROUP, group_id,
                                                        asked=request.body.include_authorized_operations),
            members=tuple(_member(request, r, group, member_id, m) for member_id, m in group.members.items())))
    return r.ConsumerGroupDescribeResponse(groups=tuple(described))


def _member(request: Request, r, group, member_id: str, m):
    return r.Member(
        member_id=member_id, instance_id=m.instance_id, rack_id=m.rack_id, member_epoch=m.member_epoch,
        client_id=m.client_id, client_host=m.client_host, subscribed_topic_names=m.topics,
        subscribed_topic_regex=m.regex, assignment=_assignment(request, r, to_map(m.assigned)),
        target_assignment=_assignment(request, r, group.target_of(member_id)), member_type=MEMBER_TYPE_CONSUMER)


def _assignment(request: Request, r, assignment):
    broker = request.broker
    parts = []
    for topic, partitions in sorted(assignment.items()):
        topic_id = broker.metadata.topic_id_of(topic)
        if topic_id is not None:
            parts.append(r.TopicPartitions(topic_id=topic_id, topic_name=topic,
                                           partitions=tuple(sorted(partitions))))
    return r.Assignment(topic_partitions=tuple(parts))
