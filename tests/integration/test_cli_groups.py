"""`kavka groups list|describe|delete|reset-offsets` as a user runs them: subprocesses talking
to an in-process broker, with groups driven by confluent-kafka (librdkafka) consumers.

Committed offsets are checked independently of the CLI through OffsetFetch, and the
effect of ``reset-offsets --execute`` by where a real consumer resumes."""

from __future__ import annotations

import datetime
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from test_cli_tools import failed, kavka, ok

from kavka.client import Client

pytestmark = pytest.mark.timeout(90)

SETTINGS = {"group.initial.rebalance.delay.ms": 0, "group.min.session.timeout.ms": 1000,
            "offsets.topic.num.partitions": 5}
BASE_TS = 1_700_000_000_000  # 2023-11-14T22:13:20Z


@pytest.fixture
def broker(kavka_broker_factory):
    return kavka_broker_factory(SETTINGS)


# -- helpers ----------------------------------------------------------------------------

def create_topic(broker, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(10)


def produce(broker, topic: str, per_partition: int, partitions: int) -> None:
    """Records i = 0.. of every partition, record i stamped BASE_TS + i seconds."""
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 2})
    for i in range(per_partition):
        for p in range(partitions):
            producer.produce(topic, value=f"{p}-{i}".encode(), partition=p, timestamp=BASE_TS + i * 1000)
    assert producer.flush(10) == 0


def committed(broker, group: str, topic: str, partitions: int) -> dict[int, int]:
    """Committed offsets through the wire (OffsetFetch v8), -1 where none."""
    from kio.schema.offset_fetch.v8 import request as q

    from kavka.api.responses import make
    topics = (make(q.OffsetFetchRequestTopics, name=topic, partition_indexes=tuple(range(partitions))),)
    body = make(q.OffsetFetchRequest, groups=(make(q.OffsetFetchRequestGroup, group_id=group, topics=topics),),
                require_stable=False)
    with Client(broker.bootstrap_servers) as client:
        (result,) = client.request(body).groups
    return {p.partition_index: p.committed_offset for t in result.topics for p in t.partitions}


def commit_as_outsider(broker, group: str, topic: str, offsets: dict[int, int]) -> None:
    """What an assign() user does: commit without joining the group."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": group,
                         "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        consumer.close()
    assert committed(broker, group, topic, max(offsets) + 1) == {
        p: offsets.get(p, -1) for p in range(max(offsets) + 1)}


class LiveGroup:
    """Subscribed confluent-kafka consumers that poll only when told to; librdkafka heartbeats
    in its own thread, so the group stays Stable while a CLI command runs."""

    def __init__(self, broker, group: str, topic: str, count: int) -> None:
        self.consumers = []
        for i in range(count):
            consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": group,
                                 "client.id": f"client-{i}", "enable.auto.commit": False,
                                 "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                                 "heartbeat.interval.ms": 250, "partition.assignment.strategy": "range"})
            consumer.subscribe([topic])
            self.consumers.append(consumer)

    def settle(self, partitions: int, timeout: float = 30) -> list[set[int]]:
        """Poll every member until each owns some partitions and together they own all, once."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for consumer in self.consumers:
                consumer.poll(0.05)
            owned = [{tp.partition for tp in c.assignment()} for c in self.consumers]
            if all(owned) and sum(map(len, owned)) == partitions and set().union(*owned) == set(range(partitions)):
                return owned
        raise AssertionError(f"the group did not settle within {timeout}s")

    def close(self) -> None:
        for consumer in self.consumers:
            consumer.close()


