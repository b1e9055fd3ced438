"""DescribeProducers (key 61, v0, KIP-664): the active producers of partitions on this broker.

Kafka's ``kafka-transactions describe-producers`` and ``find-hanging`` ask it, and ``abort
--start-offset`` finds the producer of a hanging transaction with it.  Each partition is
answered from the local replica's producer table (kavka.log.producer_state), leader or
follower, as Kafka answers from any replica that hosts the log: per producer its id, epoch,
last sequence, last timestamp, coordinator epoch and the first offset of its open
transaction (-1: none).  A partition that exists but has no replica here is
NOT_LEADER_OR_FOLLOWER, one in an offline log directory KAFKA_STORAGE_ERROR, an unknown
topic or partition UNKNOWN_TOPIC_OR_PARTITION (Kafka's ReplicaManager.getPartitionOrError).
"""

from __future__ import annotations

from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.log.producer_state import ProducerEntry
from kavka.protocol.errors import ErrorCode

KEY = 61
VERSIONS = (0, 0)


@api(KEY, "DescribeProducers", VERSIONS)
def handle(request: Request):
    r = builder_for(request)
    return r.DescribeProducersResponse(topics=tuple(
        r.TopicResponse(name=topic.name, partitions=tuple(
            _partition(r, request.broker, topic.name, int(index)) for index in topic.partition_indexes))
        for topic in request.body.topics))


def _partition(r, broker, topic: str, index: int):
    producers, error = _local_producers(broker, topic, index)
    return r.PartitionResponse(partition_index=index, error_code=error, error_message=None,
                               active_producers=tuple(_producer(r, entry) for entry in producers))


def _local_producers(broker, topic: str, index: int) -> tuple[list[ProducerEntry], ErrorCode]:
    partition = broker.logs.partition(topic, index)
    if partition is None:
        known = broker.metadata.has_partition(topic, index)
        return [], ErrorCode.not_leader_or_follower if known else ErrorCode.unknown_topic_or_partition
    if partition.offline:
        return [], ErrorCode.kafka_storage_error
    table = partition.producers.producers
    return [table[pid] for pid in sorted(table)], ErrorCode.none


def _producer(r, entry: ProducerEntry):
    return r.ProducerState(producer_id=entry.producer_id, producer_epoch=entry.epoch,
                           last_sequence=entry.last_seq, last_timestamp=entry.last_timestamp,
                           coordinator_epoch=entry.coordinator_epoch,
                           current_txn_start_offset=entry.txn_first_offset)
