"""Metadata (key 3): brokers, topics, partitions and their leaders.

A single broker leads every partition.  Unknown topics are created on the fly
when ``auto.create.topics.enable`` is on and the client allows it (v4+ carries
``allow_auto_topic_creation``; older versions always allow it), as Kafka does.

The answer comes from the metadata view (kavka.metadata): every live broker,
the controller, and per partition its leader, leader epoch, replicas, ISR and
offline replicas; auto-creation is the topic admin's (a cluster's controller).

A topic named more than once is answered once (Kafka collects the requested
names into a set).  A request naming more than ``slicing.SLICE`` topics, or
asking for all of more than that many, is answered in slices with the event
loop given back between them (kavka.api.slicing); the decoder has already
refused more than 100,000 names (kavka.protocol.schema_walk).

With an authorizer (kavka.api.authorization), as Kafka: asking for all topics lists only
those the principal may DESCRIBE; a named topic it may not describe is
TOPIC_AUTHORIZATION_FAILED whether it exists or not; auto-creation needs CREATE on the
cluster or on the topic (else TOPIC_AUTHORIZATION_FAILED); ``include_*_authorized_operations``
are answered from its ACLs.
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from kavka.api.authorization import NOT_REQUESTED, Op, Res, allowed, authorized_operations, cluster_allowed, refused
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.api.slicing import SLICE, encode_steps, map_steps, run_sliced, run_steps, unique
from kavka.internal_topics import INTERNAL_TOPICS, is_reserved
from kavka.metadata import NewTopic
from kavka.protocol.errors import ErrorCode

log = logging.getLogger("kavka.api")

KEY = 3
VERSIONS = (0, 13)


@api(KEY, "Metadata", VERSIONS)
def handle(request: Request):
    body, broker = request.body, request.broker
    view = broker.metadata
    r = builder_for(request)
    if body.topics is None or (request.version == 0 and not body.topics):
        names = view.topic_names()
        hidden = refused(request, Op.DESCRIBE, Res.TOPIC, names)
        wanted = [name for name in names if name not in hidden] if hidden else names
        return _answer(r, request, map_steps(lambda name: _describe(r, request, name), wanted), len(wanted))
    allow_create = getattr(body, "allow_auto_topic_creation", True) and broker.config.get("auto.create.topics.enable")
    wanted = unique(body.topics, _topic_key)
    missing = [name for t in wanted if (name := getattr(t, "name", None)) is not None
               and view.topic(name) is None and allow_create and not is_reserved(name)
               and allowed(request, Op.DESCRIBE, Res.TOPIC, name)]
    not_creatable = {} if not missing or cluster_allowed(request, Op.CREATE) else {
        name: ErrorCode.topic_authorization_failed for name in refused(request, Op.CREATE, Res.TOPIC, missing)}
    missing = [name for name in missing if name not in not_creatable]
    steps = map_steps(lambda topic: _lookup(r, request, topic, allow_create, not_creatable), wanted)
    if missing:
        return _create_then_answer(r, request, wanted, missing, allow_create, not_creatable)
    return _answer(r, request, steps, len(wanted))


def _answer(r, request: Request, steps, cost: int):
    if cost <= SLICE:
        return _response(r, request, run_steps(steps))
    return _sliced_response(r, request, steps)


async def _create_then_answer(r, request: Request, wanted, missing: list[str], allow_create: bool,
                              failed: dict):
    """Auto-creation (num.partitions, default.replication.factor up to the live brokers), then the answer."""
    broker = request.broker
    rf = min(broker.config.get("default.replication.factor"), max(len(broker.metadata.live_broker_ids()), 1))
    topics = [NewTopic(name, broker.config.get("num.partitions"), rf, {}) for name in dict.fromkeys(missing)]
    failed = dict(failed)
    for topic, result in zip(topics, await broker.admin.create_topics(topics)):
        if result.ok or result.error == ErrorCode.topic_already_exists:
            log.info("auto-created topic %s for %s", topic.name, request.client_id)
        else:
            failed[topic.name] = _creation_error(result.error)
    answer = _answer(r, request, map_steps(lambda topic: _lookup(r, request, topic, allow_create, failed), wanted),
                     len(wanted))
    return await answer if asyncio.iscoroutine(answer) else answer


def _creation_error(code: ErrorCode) -> ErrorCode:
    """A creation the controller could not make now is retriable: LEADER_NOT_AVAILABLE."""
    if code in (ErrorCode.not_controller, ErrorCode.request_timed_out):
        return ErrorCode.leader_not_available
    return code


async def _sliced_response(r, request: Request, steps):
    return await run_sliced(encode_steps(_response(r, request, await run_sliced(steps)), "topics"))


def _response(r, request: Request, topics: list):
    view = request.broker.metadata
    brokers = tuple(r.MetadataResponseBroker(node_id=b.broker_id, host=host, port=port, rack=b.rack)
                    for b in view.brokers() for host, port in (b.on(request.listener),))
    return r.MetadataResponse(
        error_code=ErrorCode.none, brokers=brokers, cluster_id=view.cluster_id,
        controller_id=view.controller_id(), topics=tuple(topics),
        cluster_authorized_operations=authorized_operations(
            request, Res.CLUSTER, asked=getattr(request.body, "include_cluster_authorized_operations", False)))


def _topic_key(topic) -> tuple:
    return getattr(topic, "name", None), getattr(topic, "topic_id", None)


def _lookup(r, request: Request, wanted, allow_create: bool, failed: dict):
    view = request.broker.metadata
    name = getattr(wanted, "name", None)
    topic_id = getattr(wanted, "topic_id", None)
    if name is None and topic_id is not None and topic_id.int != 0:
        t = view.topic_by_id(topic_id)
        if t is None:
            return _error(r, None, ErrorCode.unknown_topic_id, topic_id)
        name = t.name
    if name is None:
        return _error(r, None, ErrorCode.invalid_request)
    if not allowed(request, Op.DESCRIBE, Res.TOPIC, name):   # not even whether it exists
        return _error(r, None if topic_id is not None and topic_id.int != 0 else name,
                      ErrorCode.topic_authorization_failed, topic_id)
    if name in failed:
        return _error(r, name, failed[name])
    if view.topic(name) is None:
        return _error(r, name, ErrorCode.unknown_topic_or_partition)
    return _describe(r, request, name)


def _describe(r, request: Request, name: str):
    view = request.broker.metadata
    t = view.topic(name)
    partitions = []
    for index in range(t.partitions):
        p = view.partition(name, index)
        if p is None:
            continue
        partitions.append(r.MetadataResponsePartition(
            error_code=ErrorCode.none if p.leader >= 0 else ErrorCode.leader_not_available, partition_index=index,
            leader_id=p.leader, leader_epoch=p.leader_epoch, replica_nodes=p.replicas, isr_nodes=p.isr,
            offline_replicas=p.offline))
    operations = authorized_operations(request, Res.TOPIC, name,
                                       asked=getattr(request.body, "include_topic_authorized_operations", False))
    return r.MetadataResponseTopic(
        error_code=ErrorCode.none, name=name, topic_id=t.topic_id, is_internal=name in INTERNAL_TOPICS,
        partitions=tuple(partitions), topic_authorized_operations=operations)


def _error(r, name, code: ErrorCode, topic_id=None):
    if name is None and not r.field_nullable("MetadataResponseTopic", "name"):
        name = ""  # v10-11 take topic ids but cannot answer a null name
    return r.MetadataResponseTopic(
        error_code=code, name=name, topic_id=topic_id or uuid.UUID(int=0), is_internal=False, partitions=(),
        topic_authorized_operations=NOT_REQUESTED)
