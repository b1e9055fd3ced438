"""CreatePartitions (key 37): add partitions to existing topics.

Per topic, in Kafka's order (then the partition caps, POLICY_VIOLATION as in
CreateTopics): a name given twice is INVALID_REQUEST (reported
once); an unknown topic UNKNOWN_TOPIC_OR_PARTITION; a count that is not an
increase INVALID_PARTITIONS; manual assignments must cover exactly the new
partitions, each with the topic's replica count of distinct, live brokers
(INVALID_REPLICA_ASSIGNMENT).  ``validate_only`` checks and changes nothing.

With an authorizer, a topic needs ALTER on it (TOPIC_AUTHORIZATION_FAILED, after the duplicate
check and before its existence is looked at, kavka.api.authorization).

Stricter than Kafka: an internal topic (kavka.internal_topics) cannot grow
(INVALID_TOPIC_EXCEPTION).  A group's partition is its id's hash modulo the
partition count, so more partitions would send groups to partitions that do
not hold their offsets.
"""

from __future__ import annotations

from kavka.api.create_topics import check_assignments, check_request_cap, live_broker_ids, unique_topics
from kavka.api.authorization import AUTHORIZATION_FAILED, Op, Res, allowed
from kavka.api.errors import (InvalidReplicaAssignment, InvalidRequestError, TopicAuthorizationFailed, error_code_for,
                              error_message)
from kavka.api.quotas import MutationQuota
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.internal_topics import is_internal
from kavka.log.errors import InvalidPartitions, InvalidTopic, LogError, UnknownTopicOrPartition
from kavka.protocol.errors import ErrorCode

KEY = 37
VERSIONS = (0, 3)
STRICT_QUOTA_SINCE = 3   # controller_mutation_rate refuses topics from v3 on (KIP-599)


@api(KEY, "CreatePartitions", VERSIONS)
async def handle(request: Request):
    r = builder_for(request)
    body, broker = request.body, request.broker
    results = []
    adding = 0
    quota = MutationQuota(request, STRICT_QUOTA_SINCE)
    for topic, duplicate in unique_topics(body.topics):
        code, message = ErrorCode.none, None
        try:
            if duplicate:
                raise InvalidRequestError("Duplicate topic name.")
            if not allowed(request, Op.ALTER, Res.TOPIC, topic.name):
                raise TopicAuthorizationFailed(AUTHORIZATION_FAILED)
            assignments, added = _check_growth(broker, topic)
            check_request_cap(broker, adding + added)
            broker.admin.check_add_partitions(topic.name, topic.count, assignments)
            if (throttled := quota.refusal()) is not None:
                results.append(r.CreatePartitionsTopicResult(name=topic.name, error_code=throttled[0],
                                                             error_message=throttled[1]))
                continue
            adding += added
            if not body.validate_only:
                quota.record(added)
                result = await broker.admin.add_partitions(topic.name, topic.count, assignments)
                code, message = result.error, result.message
        except (LogError, ValueError) as exc:
            code, message = error_code_for(exc), error_message(exc)
        results.append(r.CreatePartitionsTopicResult(name=topic.name, error_code=code, error_message=message))
    return r.CreatePartitionsResponse(results=tuple(results), throttle_time=quota.throttle_time())


def _check_growth(broker, topic):
    """(manual assignments or None, partitions added), after Kafka's checks of the request."""
    info = broker.metadata.topic(topic.name)
    if info is None:
        raise UnknownTopicOrPartition(f"Topic '{topic.name}' does not exist.")
    _refuse_internal(topic.name)
    current = info.partitions
    if topic.count <= current:
        raise InvalidPartitions(f"Topic currently has {current} partitions, {topic.count} must be greater")
    added = topic.count - current
    if topic.assignments is None:
        return None, added
    if len(topic.assignments) != added:
        raise InvalidReplicaAssignment(
            f"Attempted to add {added} additional partition(s), but only "
            f"{len(topic.assignments)} assignment(s) were specified.")
    pairs = [(current + i, tuple(a.broker_ids)) for i, a in enumerate(topic.assignments)]
    check_assignments(pairs, live_broker_ids(broker), current, info.replication_factor)
    return dict(pairs), added


def _refuse_internal(name: str) -> None:
    if is_internal(name):
        raise InvalidTopic(f"The partition count of internal topic {name} cannot be changed: "
                           "groups would move to partitions without their state.")
