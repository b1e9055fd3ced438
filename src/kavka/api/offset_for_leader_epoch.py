"""OffsetForLeaderEpoch (key 23): where a leader epoch ended, from the epoch cache.

Consumers use it to validate their position after a leader change (librdkafka
does whenever Metadata reports a leader epoch); followers use it to find where
their log diverged from the leader's.  Answer: the largest epoch ≤ the one
asked for, and the start offset of the next epoch (or the log end offset for
the current one).
"""

from __future__ import annotations

from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode

KEY = 23
VERSIONS = (2, 4)


@api(KEY, "OffsetForLeaderEpoch", VERSIONS)
def handle(request: Request):
    r = builder_for(request)
    broker = request.broker
    topics = []
    for topic in request.body.topics:
        results = tuple(
            r.EpochEndOffset(partition=p.partition, **_end_offset(broker, topic.topic, p))
            for p in topic.partitions)
        topics.append(r.OffsetForLeaderTopicResult(topic=topic.topic, partitions=results))
    return r.OffsetForLeaderEpochResponse(topics=tuple(topics))


def _end_offset(broker, topic: str, wanted) -> dict:
    partition, error = broker.leader_partition(topic, wanted.partition)
    if partition is None:
        return dict(error_code=error, leader_epoch=-1, end_offset=-1)
    log = partition.log
    current = wanted.current_leader_epoch
    if current >= 0 and current != log.leader_epoch:
        code = ErrorCode.fenced_leader_epoch if current < log.leader_epoch else ErrorCode.unknown_leader_epoch
        return dict(error_code=code, leader_epoch=-1, end_offset=-1)
    epoch, end_offset = log.end_offset_for_epoch(wanted.leader_epoch)
    return dict(error_code=ErrorCode.none, leader_epoch=epoch, end_offset=end_offset)
