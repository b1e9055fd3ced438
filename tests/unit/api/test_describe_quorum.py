"""DescribeQuorum (key 55) on a lone broker through the dispatcher with wire bytes: the
broker is the only voter and the leader; other topics or partitions are unknown."""

from __future__ import annotations

import pytest

from kavka.protocol.errors import ErrorCode

DESCRIBE_QUORUM = 55


def ask(h, version, topics=(("__cluster_metadata", (0,)),)):
    q = h.req(DESCRIBE_QUORUM, version)
    return h.call(q.DescribeQuorumRequest(topics=tuple(
        q.TopicData(topic_name=name, partitions=tuple(q.PartitionData(partition_index=i) for i in indexes))
        for name, indexes in topics)))


@pytest.mark.parametrize("version", range(0, 3))
def test_lone_broker_is_the_only_voter_and_leader(admin, version):
    h = admin({"broker.id": "7"})
    answer = ask(h, version)
    assert answer.error_code == ErrorCode.none
    (topic,) = answer.topics
    (p,) = topic.partitions
    assert (topic.topic_name, p.partition_index, p.error_code) == ("__cluster_metadata", 0, ErrorCode.none)
    assert (p.leader_id, p.leader_epoch, p.high_watermark, p.observers) == (7, 0, 0, ())
    assert [(v.replica_id, v.log_end_offset) for v in p.current_voters] == [(7, 0)]
    if version >= 1:
        now = h.context.clock.now_ms()
        assert (p.current_voters[0].last_fetch_timestamp, p.current_voters[0].last_caught_up_timestamp) == (now, now)
    if version >= 2:
        assert [(n.node_id, [(x.name, x.host, x.port) for x in n.listeners]) for n in answer.nodes] == [
            (7, [("CONTROLLER", "127.0.0.1", 9092)])]


@pytest.mark.parametrize("topics", [
    (("__cluster_metadata", (1,)),),
    (("other", (0,)),),
    (("__cluster_metadata", (0, 1)),),
    (("__cluster_metadata", (0,)), ("other", (0,))),
])
def test_anything_but_the_metadata_log_is_unknown(admin, topics):
    answer = ask(admin({}), 2, topics)
    assert answer.error_code == ErrorCode.none
    assert [(t.topic_name, [(p.partition_index, p.error_code, p.current_voters) for p in t.partitions])
            for t in answer.topics] == [
        (name, [(i, ErrorCode.unknown_topic_or_partition, ()) for i in indexes]) for name, indexes in topics]