def table(text: str, header: str) -> list[list[str]]:
    """The rows of the table whose header line starts with ``header``, split on whitespace."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def first_offsets(broker, group: str, topic: str, partitions: int, timeout: float = 20) -> dict[int, int]:
    """Where a subscribed consumer of the group starts reading, per partition."""
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": group,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    first: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(first) < partitions and time.monotonic() < deadline:
            message = consumer.poll(0.1)
            if message is not None and not message.error():
                first.setdefault(message.partition(), message.offset())
    finally:
        consumer.close()
    return first


# -- list -------------------------------------------------------------------------------

@pytest.mark.slow
def test_list_shows_groups_with_states(broker):
    create_topic(broker, "events", 2)
    commit_as_outsider(broker, "idle", "events", {0: 1})
    live = LiveGroup(broker, "live", "events", 1)
    try:
        live.settle(2)
        rows = [line.split() for line in ok(kavka(broker, "groups", "list")).splitlines()]
        assert rows == [["GROUP", "STATE", "TYPE", "PROTOCOL-TYPE"], ["idle", "Empty", "classic", "-"],
                        ["live", "Stable", "classic", "consumer"]]
        assert [r.split()[0] for r in ok(kavka(broker, "groups", "list", "--state", "stable")).splitlines()] == \
            ["GROUP", "live"]
        listed = ok(kavka(broker, "groups", "list", "--state", "Empty", "--state", "Dead")).splitlines()
        assert [r.split()[0] for r in listed] == ["GROUP", "idle"]
        assert ok(kavka(broker, "groups", "list", "--type", "consumer")).splitlines() == [
            "GROUP  STATE  TYPE  PROTOCOL-TYPE"]
        assert failed(kavka(broker, "groups", "list", "--state", "asleep")).startswith(
            "kavka groups: --state 'asleep' is not a group state; use one of Empty, Stable")
    finally:
        live.close()
    # The member left: the group is Empty now.
    assert ["live", "Empty", "classic", "consumer"] in [
        line.split() for line in ok(kavka(broker, "groups", "list")).splitlines()]


# -- describe ---------------------------------------------------------------------------

def test_describe_live_group_members_assignment_and_lag(broker):
    create_topic(broker, "orders", 4)
    produce(broker, "orders", 10, 4)
    live = LiveGroup(broker, "shop", "orders", 2)
    try:
        owned = live.settle(4)
        # Each member commits its own partitions: partition p at p + 3, except partition 3.
        for consumer, partitions in zip(live.consumers, owned, strict=True):
            offsets = [TopicPartition("orders", p, p + 3) for p in sorted(partitions) if p != 3]
            if offsets:
                consumer.commit(offsets=offsets, asynchronous=False)
        assert committed(broker, "shop", "orders", 4) == {0: 3, 1: 4, 2: 5, 3: -1}
        ids = [c.memberid() for c in live.consumers]
        owner = {p: ids[i] for i, ps in enumerate(owned) for p in ps}

        out = ok(kavka(broker, "groups", "describe", "shop"))
        head = out.splitlines()[0]
        assert head.startswith("Group: shop  State: Stable  Type: classic  Protocol: consumer/range  Coordinator: 0 (")
        assert head.endswith(")  Members: 2")
        members = table(out, "MEMBER-ID")
        assert sorted(members) == sorted(
            [ids[i], "-", f"client-{i}", "/127.0.0.1", "orders:" + ",".join(map(str, sorted(owned[i])))]
            for i in range(2))
        assert table(out, "TOPIC") == [
            ["orders", "0", "3", "10", "7", owner[0]], ["orders", "1", "4", "10", "6", owner[1]],
            ["orders", "2", "5", "10", "5", owner[2]], ["orders", "3", "-", "10", "-", owner[3]]]

        only_offsets = ok(kavka(broker, "groups", "describe", "shop", "--offsets"))
        assert "MEMBER-ID" not in only_offsets and table(only_offsets, "TOPIC") == table(out, "TOPIC")
        only_members = ok(kavka(broker, "groups", "describe", "shop", "--members"))
        assert "TOPIC" not in only_members and sorted(table(only_members, "MEMBER-ID")) == sorted(members)
    finally:
        live.close()


def test_describe_group_with_only_committed_offsets(broker):
    create_topic(broker, "logs", 3)
    produce(broker, "logs", 6, 3)
    commit_as_outsider(broker, "reader", "logs", {0: 6, 2: 1})
    out = ok(kavka(broker, "groups", "describe", "reader"))
    assert out.splitlines()[0].startswith("Group: reader  State: Empty  Type: classic  Protocol: -  Coordinator: ")
    assert out.splitlines()[0].endswith("Members: 0")
    assert "MEMBER-ID" not in out
    assert table(out, "TOPIC") == [["logs", "0", "6", "6", "0", "-"], ["logs", "2", "1", "6", "5", "-"]]

    assert failed(kavka(broker, "groups", "describe", "nobody")) == \
        "kavka groups: GROUP_ID_NOT_FOUND: group 'nobody' does not exist"
    both = kavka(broker, "groups", "describe", "reader", "nobody", "ghost")
    assert failed(both) == "kavka groups: GROUP_ID_NOT_FOUND: groups 'nobody', 'ghost' do not exist"
    assert both.stdout.decode() == out  # the groups that exist are still shown


# -- delete -----------------------------------------------------------------------------

def test_delete_empty_and_non_empty_groups(broker):
    create_topic(broker, "jobs", 1)
    commit_as_outsider(broker, "done", "jobs", {0: 0})
    commit_as_outsider(broker, "finished", "jobs", {0: 0})
    live = LiveGroup(broker, "busy", "jobs", 1)
    try:
        live.settle(1)
        assert failed(kavka(broker, "groups", "delete", "busy")) == \
            "kavka groups: NON_EMPTY_GROUP: group 'busy' has active members; stop its consumers first"
        assert ok(kavka(broker, "groups", "delete", "done")) == "Deleted group done.\n"
        assert committed(broker, "done", "jobs", 1) == {0: -1}
        result = kavka(broker, "groups", "delete", "finished", "done", "busy")
        assert result.stdout.decode() == "Deleted group finished.\n"
        assert failed(result) == ("kavka groups: GROUP_ID_NOT_FOUND: group 'done' does not exist; "
                                  "NON_EMPTY_GROUP: group 'busy' has active members; stop its consumers first")
        assert [line.split()[0] for line in ok(kavka(broker, "groups", "list")).splitlines()] == ["GROUP", "busy"]
    finally:
        live.close()
    assert ok(kavka(broker, "groups", "delete", "busy")) == "Deleted group busy.\n"


# -- reset-offsets ----------------------------------------------------------------------

def reset(broker, *args: str) -> list[list[str]]:
    return table(ok(kavka(broker, "groups", "reset-offsets", *args)), "TOPIC")


@pytest.mark.slow
def test_reset_offsets_dry_run_changes_nothing(broker):
    create_topic(broker, "pay", 2)
    produce(broker, "pay", 10, 2)
    commit_as_outsider(broker, "billing", "pay", {0: 5, 1: 5})
    at_3s = datetime.datetime.fromtimestamp((BASE_TS + 3000) / 1000, datetime.timezone.utc).isoformat()
    cases = {("--to-earliest",): "0", ("--to-latest",): "10", ("--to-datetime", at_3s): "3",
             ("--to-datetime", str(BASE_TS + 2500)): "3", ("--to-datetime", str(BASE_TS + 60_000)): "10",
             ("--shift-by", "-2"): "3", ("--shift-by", "100"): "10", ("--shift-by", "-100"): "0",
             ("--to-offset", "7"): "7", ("--to-offset", "70"): "10"}
    for how, new in cases.items():
        rows = reset(broker, "billing", "--topic", "pay", *how)
        assert rows == [["pay", "0", "5", new], ["pay", "1", "5", new]], how
    result = kavka(broker, "groups", "reset-offsets", "billing", "--all-topics", "--to-earliest")
    assert b"Dry run: nothing was committed" in result.stderr
    assert committed(broker, "billing", "pay", 2) == {0: 5, 1: 5}


def test_reset_offsets_execute_moves_where_consumers_resume(broker):
    create_topic(broker, "pay", 3)
    create_topic(broker, "refunds", 1)
    produce(broker, "pay", 10, 3)
    produce(broker, "refunds", 4, 1)
    commit_as_outsider(broker, "billing", "pay", {0: 5, 1: 5})
    commit_as_outsider(broker, "billing", "refunds", {0: 4})

    rows = reset(broker, "billing", "--topic", "pay:1", "--to-datetime", str(BASE_TS + 7000), "--execute")
    assert rows == [["pay", "1", "5", "7"]]
    assert committed(broker, "billing", "pay", 3) == {0: 5, 1: 7, 2: -1}
    # A partition without a commit can be reset too; --topic names the partitions.
    rows = reset(broker, "billing", "--topic", "pay:0,2", "--to-offset", "2", "--execute")
    assert rows == [["pay", "0", "5", "2"], ["pay", "2", "-", "2"]]
    # --all-topics: every committed partition of every topic.
    rows = reset(broker, "billing", "--all-topics", "--shift-by", "-1", "--execute")
    assert rows == [["pay", "0", "2", "1"], ["pay", "1", "7", "6"], ["pay", "2", "2", "1"],
                    ["refunds", "0", "4", "3"]]
    assert committed(broker, "billing", "pay", 3) == {0: 1, 1: 6, 2: 1}
    assert first_offsets(broker, "billing", "pay", 3) == {0: 1, 1: 6, 2: 1}
    assert first_offsets(broker, "billing", "refunds", 1) == {0: 3}


@pytest.mark.slow
def test_reset_offsets_errors(broker):
    create_topic(broker, "pay", 2)
    produce(broker, "pay", 3, 2)
    commit_as_outsider(broker, "billing", "pay", {0: 1})
    live = LiveGroup(broker, "active", "pay", 1)
    try:
        live.settle(2)
        for extra in ((), ("--execute",)):
            line = failed(kavka(broker, "groups", "reset-offsets", "active", "--topic", "pay", "--to-earliest",
                                *extra))
            assert line == ("kavka groups: group 'active' is Stable with 1 active member; offsets can only be "
                            "reset while it has none (stop its consumers first)")
    finally:
        live.close()
    assert failed(kavka(broker, "groups", "reset-offsets", "billing", "--topic", "nope", "--to-earliest")) == \
        "kavka groups: UNKNOWN_TOPIC_OR_PARTITION: topic 'nope' does not exist"
    assert failed(kavka(broker, "groups", "reset-offsets", "billing", "--topic", "pay:5", "--to-earliest")) == \
        "kavka groups: UNKNOWN_TOPIC_OR_PARTITION: topic 'pay' has partitions 0-1; there is no partition 5"
    assert failed(kavka(broker, "groups", "reset-offsets", "billing", "--topic", "pay", "--shift-by", "1")) == \
        ("kavka groups: partition 1 of 'pay' has no committed offset to shift; use --to-earliest, --to-latest, "
         "--to-datetime or --to-offset for it")
    assert failed(kavka(broker, "groups", "reset-offsets", "new", "--all-topics", "--to-earliest")) == \
        "kavka groups: group 'new' has no committed offsets; name the topics with --topic"
    assert failed(kavka(broker, "groups", "reset-offsets", "billing", "--topic", "pay", "--to-datetime",
                        "someday")).startswith("kavka groups: --to-datetime wants a time such as ")
    # exactly one way to choose, and topics or --all-topics: argparse says so
    assert kavka(broker, "groups", "reset-offsets", "billing", "--topic", "pay").returncode == 2
    assert kavka(broker, "groups", "reset-offsets", "billing", "--to-latest").returncode == 2
    assert committed(broker, "billing", "pay", 2) == {0: 1, 1: -1}


def test_reset_offsets_of_a_new_group_creates_it(broker):
    create_topic(broker, "pay", 1)
    produce(broker, "pay", 4, 1)
    group = f"fresh-{uuid.uuid4().hex[:6]}"
    assert reset(broker, group, "--topic", "pay", "--to-latest", "--execute") == [["pay", "0", "-", "4"]]
    assert committed(broker, group, "pay", 1) == {0: 4}


# -- the consumer protocol (KIP-848) ----------------------------------------------------

def advertised(broker) -> set[int]:
    from kio.schema.api_versions.v3.request import ApiVersionsRequest
    with Client(broker.bootstrap_servers) as client:
        response = client.request(ApiVersionsRequest(client_software_name="test", client_software_version="1"))
    return {int(k.api_key) for k in response.api_keys}


@pytest.mark.slow  # waits out KIP-848 rebalances (~11 s)
def test_kip848_group_is_described_with_consumer_group_describe(broker):
    if not {68, 69} <= advertised(broker):
        pytest.skip("the broker does not advertise ConsumerGroupHeartbeat and ConsumerGroupDescribe")
    create_topic(broker, "orders", 4)
    produce(broker, "orders", 10, 4)
    consumers = [Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "modern",
                           "group.protocol": "consumer", "client.id": f"modern-{i}", "enable.auto.commit": False,
                           "auto.offset.reset": "earliest"}) for i in range(2)]
    try:
        for consumer in consumers:
            consumer.subscribe(["orders"])
        deadline, owned = time.monotonic() + 30, []
        while time.monotonic() < deadline:
            for consumer in consumers:
                consumer.poll(0.05)
            owned = [{tp.partition for tp in c.assignment()} for c in consumers]
            if all(owned) and sum(map(len, owned)) == 4 and set().union(*owned) == set(range(4)):
                break
        else:
            raise AssertionError(f"the KIP-848 group did not settle: {owned}")
        consumers[0].commit(offsets=[TopicPartition("orders", p, 4) for p in sorted(owned[0])], asynchronous=False)

        assert ok(kavka(broker, "groups", "list", "--type", "consumer")).splitlines()[1].split() == \
            ["modern", "Stable", "consumer", "consumer"]
        out = ok(kavka(broker, "groups", "describe", "modern"))
        head = out.splitlines()[0]
        assert head.startswith("Group: modern  State: Stable  Type: consumer  Protocol: consumer/"), head
        assert head.endswith("Members: 2")
        ids = [c.memberid() for c in consumers]
        assert sorted(table(out, "MEMBER-ID")) == sorted(
            [ids[i], "-", f"modern-{i}", "/127.0.0.1", "orders:" + ",".join(map(str, sorted(owned[i])))]
            for i in range(2))
        owner = {p: ids[i] for i, ps in enumerate(owned) for p in ps}
        assert table(out, "TOPIC") == [
            ["orders", str(p), "4", "10", "6", owner[p]] if p in owned[0] else
            ["orders", str(p), "-", "10", "-", owner[p]] for p in range(4)]
        assert failed(kavka(broker, "groups", "reset-offsets", "modern", "--all-topics", "--to-earliest")) == (
            "kavka groups: group 'modern' is Stable with 2 active members; offsets can only be reset while it "
            "has none (stop its consumers first)")
    finally:
        for consumer in consumers:
            consumer.close()
    assert ok(kavka(broker, "groups", "describe", "modern")).splitlines()[0].startswith(
        "Group: modern  State: Empty  Type: consumer")
    assert reset(broker, "modern", "--all-topics", "--to-earliest", "--execute") == [
        ["orders", str(p), "4", "0"] for p in sorted(owned[0])]
    assert committed(broker, "modern", "orders", 4) == {p: 0 if p in owned[0] else -1 for p in range(4)}
    assert ok(kavka(broker, "groups", "delete", "modern")) == "Deleted group modern.\n"
