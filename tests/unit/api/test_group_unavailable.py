"""Every consumer-group API answers COORDINATOR_NOT_AVAILABLE, in its own shape, on a broker without a coordinator.

The ``admin`` harness builds a BrokerContext with no group runner, so each
request goes through the dispatcher to ``@coordinated``'s unavailable answer.
"""

from __future__ import annotations

import datetime

import pytest

from kavka.protocol.errors import ErrorCode as E

JOIN, SYNC, HEARTBEAT, LEAVE, COMMIT, FETCH = 11, 14, 12, 13, 8, 9
LIST, DESCRIBE, DELETE, OFFSET_DELETE, CG_HEARTBEAT, CG_DESCRIBE = 16, 15, 42, 47, 68, 69
MS = datetime.timedelta(milliseconds=1)
UNAVAILABLE = E.coordinator_not_available


@pytest.fixture
def broker(admin):
    harness = admin()
    harness.logs.create_topic("t", 2)
    return harness


@pytest.mark.parametrize("version", [2, 9])
def test_join_group_echoes_the_member_id(broker, version):
    r = broker.req(JOIN, version)
    protocol = r.JoinGroupRequestProtocol(name="range", metadata=b"")
    response = broker.call(r.JoinGroupRequest(
        group_id="g", session_timeout=10_000 * MS, rebalance_timeout=20_000 * MS, member_id="m-1",
        group_instance_id=None, protocol_type="consumer", protocols=(protocol,), reason=None))
    assert (response.error_code, response.member_id, response.generation_id) == (UNAVAILABLE, "m-1", -1)


@pytest.mark.parametrize("version", [0, 5])
def test_sync_group(broker, version):
    r = broker.req(SYNC, version)
    response = broker.call(r.SyncGroupRequest(
        group_id="g", generation_id=1, member_id="m-1", group_instance_id=None, protocol_type="consumer",
        protocol_name="range", assignments=()))
    assert (response.error_code, response.assignment) == (UNAVAILABLE, b"")


@pytest.mark.parametrize("version", [0, 4])
def test_heartbeat(broker, version):
    r = broker.req(HEARTBEAT, version)
    response = broker.call(r.HeartbeatRequest(group_id="g", generation_id=1, member_id="m-1",
                                              group_instance_id=None))
    assert response.error_code == UNAVAILABLE


def test_leave_group_v0_has_one_error(broker):
    response = broker.call(broker.req(LEAVE, 0).LeaveGroupRequest(group_id="g", member_id="m-1"))
    assert response.error_code == UNAVAILABLE


def test_leave_group_v5_answers_the_group_and_no_member(broker):
    r = broker.req(LEAVE, 5)
    members = tuple(r.MemberIdentity(member_id=m, group_instance_id=None, reason=None) for m in ("a", "b"))
    response = broker.call(r.LeaveGroupRequest(group_id="g", members=members))
    assert (response.error_code, response.members) == (UNAVAILABLE, ())


@pytest.mark.parametrize("version", [2, 9])
def test_offset_commit_keeps_unknown_topics_apart(broker, version):
    r = broker.req(COMMIT, version)

    def topic(name):
        return r.OffsetCommitRequestTopic(name=name, partitions=tuple(
            r.OffsetCommitRequestPartition(partition_index=p, committed_offset=5, committed_leader_epoch=0,
                                           committed_metadata="") for p in (0, 1)))
    response = broker.call(r.OffsetCommitRequest(
        group_id="g", generation_id_or_member_epoch=-1, member_id="", group_instance_id=None,
        retention_time=-1 * MS, topics=(topic("t"), topic("nope"))))
    got = {(t.name, p.partition_index): p.error_code for t in response.topics for p in t.partitions}
    assert got == {("t", 0): UNAVAILABLE, ("t", 1): UNAVAILABLE,
                   ("nope", 0): E.unknown_topic_or_partition, ("nope", 1): E.unknown_topic_or_partition}


def test_offset_fetch_v1_puts_the_error_on_every_partition(broker):
    r = broker.req(FETCH, 1)
    topic = r.OffsetFetchRequestTopic(name="t", partition_indexes=(0, 1))
    response = broker.call(r.OffsetFetchRequest(group_id="g", topics=(topic,)))
    assert [(p.partition_index, p.committed_offset, p.error_code) for p in response.topics[0].partitions] == [
        (0, -1, UNAVAILABLE), (1, -1, UNAVAILABLE)]


def test_offset_fetch_v9_answers_each_group(broker):
    r = broker.req(FETCH, 9)
    groups = (r.OffsetFetchRequestGroup(group_id="a", member_id=None, member_epoch=-1, topics=(
        r.OffsetFetchRequestTopics(name="t", partition_indexes=(1,)),)),
              r.OffsetFetchRequestGroup(group_id="b", member_id=None, member_epoch=-1, topics=None))
    response = broker.call(r.OffsetFetchRequest(groups=groups, require_stable=False))
    assert [(g.group_id, g.error_code) for g in response.groups] == [("a", UNAVAILABLE), ("b", UNAVAILABLE)]
    partition = response.groups[0].topics[0].partitions[0]
    assert (partition.partition_index, partition.committed_offset, partition.error_code) == (1, -1, E.none)
    assert response.groups[1].topics == ()


@pytest.mark.parametrize("version", [0, 5])
def test_list_groups(broker, version):
    response = broker.call(broker.req(LIST, version).ListGroupsRequest(states_filter=(), types_filter=()))
    assert (response.error_code, response.groups) == (UNAVAILABLE, ())


@pytest.mark.parametrize("version", [0, 6])
def test_describe_groups_answers_each_group_dead(broker, version):
    response = broker.call(broker.req(DESCRIBE, version).DescribeGroupsRequest(
        groups=("a", "b"), include_authorized_operations=False))
    assert [(g.group_id, g.error_code, g.group_state, g.members) for g in response.groups] == [
        ("a", UNAVAILABLE, "Dead", ()), ("b", UNAVAILABLE, "Dead", ())]


def test_delete_groups_answers_each_name(broker):
    response = broker.call(broker.req(DELETE, 2).DeleteGroupsRequest(groups_names=("a", "b")))
    assert [(g.group_id, g.error_code) for g in response.results] == [("a", UNAVAILABLE), ("b", UNAVAILABLE)]


def test_offset_delete(broker):
    r = broker.req(OFFSET_DELETE, 0)
    topic = r.OffsetDeleteRequestTopic(name="t", partitions=(r.OffsetDeleteRequestPartition(partition_index=0),))
    response = broker.call(r.OffsetDeleteRequest(group_id="g", topics=(topic,)))
    assert (response.error_code, response.topics) == (UNAVAILABLE, ())


def test_consumer_group_heartbeat(broker):
    response = broker.call(broker.req(CG_HEARTBEAT, 0).ConsumerGroupHeartbeatRequest(
        group_id="g", member_id="m-1", member_epoch=0, instance_id=None, rack_id=None,
        rebalance_timeout=30_000 * MS, subscribed_topic_names=("t",), server_assignor=None, topic_partitions=()))
    assert (response.error_code, response.member_epoch, response.assignment) == (UNAVAILABLE, 0, None)


def test_consumer_group_describe_answers_each_group(broker):
    response = broker.call(broker.req(CG_DESCRIBE, 0).ConsumerGroupDescribeRequest(
        group_ids=("a", "b"), include_authorized_operations=False))
    assert [(g.group_id, g.error_code, g.group_state, g.group_epoch) for g in response.groups] == [
        ("a", UNAVAILABLE, "", -1), ("b", UNAVAILABLE, "", -1)]
