"""Metadata (key 3): brokers, topics, partitions and their leaders.

A single broker leads every partition.  Unknown topics are created on the fly
when ``auto.create.topics.enable`` is on and the client allows it (v4+ carries
``allow_auto_topic_creation``; older versions always allow it), as Kafka does.

In a cluster (kavka.cluster) the answer comes from the cluster's metadata:
every live broker, the controller, and per partition its leader, leader epoch,
replicas, ISR and offline replicas; auto-creation goes through the controller.

A topic named more than once is answered once (Kafka collects the requested
names into a set).  A request naming more than ``slicing.SLICE`` topics, or
asking for all of more than that many, is answered in slices with the event
loop given back between them (kavka.api.slicing); the decoder has already
refused more than 100,000 names (kavka.protocol.schema_walk).
"""

from __future__ import annotations

import asyncio
import logging
import uuid

from kavka.api.errors import error_code_for
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.api.slicing import SLICE, encode_steps, map_steps, run_sliced, run_steps, unique
from kavka.internal_topics import INTERNAL_TOPICS, is_reserved
from kavka.log.errors import LogError
from kavka.protocol.errors import ErrorCode

log = logging.getLogger("kavka.api")

KEY = 3
VERSIONS = (0, 13)
OPERATIONS_NOT_REQUESTED = -(2**31)
# READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS
TOPIC_OPERATIONS = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))


@api(KEY, "Metadata", VERSIONS)
def handle(request: Request):
    if request.broker.cluster is not None:
        return _cluster_metadata(request)
    body = request.body
    r = builder_for(request)
    if body.topics is None or (request.version == 0 and not body.topics):
        wanted = sorted(request.broker.logs.topics())
        steps, cost = map_steps(lambda name: _describe(r, request, name), wanted), len(wanted)
    else:
        allow_create = getattr(body, "allow_auto_topic_creation", True)
        wanted = unique(body.topics, _topic_key)
        logs = request.broker.logs
        may_create = allow_create and request.broker.config.get("auto.create.topics.enable")

        def weight(topic) -> int:  # one creation (~5 ms, files and topics.json) weighs a whole slice
            name = getattr(topic, "name", None)
            return SLICE if name is not None and logs.topic(name) is None else 1

        steps = map_steps(lambda topic: _lookup(r, request, topic, allow_create), wanted,
                          weight=weight if may_create else None)
        cost = sum(map(weight, wanted)) if may_create else len(wanted)
    if cost <= SLICE:
        return _response(r, request, run_steps(steps))
    return _sliced_response(r, request, steps)


async def _sliced_response(r, request: Request, steps):
    return await run_sliced(encode_steps(_response(r, request, await run_sliced(steps)), "topics"))


def _response(r, request: Request, topics: list):
    broker = request.broker
    brokers = (r.MetadataResponseBroker(node_id=broker.node_id, host=broker.host, port=broker.port, rack=None),)
    return r.MetadataResponse(
        error_code=ErrorCode.none, brokers=brokers, cluster_id=broker.cluster_id,
        controller_id=broker.node_id, topics=tuple(topics),
        cluster_authorized_operations=OPERATIONS_NOT_REQUESTED)


def _topic_key(topic) -> tuple:
    return getattr(topic, "name", None), getattr(topic, "topic_id", None)


def _lookup(r, request: Request, wanted, allow_create: bool):
    logs = request.broker.logs
    name = getattr(wanted, "name", None)
    topic_id = getattr(wanted, "topic_id", None)
    if name is None and topic_id is not None and topic_id.int != 0:
        info = logs.topic_by_id(topic_id)
        if info is None:
            return _error(r, None, ErrorCode.unknown_topic_id, topic_id)
        name = info.name
    if name is None:
        return _error(r, None, ErrorCode.invalid_request)
    if logs.topic(name) is None:
        error = _auto_create(request, name, allow_create)
        if error is not None:
            return _error(r, name, error)
    return _describe(r, request, name)


def _auto_create(request: Request, name: str, allow_create: bool) -> ErrorCode | None:
    broker = request.broker
    if not (allow_create and broker.config.get("auto.create.topics.enable")) or is_reserved(name):
        return ErrorCode.unknown_topic_or_partition
    try:
        broker.logs.create_topic(name, broker.config.get("num.partitions"))
    except LogError as exc:
        return error_code_for(exc)
    log.info("auto-created topic %s for %s", name, request.client_id)
    return None


