"""WriteTxnMarkers (key 27, v1-2): write commit/abort markers into partitions this broker leads.

A transaction coordinator sends it to each partition's leader once a transaction is
prepared; Kafka's ``kafka-transactions abort`` (Admin.abortTransaction) sends it too, to
end a hanging transaction whose coordinator lost track of it.  Each partition is answered
on its own: not led here NOT_LEADER_OR_FOLLOWER (UNKNOWN_TOPIC_OR_PARTITION when this broker
has no such partition), a stale producer epoch INVALID_PRODUCER_EPOCH, a marker from an
older coordinator TRANSACTION_COORDINATOR_FENCED (``Partition.append_marker`` decides both),
a disk error its Kafka code; NONE once the marker is in the log and, as Kafka writes markers
with acks=all, replicated to the ISR.  A marker is a control batch that ends the producer's
transaction in that partition (kavka.log.producer_state); in ``__consumer_offsets`` the
group coordinator is told, to commit or drop the producer's pending offsets there.
"""

from __future__ import annotations

import asyncio

from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.error_codes import error_code_for
from kavka.log.errors import LogError
from kavka.protocol.errors import ErrorCode

KEY = 27
VERSIONS = (1, 2)


@api(KEY, "WriteTxnMarkers", VERSIONS)
async def handle(request: Request):
    r = builder_for(request)
    markers = []
    for marker in request.body.markers:
        topics = []
        for topic in marker.topics:
            codes = [await _write(request.broker, marker, topic.name, int(index)) for index in topic.partition_indexes]
            topics.append(r.WritableTxnMarkerTopicResult(name=topic.name, partitions=tuple(
                r.WritableTxnMarkerPartitionResult(partition_index=index, error_code=code)
                for index, code in zip(topic.partition_indexes, codes))))
        markers.append(r.WritableTxnMarkerResult(producer_id=marker.producer_id, topics=tuple(topics)))
    return r.WriteTxnMarkersResponse(markers=tuple(markers))


async def _write(broker, marker, topic: str, index: int) -> ErrorCode:
    partition, error = broker.leader_partition(topic, index)
    if partition is None:
        return error
    try:
        offset = partition.append_marker(marker.producer_id, marker.producer_epoch, marker.transaction_result,
                                         marker.coordinator_epoch, broker.clock.now_ms())
    except LogError as exc:
        return error_code_for(exc)
    if broker.groups is not None:
        broker.groups.marker_written(topic, index, marker.producer_id, marker.transaction_result)
    waited = broker.replicas.wait_replicated((topic, index), offset + 1, partition.config["min.insync.replicas"])
    return await waited if isinstance(waited, asyncio.Future) else waited
