"""KIP-848 groups with librdkafka (``group.protocol=consumer``): what only that protocol has.

Membership, kills and restarts run in test_groups.py for every client, this one
included; here: describing and listing through the admin client, partitions
added while members run, regex subscriptions, static members, a classic and a
consumer-protocol group side by side, and bad heartbeats next to a live group.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import ConsumerGroupState, ConsumerGroupType
from confluent_kafka.admin import AdminClient, NewPartitions
from group_clients import CONSUMER_PROTOCOL, Member, Settings, wait_for
from test_groups import SETTINGS, committed, consumed_everything, create_topic, owns_all_exactly_once, produce

from kavka.client import Client
from kavka.protocol.errors import ErrorCode

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def broker(kavka_broker_factory):
    return kavka_broker_factory(SETTINGS)


def member(bootstrap: str, group: str, topic: str, **kwargs) -> Member:
    return Member(Settings(CONSUMER_PROTOCOL, bootstrap, group, topic, **kwargs)).start()


def test_admin_client_describes_and_lists_a_consumer_protocol_group(broker):
    bootstrap, topic, group = broker.bootstrap_servers, "described", "described-group"
    create_topic(bootstrap, topic)
    produce(bootstrap, topic, 2)
    members = [member(bootstrap, group, topic) for _ in range(2)]
    try:
        wait_for(lambda: owns_all_exactly_once(members), 20, "2 members owning 6 partitions", members)
        admin = AdminClient({"bootstrap.servers": bootstrap})
        wait_for(lambda: admin.describe_consumer_groups([group])[group].result(10).state
                 == ConsumerGroupState.STABLE, 10, "a stable group", members)
        described = admin.describe_consumer_groups([group])[group].result(10)
        assert described.type == ConsumerGroupType.CONSUMER
        assert described.partition_assignor == "uniform"
        owned = sorted(tp.partition for m in described.members for tp in m.assignment.topic_partitions)
        assert owned == list(range(6))
        assert {m.client_id for m in described.members} == {"kavka-test"}
        assert sorted(len(m.assignment.topic_partitions) for m in described.members) == [3, 3]

        listed = admin.list_consumer_groups(types={ConsumerGroupType.CONSUMER}).result(10)
        assert [(g.group_id, g.type, g.state) for g in listed.valid] == \
            [(group, ConsumerGroupType.CONSUMER, ConsumerGroupState.STABLE)]
        classic = admin.list_consumer_groups(types={ConsumerGroupType.CLASSIC}).result(10)
        assert group not in [g.group_id for g in classic.valid]
    finally:
        for m in members:
            m.close()


@pytest.mark.slow
def test_new_partitions_are_assigned_to_running_members(broker):
    bootstrap, topic, group = broker.bootstrap_servers, "growing", "growing-group"
    create_topic(bootstrap, topic, 2)
    members = [member(bootstrap, group, topic) for _ in range(2)]
    try:
        wait_for(lambda: owns_all_exactly_once(members, 2), 20, "2 members owning 2 partitions", members)
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_partitions([NewPartitions(topic, 6)])[topic].result(10)
        # librdkafka refreshes metadata every topic.metadata.refresh.interval.ms; the group epoch
        # moves on the next heartbeat after the broker has the partitions.
        wait_for(lambda: owns_all_exactly_once(members, 6), 40, "6 partitions shared", members)
        produce(bootstrap, topic, 3, 6)
        wait_for(lambda: consumed_everything(members, 3, 6), 20, "records of the new partitions", members)
    finally:
        for m in members:
            m.close()


def test_a_classic_group_and_a_consumer_protocol_group_each_read_everything(broker):
    bootstrap, topic = broker.bootstrap_servers, "both-protocols"
    create_topic(bootstrap, topic)
    produce(bootstrap, topic, 4)
    new = [member(bootstrap, "new-protocol", topic) for _ in range(2)]
    old = [Member(Settings("confluent", bootstrap, "old-protocol", topic)).start()]
    everyone = new + old
    try:
        wait_for(lambda: consumed_everything(new, 4), 20, "the consumer-protocol group reading all", everyone)
        wait_for(lambda: consumed_everything(old, 4), 20, "the classic group reading all", everyone)
        for group in ("new-protocol", "old-protocol"):
            wait_for(lambda: committed(bootstrap, group, topic) == dict.fromkeys(range(6), 4), 10, group)
        groups = broker.groups.coordinator
        assert "new-protocol" in groups.consumer_groups and "old-protocol" in groups.groups
    finally:
        for m in everyone:
            m.close()


def test_static_member_restart_keeps_its_partitions(broker):
    bootstrap, topic, group = broker.bootstrap_servers, "static-848", "static-848-group"
    create_topic(bootstrap, topic)
    members = [member(bootstrap, group, topic, instance=f"inst-{i}") for i in range(3)]
    try:
        wait_for(lambda: owns_all_exactly_once(members), 30, "3 static members", members)
        coordinator = broker.groups.coordinator
        epoch = coordinator.consumer_groups[group].value.group_epoch
        owned = members[1].assignment
        members[1].close()
        members[1] = member(bootstrap, group, topic, instance="inst-1")
        wait_for(lambda: members[1].assignment == owned, 15, "the same partitions after the restart", members)
        assert coordinator.consumer_groups[group].value.group_epoch == epoch, "no new assignment"
    finally:
        for m in members:
            m.close()


@pytest.mark.slow
def test_bad_heartbeats_get_kafkas_codes_and_leave_the_group_alone(broker):
    from kavka.api.responses import make
    from kio.schema.consumer_group_heartbeat.v1 import request as q
    from kio.schema.join_group.v9 import request as jg

    bootstrap, topic, group = broker.bootstrap_servers, "guarded-848", "guarded-848-group"
    create_topic(bootstrap, topic)
    produce(bootstrap, topic, 2)
    live = member(bootstrap, group, topic)
    classic = Member(Settings("confluent", bootstrap, "classic-neighbour", topic)).start()
    try:
        wait_for(lambda: live.assignment == set(range(6)) and committed(bootstrap, group, topic)
                 == dict.fromkeys(range(6), 2), 20, "a stable, committed group", [live])
        # The classic neighbour commits after each batch it reads: wait for its last commit, or it
        # could land between the two snapshots below and look like damage done by the bad heartbeats.
        wait_for(lambda: classic.assignment == set(range(6)) and committed(bootstrap, "classic-neighbour", topic)
                 == dict.fromkeys(range(6), 2), 20, "a stable, committed classic group", [classic])
        coordinator = broker.groups.coordinator
        real = coordinator.consumer_groups[group]
        (member_id, state), = real.members.items()
        before = coordinator.snapshot()

        def beat(group_id=group, member_id=member_id, epoch=state.member_epoch, **kwargs):
            fields = dict(group_id=group_id, member_id=member_id, member_epoch=epoch, instance_id=None,
                          rack_id=None, subscribed_topic_names=None, subscribed_topic_regex=None,
                          server_assignor=None, topic_partitions=None)
            fields.update(kwargs)
            return client.request(make(q.ConsumerGroupHeartbeatRequest, **fields))

        with Client(bootstrap) as client:
            assert beat(member_id=str(uuid.uuid4())).error_code == ErrorCode.unknown_member_id
            assert beat(epoch=state.member_epoch + 5).error_code == ErrorCode.fenced_member_epoch
            assert beat(epoch=0, subscribed_topic_names=(topic,)).error_code == ErrorCode.invalid_request
            assert beat(member_id="").error_code == ErrorCode.invalid_request
            assert beat(epoch=0, member_id=str(uuid.uuid4()), server_assignor="nope", topic_partitions=(),
                        subscribed_topic_names=(topic,), rebalance_timeout=real_timeout()
                        ).error_code == ErrorCode.unsupported_assignor
            refused = beat(group_id="classic-neighbour", epoch=0, member_id=str(uuid.uuid4()),
                           subscribed_topic_names=(topic,), topic_partitions=(), rebalance_timeout=real_timeout())
            assert refused.error_code == ErrorCode.group_id_not_found
            protocol = make(jg.JoinGroupRequestProtocol, name="range", metadata=b"")
            join = make(jg.JoinGroupRequest, group_id=group, session_timeout=real_timeout(), member_id="",
                        protocol_type="consumer", protocols=(protocol,), group_instance_id=None, reason=None,
                        rebalance_timeout=real_timeout())
            assert client.request(join).error_code == ErrorCode.inconsistent_group_protocol
        time.sleep(0.5)
        assert coordinator.snapshot() == before
        assert live.assignment == set(range(6)) and classic.assignment == set(range(6))
    finally:
        live.close()
        classic.close()


def real_timeout():
    import datetime
    return datetime.timedelta(seconds=10)


def test_regex_subscription_is_resolved_by_the_broker(broker):
    bootstrap = broker.bootstrap_servers
    for name in ("rx-a", "rx-b", "other"):
        create_topic(bootstrap, name, 2)
    groups = broker.groups.coordinator.consumer_groups

    def assigned():  # (the Member report keeps partition numbers only)
        group = groups.get("regex-group")
        states = list(group.members.values()) if group else []
        return {(t, p) for s in states for t, ps in s.assigned for p in ps}

    m = member(bootstrap, "regex-group", "^rx-.*")
    try:
        wait_for(lambda: assigned() == {(t, p) for t in ("rx-a", "rx-b") for p in (0, 1)}, 20,
                 "the partitions of the two matching topics", [m])
        create_topic(bootstrap, "rx-c", 1)
        wait_for(lambda: ("rx-c", 0) in assigned(), 40, "a new matching topic", [m])
        assert not any(t == "other" for t, _ in assigned())
    finally:
        m.close()