def _describe(r, request: Request, name: str):
    broker = request.broker
    info = broker.logs.topic(name)
    node = broker.node_id
    # A failed log directory (kavka.log.log_dir): shown as Kafka shows a partition whose
    # only replica's log dir is offline: no leader, that replica offline and out of the ISR.
    offline = broker.logs.health.offline
    partitions = tuple(
        r.MetadataResponsePartition(
            error_code=ErrorCode.leader_not_available if offline else ErrorCode.none, partition_index=index,
            leader_id=-1 if offline else node, leader_epoch=broker.logs.partition(name, index).log.leader_epoch,
            replica_nodes=(node,), isr_nodes=() if offline else (node,), offline_replicas=(node,) if offline else ())
        for index in range(info.partitions))
    operations = (TOPIC_OPERATIONS if getattr(request.body, "include_topic_authorized_operations", False)
                  else OPERATIONS_NOT_REQUESTED)
    return r.MetadataResponseTopic(
        error_code=ErrorCode.none, name=name, topic_id=info.topic_id, is_internal=name in INTERNAL_TOPICS,
        partitions=partitions, topic_authorized_operations=operations)


# -- cluster mode ---------------------------------------------------------------------------

async def _cluster_metadata(request: Request):
    body, broker = request.body, request.broker
    cluster = broker.cluster
    r = builder_for(request)
    if body.topics is None or (request.version == 0 and not body.topics):
        topics = await run_sliced(map_steps(lambda name: _cluster_topic(r, request, name),
                                            list(cluster.topic_names())))
    else:
        allow_create = getattr(body, "allow_auto_topic_creation", True) and broker.config.get(
            "auto.create.topics.enable")
        topics = []
        by_id = None
        for count, wanted in enumerate(unique(body.topics, _topic_key)):
            if count and count % SLICE == 0:
                await asyncio.sleep(0)  # give the loop back between slices (kavka.api.slicing)
            name = getattr(wanted, "name", None)
            topic_id = getattr(wanted, "topic_id", None)
            if name is None and topic_id is not None and topic_id.int != 0:
                if by_id is None:  # once per request: a scan per id was quadratic
                    by_id = {cluster.topic(n).topic_id: n for n in cluster.topic_names()}
                name = by_id.get(str(topic_id))
                if name is None:
                    topics.append(_error(r, None, ErrorCode.unknown_topic_id, topic_id))
                    continue
            if name is None:
                topics.append(_error(r, None, ErrorCode.invalid_request))
                continue
            if cluster.topic(name) is None:
                if not allow_create or is_reserved(name):
                    topics.append(_error(r, name, ErrorCode.unknown_topic_or_partition))
                    continue
                live = len(cluster.live_broker_ids())
                code, _message = await cluster.create_topic_anywhere(
                    name, broker.config.get("num.partitions"),
                    min(broker.config.get("default.replication.factor"), max(live, 1)), None, {})
                if code not in (ErrorCode.none, ErrorCode.topic_already_exists) or cluster.topic(name) is None:
                    topics.append(_error(r, name, ErrorCode.leader_not_available))
                    continue
                log.info("auto-created topic %s for %s", name, request.client_id)
            topics.append(_cluster_topic(r, request, name))
    brokers = tuple(r.MetadataResponseBroker(node_id=b.broker_id, host=b.host, port=b.port, rack=b.rack)
                    for b in cluster.brokers())
    return r.MetadataResponse(
        error_code=ErrorCode.none, brokers=brokers, cluster_id=broker.cluster_id,
        controller_id=cluster.controller_id(), topics=tuple(topics),
        cluster_authorized_operations=OPERATIONS_NOT_REQUESTED)


def _cluster_topic(r, request: Request, name: str):
    cluster = request.broker.cluster
    t = cluster.topic(name)
    partitions = []
    for index in sorted(t.replicas):
        info = cluster.partition(name, index)
        if info is None:
            continue
        leader, epoch, replicas, isr, offline = info
        error = ErrorCode.none if leader >= 0 else ErrorCode.leader_not_available
        partitions.append(r.MetadataResponsePartition(
            error_code=error, partition_index=index, leader_id=leader, leader_epoch=epoch,
            replica_nodes=tuple(replicas), isr_nodes=tuple(isr), offline_replicas=tuple(offline)))
    operations = (TOPIC_OPERATIONS if getattr(request.body, "include_topic_authorized_operations", False)
                  else OPERATIONS_NOT_REQUESTED)
    return r.MetadataResponseTopic(
        error_code=ErrorCode.none, name=name, topic_id=uuid.UUID(t.topic_id), is_internal=name in INTERNAL_TOPICS,
        partitions=tuple(partitions), topic_authorized_operations=operations)


def _error(r, name, code: ErrorCode, topic_id=None):
    if name is None and not r.field_nullable("MetadataResponseTopic", "name"):
        name = ""  # v10-11 take topic ids but cannot answer a null name
    return r.MetadataResponseTopic(
        error_code=code, name=name, topic_id=topic_id or uuid.UUID(int=0), is_internal=False, partitions=(),
        topic_authorized_operations=OPERATIONS_NOT_REQUESTED)
