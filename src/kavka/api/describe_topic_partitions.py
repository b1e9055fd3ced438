"""DescribeTopicPartitions (key 75): topics and their partitions, paginated (KIP-966).

Kafka 4's ``kafka-topics --describe`` and AdminClient.describeTopics use it in
place of Metadata.  The semantics are Kafka's:

* no topics named means every topic; named topics are answered once each;
* topics are answered in name order, starting at the cursor's topic (and, for
  that topic, at the cursor's partition); a cursor whose topic is not among the
  named ones is INVALID_REQUEST for every named topic;
* at most ``min(response_partition_limit, max.request.partition.size.limit)``
  partitions are described; when the limit stops the answer inside a topic,
  ``next_cursor`` points at the first partition left out, and when it stops
  exactly at a topic's end with topics left, at partition 0 of the next one;
* a named topic that does not exist is UNKNOWN_TOPIC_OR_PARTITION (or
  INVALID_TOPIC_EXCEPTION for an illegal name), with the null topic id; when
  asking for all topics there are none such;
* eligible leader replicas and last known ELR are empty: kavka does not run
  ELR (eligible.leader.replicas.version 0), as Kafka 4.0 by default;
* authorized operations are always reported (the request has no flag): without
  an authorizer that is everything a topic supports.
"""

from __future__ import annotations

import uuid

from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.internal_topics import INTERNAL_TOPICS
from kavka.api.authorization import Op, Res, authorized_operations, refused
from kavka.log.errors import InvalidTopic
from kavka.log.topic_catalog import validate_topic_name
from kavka.protocol.errors import ErrorCode

KEY = 75
VERSIONS = (0, 0)
NO_TOPIC_ID = uuid.UUID(int=0)


@api(KEY, "DescribeTopicPartitions", VERSIONS)
def handle(request: Request):
    r = builder_for(request)
    body, view = request.body, request.broker.metadata
    cursor = body.cursor
    after = cursor.topic_name if cursor is not None else ""
    fetch_all = not body.topics
    named = view.topic_names() if fetch_all else [t.name for t in body.topics]
    hidden = refused(request, Op.DESCRIBE, Res.TOPIC, named)
    wanted = sorted({name for name in named if name >= after and not (fetch_all and name in hidden)})
    if cursor is not None and not fetch_all and cursor.topic_name not in wanted:
        return _invalid_request(r, body.topics)
    limit = min(body.response_partition_limit, request.broker.config.get("max.request.partition.size.limit"))
    topics, next_cursor = _page(r, request, wanted, cursor, limit, hidden)
    return r.DescribeTopicPartitionsResponse(topics=tuple(topics), next_cursor=next_cursor)


def _page(r, request: Request, wanted: list[str], cursor, limit: int, hidden: frozenset[str]):
    """The topics of one page and the cursor of the next (None when nothing is left).  A named
    topic the principal may not DESCRIBE is TOPIC_AUTHORIZATION_FAILED, existing or not."""
    view, fetch_all = request.broker.metadata, not request.body.topics
    topics, remaining = [], limit
    for name in wanted:
        if remaining <= 0:
            return topics, r.Cursor(topic_name=name, partition_index=0)
        if name in hidden:
            topics.append(_error_topic(r, request, name, ErrorCode.topic_authorization_failed))
            continue
        t = view.topic(name)
        if t is None:
            if not fetch_all:
                topics.append(_missing(r, request, name))
            continue
        start = cursor.partition_index if cursor is not None and name == cursor.topic_name else 0
        end = min(t.partitions, start + remaining)
        topic = _topic(r, request, t, range(start, end))
        topics.append(topic)
        if end < t.partitions:
            return topics, r.Cursor(topic_name=name, partition_index=end)
        remaining -= len(topic.partitions)
    return topics, None


def _topic(r, request: Request, t, indexes: range):
    view = request.broker.metadata
    partitions = tuple(p for index in indexes if (p := _partition(r, view, t.name, index)) is not None)
    return r.DescribeTopicPartitionsResponseTopic(
        error_code=ErrorCode.none, name=t.name, topic_id=t.topic_id, is_internal=t.name in INTERNAL_TOPICS,
        partitions=partitions, topic_authorized_operations=authorized_operations(request, Res.TOPIC, t.name))


def _partition(r, view, name: str, index: int):
    p = view.partition(name, index)
    if p is None:
        return None
    return r.DescribeTopicPartitionsResponsePartition(
        error_code=ErrorCode.none, partition_index=index, leader_id=p.leader, leader_epoch=p.leader_epoch,
        replica_nodes=p.replicas, isr_nodes=p.isr, eligible_leader_replicas=(), last_known_elr=(),
        offline_replicas=p.offline)


def _missing(r, request: Request, name: str):
    try:
        validate_topic_name(name)
        code = ErrorCode.unknown_topic_or_partition
    except InvalidTopic:
        code = ErrorCode.invalid_topic_exception
    return _error_topic(r, request, name, code)


def _error_topic(r, request: Request, name: str, code: ErrorCode):
    return r.DescribeTopicPartitionsResponseTopic(
        error_code=code, name=name, topic_id=NO_TOPIC_ID, is_internal=name in INTERNAL_TOPICS, partitions=(),
        topic_authorized_operations=authorized_operations(request, Res.TOPIC, name))


def _invalid_request(r, requested):
    """Kafka's error response: every named topic, in request order, with the error."""
    topics = tuple(r.DescribeTopicPartitionsResponseTopic(
        error_code=ErrorCode.invalid_request, name=t.name, topic_id=NO_TOPIC_ID, is_internal=False, partitions=(),
        topic_authorized_operations=-(2**31)) for t in requested)
    return r.DescribeTopicPartitionsResponse(topics=topics, next_cursor=None)
