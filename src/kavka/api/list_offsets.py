"""ListOffsets (key 2): offsets by position (earliest, latest, max timestamp) or by time.

Special timestamps: -1 latest (the high watermark: consumers never see past it;
with ``isolation_level`` 1, READ_COMMITTED, the last stable offset),
-2 earliest (log start offset), -3 the record with the largest timestamp (v7+),
-4 earliest local (= earliest without tiered storage, v8+), -5 latest tiered
(nothing is tiered: -1, v9+).  Any other value finds the first record whose
timestamp is at or after it, below the high watermark (the LSO for
READ_COMMITTED, as Kafka bounds every lookup); none gives offset -1.

A topic-partition named more than once in one request is not looked up: as in
Kafka, each of its rows is answered INVALID_REQUEST.  With an authorizer, a topic the
principal may not DESCRIBE is TOPIC_AUTHORIZATION_FAILED (kavka.api.authorization).
"""

from __future__ import annotations

from collections import Counter

from kavka.api.authorization import Op, Res, refused
from kavka.api.errors import error_code_for
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode

KEY = 2
VERSIONS = (1, 10)
LATEST, EARLIEST, MAX_TIMESTAMP, EARLIEST_LOCAL, LATEST_TIERED = -1, -2, -3, -4, -5
READ_COMMITTED = 1


@api(KEY, "ListOffsets", VERSIONS)
def handle(request: Request):
    r = builder_for(request)
    broker = request.broker
    named = Counter((t.name, p.partition_index) for t in request.body.topics for p in t.partitions)
    read_committed = getattr(request.body, "isolation_level", 0) == READ_COMMITTED
    denied = refused(request, Op.DESCRIBE, Res.TOPIC, (t.name for t in request.body.topics))
    topics = []
    for topic in request.body.topics:
        partitions = []
        for wanted in topic.partitions:
            if topic.name in denied:
                code, timestamp, offset, epoch = ErrorCode.topic_authorization_failed, -1, -1, -1
            elif named[topic.name, wanted.partition_index] > 1:
                code, timestamp, offset, epoch = ErrorCode.invalid_request, -1, -1, -1
            else:
                code, timestamp, offset, epoch = _lookup_guarded(broker, topic.name, wanted, read_committed)
            partitions.append(r.ListOffsetsPartitionResponse(
                partition_index=wanted.partition_index, error_code=code, timestamp=timestamp,
                offset=offset, leader_epoch=epoch, old_style_offsets=()))
        topics.append(r.ListOffsetsTopicResponse(name=topic.name, partitions=tuple(partitions)))
    return r.ListOffsetsResponse(topics=tuple(topics))


def _lookup_guarded(broker, topic: str, wanted, read_committed: bool) -> tuple[ErrorCode, int, int, int]:
    """:func:`_lookup`, with a disk error under a timestamp search (EIO) answered
    KAFKA_STORAGE_ERROR (and the log directory taken offline) instead of a traceback."""
    try:
        return _lookup(broker, topic, wanted, read_committed)
    except OSError as exc:
        partition = broker.logs.partition(topic, wanted.partition_index)
        return error_code_for(partition.storage_failure(exc, "a timestamp lookup in")), -1, -1, -1


def _lookup(broker, topic: str, wanted, read_committed: bool) -> tuple[ErrorCode, int, int, int]:
    partition, error = broker.leader_partition(topic, wanted.partition_index)
    if partition is None:
        return error, -1, -1, -1
    log = partition.log
    requested_epoch = getattr(wanted, "current_leader_epoch", -1)
    if requested_epoch >= 0 and requested_epoch != log.leader_epoch:
        code = ErrorCode.fenced_leader_epoch if requested_epoch < log.leader_epoch else ErrorCode.unknown_leader_epoch
        return code, -1, -1, -1
    epoch = log.leader_epoch
    ts = wanted.timestamp
    fetchable = log.last_stable_offset if read_committed else log.high_watermark
    if ts == LATEST:
        return ErrorCode.none, -1, fetchable, epoch
    if ts in (EARLIEST, EARLIEST_LOCAL):
        return ErrorCode.none, -1, log.log_start_offset, epoch
    if ts == LATEST_TIERED:
        return ErrorCode.none, -1, -1, -1
    if ts == MAX_TIMESTAMP:
        offset, timestamp = log.max_timestamp_entry()
        if offset < 0 or offset >= fetchable:
            return ErrorCode.none, -1, -1, -1
        return ErrorCode.none, timestamp, offset, epoch
    if ts < 0:
        return ErrorCode.invalid_request, -1, -1, -1
    found = log.offset_for_timestamp(ts)
    if found is None or found[0] >= fetchable:
        return ErrorCode.none, -1, -1, -1
    return ErrorCode.none, found[1], found[0], epoch
