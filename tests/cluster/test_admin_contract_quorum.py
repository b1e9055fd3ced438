"""The admin contract (see test_admin_contract.py) of DescribeQuorum (key 55), which
``kafka-metadata-quorum describe`` sends: every broker describes the same controller
quorum — a lone broker itself alone, a cluster etcd's members with etcd's raft leader."""

from __future__ import annotations

import pytest
from kio.schema.describe_quorum.v2.request import DescribeQuorumRequest, PartitionData, TopicData

from admin_contract_helpers import ask_broker, code_name

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


def describe_quorum(target, broker_id: int, topic: str = "__cluster_metadata", partition: int = 0):
    return ask_broker(target, broker_id, DescribeQuorumRequest(topics=(
        TopicData(topic_name=topic, partitions=(PartitionData(partition_index=partition),)),)))


def test_every_broker_describes_one_quorum_with_a_leader_among_its_voters(admin_target):
    seen = set()
    for broker_id in admin_target.broker_ids:
        answer = describe_quorum(admin_target, broker_id)
        assert code_name(answer.error_code) == "NoError"
        ((topic_name, (p,)),) = [(t.topic_name, t.partitions) for t in answer.topics]
        voters = [v.replica_id for v in p.current_voters]
        assert (topic_name, code_name(p.error_code), p.observers) == ("__cluster_metadata", "NoError", ())
        assert p.leader_id in voters and p.leader_epoch >= 0 and p.high_watermark >= 0
        assert all(v.log_end_offset >= 0 for v in p.current_voters)
        assert sorted(n.node_id for n in answer.nodes) == sorted(voters)
        assert all(listener.port > 0 for n in answer.nodes for listener in n.listeners)
        seen.add((p.leader_id, tuple(voters)))
    assert len(seen) == 1, seen
    if admin_target.broker_count == 1:
        assert seen == {(admin_target.broker_ids[0], (admin_target.broker_ids[0],))}


def test_every_broker_refuses_another_partition(admin_target):
    for broker_id in admin_target.broker_ids:
        answer = describe_quorum(admin_target, broker_id, partition=1)
        assert [code_name(p.error_code) for t in answer.topics for p in t.partitions] == [
            "UnknownTopicOrPartitionError"]
