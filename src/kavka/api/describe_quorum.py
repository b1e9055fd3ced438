"""DescribeQuorum (key 55, v0-2): the controller quorum, for ``kafka-metadata-quorum``.

Kafka answers for its metadata log, ``__cluster_metadata`` partition 0; kavka's
controller quorum is etcd (a lone broker: itself alone), described by the metadata
view's ``quorum()`` — the mapping of etcd members, raft term and raft indexes onto
voters, epoch and offsets is kavka.cluster.quorum's.  There are no observers:
brokers are etcd's clients, not members.

As Kafka: a request for any other topic or partition (or for more than that one) is
UNKNOWN_TOPIC_OR_PARTITION for every partition it names.  A quorum that cannot be
asked now (etcd unreachable) is a top-level REQUEST_TIMED_OUT.  A voter that answered
reports its last fetch and caught-up time as now (v1+); v2 adds each voter's endpoint,
on a listener named ``CONTROLLER``, and the null directory id.
"""

from __future__ import annotations

from kavka.api.authorization import Op, Res, requires
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.internal_topics import CLUSTER_METADATA_TOPIC as METADATA_TOPIC
from kavka.protocol.errors import ErrorCode

KEY = 55
VERSIONS = (0, 2)
LISTENER = "CONTROLLER"
UNKNOWN = -1


@api(KEY, "DescribeQuorum", VERSIONS)
@requires(Op.DESCRIBE, Res.CLUSTER)
async def handle(request: Request):
    r = builder_for(request)
    topics = request.body.topics
    if not _asks_for_the_metadata_log(topics):
        return _partition_errors(r, topics, ErrorCode.unknown_topic_or_partition)
    quorum = await request.broker.metadata.quorum()
    if quorum is None:
        return r.DescribeQuorumResponse(error_code=ErrorCode.request_timed_out,
                                        error_message="the controller quorum (etcd) did not answer",
                                        topics=(), nodes=())
    now = request.broker.clock.now_ms()
    voters = tuple(_voter(r, v, now) for v in quorum.voters)
    partition = r.PartitionData(
        partition_index=0, error_code=ErrorCode.none, error_message=None, leader_id=quorum.leader_id,
        leader_epoch=quorum.leader_epoch, high_watermark=quorum.high_watermark, current_voters=voters,
        observers=())
    return r.DescribeQuorumResponse(error_code=ErrorCode.none, error_message=None,
                                    topics=(r.TopicData(topic_name=METADATA_TOPIC, partitions=(partition,)),),
                                    nodes=_nodes(r, request.version, quorum.voters))


def _nodes(r, version: int, voters) -> tuple:
    """v2's voter endpoints (earlier versions have no ``nodes``; the builder drops the empty field)."""
    if version < 2:
        return ()
    return tuple(r.Node(node_id=v.voter_id, listeners=(r.Listener(name=LISTENER, host=v.host, port=v.port),))
                 for v in voters if v.host)


def _asks_for_the_metadata_log(topics) -> bool:
    return (len(topics) == 1 and topics[0].topic_name == METADATA_TOPIC and len(topics[0].partitions) == 1
            and topics[0].partitions[0].partition_index == 0)


def _voter(r, voter, now: int):
    seen = now if voter.log_end_offset >= 0 else UNKNOWN
    return r.ReplicaState(replica_id=voter.voter_id, replica_directory_id=None, log_end_offset=voter.log_end_offset,
                          last_fetch_timestamp=seen, last_caught_up_timestamp=seen)


def _partition_errors(r, topics, code: ErrorCode):
    return r.DescribeQuorumResponse(error_code=ErrorCode.none, error_message=None, nodes=(), topics=tuple(
        r.TopicData(topic_name=t.topic_name, partitions=tuple(
            r.PartitionData(partition_index=p.partition_index, error_code=code, error_message=None,
                            leader_id=UNKNOWN, leader_epoch=UNKNOWN, high_watermark=UNKNOWN,
                            current_voters=(), observers=())
            for p in t.partitions))
        for t in topics))
