"""Consumer groups with real clients: confluent-kafka (librdkafka), kafka-python, aiokafka.

Each consumer commits synchronously after every batch it processed, so
"no committed record is skipped" is checkable: when a partition moves, its new
owner starts exactly at the committed offset, and across all members every
offset of every partition was consumed (duplicates allowed, gaps not).
Brokers use group.initial.rebalance.delay.ms=0 and a 1 s minimum session
timeout so that rebalances take a heartbeat or two, not seconds.  The
membership and restart tests run once more with librdkafka's KIP-848
consumer (``group.protocol=consumer``), whose group the broker assigns.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from group_clients import CLIENTS, CONSUMER_PROTOCOL, Member, ProcessMember, Settings, wait_for

from kavka.client import Client
from kavka.protocol.errors import ErrorCode

pytestmark = pytest.mark.timeout(60)

PARTITIONS = 6
KILL_SESSION_MS = 3000
SETTINGS = {"group.initial.rebalance.delay.ms": 0, "group.min.session.timeout.ms": 1000,
            "offsets.topic.num.partitions": 5,
            # KIP-848 groups: the session timeout and heartbeat interval are the broker's
            "group.consumer.session.timeout.ms": KILL_SESSION_MS, "group.consumer.heartbeat.interval.ms": 250}
# Every client library, and librdkafka once more with group.protocol=consumer.
ALL_PROTOCOLS = (*CLIENTS, CONSUMER_PROTOCOL)


@pytest.fixture
def broker(kavka_broker_factory):
    return kavka_broker_factory(SETTINGS)


# -- helpers ----------------------------------------------------------------------------

def create_topic(bootstrap: str, topic: str, partitions: int = PARTITIONS) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(10)


def produce(bootstrap: str, topic: str, per_partition: int, partitions: int = PARTITIONS) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 2})
    for i in range(per_partition):
        for p in range(partitions):
            producer.produce(topic, value=f"{p}-{i}".encode(), partition=p)
    assert producer.flush(10) == 0


def committed(bootstrap: str, group: str, topic: str, partitions: int = PARTITIONS) -> dict[int, int]:
    """Committed offsets through the wire (OffsetFetch v8), -1 where none."""
    from kavka.api.responses import make  # request classes via kio, as the CLI does
    from kio.schema.offset_fetch.v8 import request as q
    topics = (make(q.OffsetFetchRequestTopics, name=topic, partition_indexes=tuple(range(partitions))),)
    body = make(q.OffsetFetchRequest, groups=(make(q.OffsetFetchRequestGroup, group_id=group, topics=topics),),
                require_stable=False)
    with Client(bootstrap) as client:
        (result,) = client.request(body).groups
    return {p.partition_index: p.committed_offset for t in result.topics for p in t.partitions}


def owns_all_exactly_once(members, partitions: int = PARTITIONS) -> bool:
    """Every partition owned by exactly one member, and every member owning some."""
    sets = [m.assignment for m in members]
    return (all(sets) and sum(len(s) for s in sets) == partitions
            and set().union(*sets) == set(range(partitions)))


def consumed_everything(members, per_partition: int, partitions: int = PARTITIONS) -> bool:
    seen = set().union(*(m.report.offsets() for m in members))
    return all((p, o) in seen for p in range(partitions) for o in range(per_partition))


def settings(client: str, bootstrap: str, group: str, topic: str, **kwargs) -> Settings:
    return Settings(client, bootstrap, group, topic, **kwargs)


# -- membership with each client --------------------------------------------------------

@pytest.mark.slow  # three members, two rebalances and a session timeout (~4-8 s each)
@pytest.mark.parametrize("client", ALL_PROTOCOLS)
def test_three_members_share_partitions_then_one_leaves_and_one_is_killed(broker, client):
    bootstrap, topic, group = broker.bootstrap_servers, f"shared-{client}", f"group-{client}"
    create_topic(bootstrap, topic)
    produce(bootstrap, topic, 10)
    make = lambda **kw: settings(client, bootstrap, group, topic, **kw)  # noqa: E731
    leaver, stayer = Member(make()).start(), Member(make()).start()
    victim = ProcessMember(make(session_ms=KILL_SESSION_MS)).start()
    members = [leaver, stayer, victim]
    try:
        wait_for(lambda: owns_all_exactly_once(members), 30, "3 members owning 6 partitions", members)
        wait_for(lambda: committed(bootstrap, group, topic) == dict.fromkeys(range(6), 10), 20, "first commit")

        leaver.close()
        wait_for(lambda: owns_all_exactly_once([stayer, victim]), 20, "2 members after a leave", [stayer])
        produce(bootstrap, topic, 10)
        wait_for(lambda: committed(bootstrap, group, topic) == dict.fromkeys(range(6), 20), 20, "second commit")

        orphaned, killed_at = set(victim.assignment), time.monotonic()
        victim.kill()
        moved_at = wait_for(lambda: stayer.assignment == set(range(6)), 20, "takeover after a kill", [stayer])
        assert moved_at - killed_at < KILL_SESSION_MS / 1000 + 5, "partitions move within the session timeout"
        produce(bootstrap, topic, 10)
        wait_for(lambda: committed(bootstrap, group, topic) == dict.fromkeys(range(6), 30), 20, "third commit")
        # The new owner of the killed member's partitions started exactly at its committed offsets.
        after = [(p, o) for p, o in stayer.report.records if p in orphaned and o >= 20]
        assert {p: min(o for q, o in after if q == p) for p in orphaned} == dict.fromkeys(orphaned, 20)
        assert consumed_everything(members, 30)
    finally:
        for member in members:
            member.close() if member is not leaver else None


@pytest.mark.slow
def test_groups_are_isolated_each_reads_everything(broker):
    bootstrap, topic = broker.bootstrap_servers, "isolated"
    create_topic(bootstrap, topic)
    produce(bootstrap, topic, 5)
    groups = {"es": [Member(settings("confluent", bootstrap, "es", topic)) for _ in range(2)],
              "hadoop": [Member(settings("kafka-python", bootstrap, "hadoop", topic))],
              "ml": [Member(settings("aiokafka", bootstrap, "ml", topic))]}
    everyone = [m.start() for ms in groups.values() for m in ms]
    try:
        for name, members in groups.items():
            wait_for(lambda: consumed_everything(members, 5), 20, f"group {name} reading everything", everyone)
            wait_for(lambda: committed(bootstrap, name, topic) == dict.fromkeys(range(6), 5), 10, f"{name} commits")
    finally:
        for member in everyone:
            member.close()


@pytest.mark.slow
@pytest.mark.parametrize("client", ALL_PROTOCOLS)
def test_commit_then_broker_restart_resumes_after_the_committed_offset(kavka_broker_factory, tmp_path, client):
    data_dir, topic, group = tmp_path / "restart", "resume", "resumer"
    broker = kavka_broker_factory(SETTINGS, data_dir=data_dir)
    create_topic(broker.bootstrap_servers, topic, 2)
    produce(broker.bootstrap_servers, topic, 20, 2)
    first = Member(settings(client, broker.bootstrap_servers, group, topic)).start()
    try:
        wait_for(lambda: committed(broker.bootstrap_servers, group, topic, 2) == {0: 20, 1: 20}, 20,
                 "commits before the restart", [first])
    finally:
        first.close()
    broker.stop()
    broker = kavka_broker_factory(SETTINGS, data_dir=data_dir)
    assert committed(broker.bootstrap_servers, group, topic, 2) == {0: 20, 1: 20}
    produce(broker.bootstrap_servers, topic, 5, 2)
    second = Member(settings(client, broker.bootstrap_servers, group, topic)).start()
    try:
        wait_for(lambda: len(second.report.records) >= 10, 20, "the new records", [second])
        time.sleep(0.3)  # anything older would arrive with them
        assert sorted(second.report.records) == [(p, o) for p in range(2) for o in range(20, 25)]
    finally:
        second.close()


# -- assign(): commits without joining ---------------------------------------------------

def _assign_and_commit(client: str, bootstrap: str, group: str, topic: str) -> None:
    """Read partitions 0 and 1 with assign() and commit offsets 3 and 4 explicitly."""
    if client == "confluent":
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
        consumer.assign([TopicPartition(topic, 0, 0), TopicPartition(topic, 1, 0)])
        consumer.consume(10, 2)
        consumer.commit(offsets=[TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 4)], asynchronous=False)
        assert [tp.offset for tp in consumer.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)])] == [3, 4]
        consumer.close()
    elif client == "kafka-python":
        from kafka import KafkaConsumer, OffsetAndMetadata
        from kafka import TopicPartition as KTP
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
        consumer.assign([KTP(topic, 0), KTP(topic, 1)])
        consumer.poll(1000)
        consumer.commit({KTP(topic, 0): OffsetAndMetadata(3, "", -1), KTP(topic, 1): OffsetAndMetadata(4, "", -1)})
        assert consumer.committed(KTP(topic, 0)) == 3 and consumer.committed(KTP(topic, 1)) == 4
        consumer.close()
    else:
        import asyncio

        from aiokafka import AIOKafkaConsumer
        from aiokafka.structs import OffsetAndMetadata
        from aiokafka.structs import TopicPartition as ATP

        async def run():
            consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
            await consumer.start()
            consumer.assign([ATP(topic, 0), ATP(topic, 1)])
            await consumer.getmany(timeout_ms=1000)
            await consumer.commit({ATP(topic, 0): OffsetAndMetadata(3, ""), ATP(topic, 1): OffsetAndMetadata(4, "")})
            assert await consumer.committed(ATP(topic, 0)) == 3
            await consumer.stop()
        asyncio.run(run())


@pytest.mark.slow
@pytest.mark.parametrize("client", CLIENTS)
def test_assign_with_manual_commits_never_joins(broker, client):
    bootstrap, topic, group = broker.bootstrap_servers, f"assigned-{client}", f"manual-{client}"
    create_topic(bootstrap, topic, 2)
    produce(bootstrap, topic, 5, 2)
    _assign_and_commit(client, bootstrap, group, topic)
    assert committed(bootstrap, group, topic, 2) == {0: 3, 1: 4}
    described = describe(bootstrap, group)
    assert (described.group_state, described.protocol_type, described.members) == ("Empty", "", ())


def describe(bootstrap: str, group: str):
    from kavka.api.responses import make
    from kio.schema.describe_groups.v5 import request as q
    with Client(bootstrap) as client:
        return client.request(make(q.DescribeGroupsRequest, groups=(group,),
                                   include_authorized_operations=False)).groups[0]


# -- librdkafka specifics ---------------------------------------------------------------

@pytest.mark.slow
def test_cooperative_sticky_rebalances_incrementally(broker):
    bootstrap, topic, group = broker.bootstrap_servers, "sticky", "cooperative"
    create_topic(bootstrap, topic)
    produce(bootstrap, topic, 3)
    make = lambda: Member(settings("confluent", bootstrap, group, topic, strategy="cooperative-sticky"))  # noqa
    first = make().start()
    members = [first]
    try:
        wait_for(lambda: first.assignment == set(range(6)), 20, "the first member owning all", members)
        second = make().start()
        members.append(second)
        wait_for(lambda: owns_all_exactly_once(members), 20, "two cooperative members", members)
        kept = first.assignment
        assert len(kept) == 3
        revoked = [set(ps) for kind, ps in first.report.events if kind == "revoke"]
        assert revoked and all(len(ps) == 3 for ps in revoked), "only the moved partitions were revoked"
        before = len(first.report.events)
        second.close()
        members.remove(second)
        wait_for(lambda: first.assignment == set(range(6)), 20, "takeover after a leave", members)
        assert all(kind == "assign" for kind, _ in first.report.events[before:]), "nothing revoked from the stayer"
        assert consumed_everything([first, second], 3)
    finally:
        for member in members:
            member.close()


@pytest.mark.slow
def test_static_member_restart_keeps_its_partitions_without_a_rebalance(broker):
    bootstrap, topic, group = broker.bootstrap_servers, "static", "static-group"
    create_topic(bootstrap, topic)
    make = lambda i: Member(settings("confluent", bootstrap, group, topic, instance=f"inst-{i}"))  # noqa: E731
    members = [make(i).start() for i in range(3)]
    try:
        wait_for(lambda: owns_all_exactly_once(members), 30, "3 static members", members)
        generation = broker.groups.coordinator.groups[group].generation
        events = [len(m.report.events) for m in members]
        owned = members[1].assignment
        members[1].close()  # static members do not send LeaveGroup
        members[1] = make(1).start()
        wait_for(lambda: members[1].assignment == owned, 10, "the same partitions after the restart", members)
        time.sleep(0.5)
        assert broker.groups.coordinator.groups[group].generation == generation, "no rebalance"
        assert [len(m.report.events) for m in (members[0], members[2])] == [events[0], events[2]]
        produce(bootstrap, topic, 2)
        wait_for(lambda: consumed_everything(members, 2), 20, "everything consumed", members)
    finally:
        for member in members:
            member.close()


# -- bad input next to a live group ------------------------------------------------------

def test_bad_requests_get_kafkas_codes_and_leave_the_group_alone(broker):
    from kavka.api.responses import make
    from kio.schema.heartbeat.v4 import request as hb
    from kio.schema.join_group.v9 import request as jg
    from kio.schema.offset_commit.v9 import request as oc

    bootstrap, topic, group = broker.bootstrap_servers, "guarded", "guarded-group"
    create_topic(bootstrap, topic)
    produce(bootstrap, topic, 2)
    member = Member(settings("confluent", bootstrap, group, topic)).start()
    try:
        wait_for(lambda: member.assignment == set(range(6)) and committed(bootstrap, group, topic)
                 == dict.fromkeys(range(6), 2), 20, "a stable, committed group", [member])
        coordinator = broker.groups.coordinator
        real = coordinator.groups[group]
        before = (coordinator.snapshot(), real.generation, set(real.members))
        member_id = next(iter(real.members))

        def commit(generation, who, metadata=""):
            part = make(oc.OffsetCommitRequestPartition, partition_index=0, committed_offset=0,
                        committed_leader_epoch=-1, committed_metadata=metadata)
            body = make(oc.OffsetCommitRequest, group_id=group, generation_id_or_member_epoch=generation,
                        member_id=who, group_instance_id=None,
                        topics=(make(oc.OffsetCommitRequestTopic, name=topic, partitions=(part,)),))
            return client.request(body).topics[0].partitions[0].error_code

        with Client(bootstrap) as client:
            beat = make(hb.HeartbeatRequest, group_id=group, generation_id=real.generation, member_id="intruder")
            assert client.request(beat).error_code == ErrorCode.unknown_member_id
            assert commit(real.generation - 1, member_id) == ErrorCode.illegal_generation
            assert commit(real.generation, "intruder") == ErrorCode.unknown_member_id
            assert commit(real.generation, member_id, "x" * 4097) == ErrorCode.offset_metadata_too_large
            protocol = make(jg.JoinGroupRequestProtocol, name="range", metadata=b"")
            join = make(jg.JoinGroupRequest, group_id=group, session_timeout=real_session(), member_id="",
                        protocol_type="connect", protocols=(protocol,), group_instance_id=None, reason=None,
                        rebalance_timeout=real_session())
            assert client.request(join).error_code == ErrorCode.inconsistent_group_protocol
        time.sleep(0.5)
        after = coordinator.groups[group]
        assert (coordinator.snapshot(), after.generation, set(after.members)) == before
        assert after.state.value == "Stable" and member.assignment == set(range(6))
    finally:
        member.close()


def real_session():
    import datetime
    return datetime.timedelta(seconds=6)
