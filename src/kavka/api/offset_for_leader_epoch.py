"""OffsetForLeaderEpoch (key 23): where a leader epoch ended, from the epoch cache.

Consumers use it to validate their position after a leader change (librdkafka
does whenever Metadata reports a leader epoch); followers use it to find where
their log diverged from the leader's.  Answer: the largest epoch ≤ the one
asked for, and the start offset of the next epoch (or the log end offset for
the current one).  With an authorizer, as Kafka: a follower needs CLUSTER_ACTION (every
partition CLUSTER_AUTHORIZATION_FAILED), a client DESCRIBE on the topic (TOPIC_AUTHORIZATION_FAILED).
"""

from __future__ import annotations

from kavka.api.authorization import Op, Res, cluster_allowed, refused
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode

KEY = 23
VERSIONS = (2, 4)


@api(KEY, "OffsetForLeaderEpoch", VERSIONS)
def handle(request: Request):
    r = builder_for(request)
    broker = request.broker
    denied = _refused(request)
    topics = []
    for topic in request.body.topics:
        results = tuple(
            r.EpochEndOffset(partition=p.partition, **(
                dict(error_code=denied[topic.topic], leader_epoch=-1, end_offset=-1) if topic.topic in denied
                else _end_offset(broker, topic.topic, p)))
            for p in topic.partitions)
        topics.append(r.OffsetForLeaderTopicResult(topic=topic.topic, partitions=results))
    return r.OffsetForLeaderEpochResponse(topics=tuple(topics))


def _refused(request: Request) -> dict[str, ErrorCode]:
    """The topics refused, with their error: a follower (replica_id >= 0, v3+) needs
    CLUSTER_ACTION, a client DESCRIBE on each topic, as Kafka checks them."""
    names = [t.topic for t in request.body.topics]
    if getattr(request.body, "replica_id", -1) >= 0:
        ok = cluster_allowed(request, Op.CLUSTER_ACTION)
        return {} if ok else dict.fromkeys(names, ErrorCode.cluster_authorization_failed)
    return dict.fromkeys(refused(request, Op.DESCRIBE, Res.TOPIC, names), ErrorCode.topic_authorization_failed)


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
