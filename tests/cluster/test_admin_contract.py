"""One admin contract, two deployments: a lone broker and a 3-broker cluster on etcd.

Every test runs on both ``admin_target`` parameters with the same assertions, through
real clients (confluent-kafka's AdminClient, Producer and Consumer on librdkafka, and
kafka-python's KafkaAdminClient).  Where a rule depends on the deployment (how many
replicas a topic may have, which broker ids exist) the expectation is derived from
the target's broker count and ids, never from its mode's name.  Errors are compared
by their names as the client reports them (librdkafka calls INVALID_TOPIC_EXCEPTION
``TOPIC_EXCEPTION``; kafka-python has one error class per code).

In the cluster, changes reach the other brokers asynchronously (etcd watches), so
what every broker must see is polled with a bounded wait (``eventually``).
The brokers are started once per module and parameter; topic names are unique per
test, so the tests do not depend on each other's order.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import warnings
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
)

pytestmark = pytest.mark.timeout(120)

TIMEOUT = 15        # seconds a client call may take
SPREAD = 10.0       # seconds a change may take to reach every broker
OFFSETS = "__consumer_offsets"


# -- helpers -------------------------------------------------------------------------------

def admin(target, *ids: int) -> AdminClient:
    return AdminClient({"bootstrap.servers": target.bootstrap(*ids), "socket.timeout.ms": 10000})


def kafka_python_admin(target, *ids: int):
    from kafka.admin import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=target.bootstrap(*ids), request_timeout_ms=TIMEOUT * 1000)


def error_name(future) -> str:
    with pytest.raises(KafkaException) as caught:
        future.result(TIMEOUT)
    return caught.value.args[0].name()


def eventually(predicate: Callable[[], Any], what: str, timeout: float = SPREAD) -> Any:
    """The predicate's first truthy value within ``timeout``; the last value in the failure."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s (last: {value!r})")
        time.sleep(0.1)


def create(client: AdminClient, *topics: NewTopic) -> None:
    for future in client.create_topics(list(topics), operation_timeout=10).values():
        future.result(TIMEOUT)


def topic_metadata(target, broker_id: int, name: str):
    """The topic as one broker alone describes it (None if it does not list it)."""
    return admin(target, broker_id).list_topics(timeout=TIMEOUT).topics.get(name)


def ready_everywhere(target, name: str, partitions: int):
    """Wait until every broker lists ``partitions`` partitions of the topic, each with a
    leader and a full ISR; return the metadata from the first broker."""
    def ready(broker_id):
        t = topic_metadata(target, broker_id, name)
        return t is not None and t.error is None and len(t.partitions) == partitions and all(
            p.error is None and p.leader in p.replicas and sorted(p.isrs) == sorted(p.replicas)
            for p in t.partitions.values())
    for broker_id in target.broker_ids:
        eventually(lambda b=broker_id: ready(b), f"{name}: {partitions} led partitions at broker {broker_id}")
    return topic_metadata(target, target.broker_ids[0], name)


def listed_nowhere(target, name: str) -> None:
    for broker_id in target.broker_ids:
        eventually(lambda b=broker_id: topic_metadata(target, b, name) is None, f"{name} gone at broker {broker_id}")


def describe(client: AdminClient, name: str) -> dict:
    resource = ConfigResource("TOPIC", name)
    return client.describe_configs([resource])[resource].result(TIMEOUT)


def produce(target, topic: str, values: list[bytes], partition: int = 0, timeout: float = TIMEOUT) -> None:
    producer = Producer({"bootstrap.servers": target.bootstrap(), "acks": "all", "linger.ms": 0,
                         "message.timeout.ms": int(timeout * 1000)})
    failures = []
    for value in values:
        producer.produce(topic, value, partition=partition, on_delivery=lambda e, m: e and failures.append(e))
    assert producer.flush(timeout + 1) == 0 and not failures, failures


def consume(target, topic: str, count: int, partition: int = 0, timeout: float = TIMEOUT) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": target.bootstrap(), "group.id": f"reader-{topic}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, partition, 0)])
    out, deadline = [], time.monotonic() + timeout
    try:
        while len(out) < count and time.monotonic() < deadline:
            for message in consumer.consume(count, 0.5):
                assert message.error() is None, message.error()
                out.append(message.value())
    finally:
        consumer.close()
    return out


def high_watermark(target, topic: str, partition: int = 0) -> int:
    consumer = Consumer({"bootstrap.servers": target.bootstrap(), "group.id": f"watcher-{topic}"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=TIMEOUT)[1]
    finally:
        consumer.close()


def round_trip(target, topic: str, partition: int = 0, n: int = 5, timeout: float = TIMEOUT) -> None:
    """Produce n records to an empty partition and read exactly them back."""
    values = [f"{topic}-{partition}-{i}".encode() for i in range(n)]
    produce(target, topic, values, partition, timeout)
    assert consume(target, topic, n, partition) == values
    assert high_watermark(target, topic, partition) == n


def commit_offset(target, group: str, topic: str, offset: int) -> None:
    consumer = Consumer({"bootstrap.servers": target.bootstrap(), "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    finally:
        consumer.close()


# -- CreateTopics --------------------------------------------------------------------------

def test_created_topics_have_led_replicated_partitions_and_their_configs(admin_target):
    target = admin_target
    n = target.broker_count
    create(admin(target),
           NewTopic("made-default", 3, -1, config={"retention.ms": "60000"}),
           NewTopic("made-full", 2, n, config={"max.message.bytes": "200000"}),
           NewTopic("made-single", 2, 1))
    # -1 takes default.replication.factor, which both targets set to their broker count.
    for name, partitions, replicas in (("made-default", 3, n), ("made-full", 2, n), ("made-single", 2, 1)):
        t = ready_everywhere(target, name, partitions)
        for p in t.partitions.values():
            assert len(p.replicas) == replicas and set(p.replicas) <= set(target.broker_ids)
    for broker_id in target.broker_ids:       # any broker describes the topic's configs
        configs = describe(admin(target, broker_id), "made-default")
        entry = configs["retention.ms"]
        assert (entry.value, entry.source) == ("60000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
        assert configs["segment.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
        assert describe(admin(target, broker_id), "made-full")["max.message.bytes"].value == "200000"
    for p in range(3):
        round_trip(target, "made-default", p)


def test_create_errors_fail_each_topic_on_its_own(admin_target):
    target = admin_target
    client = admin(target)
    create(client, NewTopic("taken", 1, 1))
    futures = client.create_topics([
        NewTopic("taken", 1, 1),
        NewTopic("bad name", 1, 1),
        NewTopic("bad-config", 1, 1, config={"cleanup.policy": "shred"}),
        NewTopic("unknown-config", 1, 1, config={"no.such.setting": "1"}),
        NewTopic("too-many-replicas", 1, target.broker_count + 1),
        NewTopic("no-partitions", 0, 1),
        NewTopic("fine-neighbour", 1, 1),
    ], operation_timeout=10)
    assert {name: error_name(f) for name, f in futures.items() if name != "fine-neighbour"} == {
        "taken": "TOPIC_ALREADY_EXISTS",
        "bad name": "TOPIC_EXCEPTION",
        "bad-config": "INVALID_CONFIG",
        "unknown-config": "INVALID_CONFIG",
        "too-many-replicas": "INVALID_REPLICATION_FACTOR",
        "no-partitions": "INVALID_PARTITIONS",
    }
    futures["fine-neighbour"].result(TIMEOUT)
    ready_everywhere(target, "fine-neighbour", 1)
    listed = client.list_topics(timeout=TIMEOUT).topics
    assert not {"bad name", "bad-config", "unknown-config", "too-many-replicas", "no-partitions"} & set(listed)


def test_replication_factor_up_to_the_broker_count_is_valid(admin_target):
    target = admin_target
    client = admin(target)
    for rf in range(1, target.broker_count + 1):
        create(client, NewTopic(f"rf-{rf}", 1, rf))
        t = ready_everywhere(target, f"rf-{rf}", 1)
        assert len(t.partitions[0].replicas) == rf
    assert error_name(client.create_topics([NewTopic("rf-zero", 1, 0)])["rf-zero"]) == "INVALID_REPLICATION_FACTOR"


def test_validate_only_creates_nothing_and_still_reports_errors(admin_target):
    target = admin_target
    client = admin(target)
    client.create_topics([NewTopic("dry", 4, target.broker_count)], validate_only=True)["dry"].result(TIMEOUT)
    refused = client.create_topics([NewTopic("dry-bad", 1, target.broker_count + 1)], validate_only=True)
    assert error_name(refused["dry-bad"]) == "INVALID_REPLICATION_FACTOR"
    create(client, NewTopic("after-dry", 1, 1))          # something that did happen after the dry runs
    ready_everywhere(target, "after-dry", 1)
    for broker_id in target.broker_ids:
        listed = admin(target, broker_id).list_topics(timeout=TIMEOUT).topics
        assert "dry" not in listed and "dry-bad" not in listed
    create(client, NewTopic("dry", 1, 1))                 # the name is still free


def _manual_layout(ids: list[int], partitions: int = 3) -> list[list[int]]:
    """Each partition on min(2, brokers) brokers, rotating, so leaders differ when they can."""
    width = min(2, len(ids))
    return [[ids[(p + k) % len(ids)] for k in range(width)][::-1] for p in range(partitions)]


def test_manual_replica_assignment_is_kept(admin_target):
    target = admin_target
    layout = _manual_layout(target.broker_ids)
    create(admin(target), NewTopic("manual", len(layout), replica_assignment=layout))
    t = ready_everywhere(target, "manual", len(layout))
    assert {p: list(m.replicas) for p, m in t.partitions.items()} == dict(enumerate(layout))
    assert {p: m.leader for p, m in t.partitions.items()} == {p: r[0] for p, r in enumerate(layout)}
    round_trip(target, "manual", 2)


def test_manual_assignment_to_an_unknown_broker_is_refused(admin_target):
    from kafka.errors import InvalidReplicationAssignmentError

    target = admin_target
    unknown = max(target.broker_ids) + 7
    confluent = admin(target)   # kept referenced: a collected client fails its futures (_DESTROY)
    future = confluent.create_topics([NewTopic("manual-bad", 1, replica_assignment=[[unknown]])])["manual-bad"]
    assert error_name(future) == "INVALID_REPLICA_ASSIGNMENT"
    client = kafka_python_admin(target)
    try:
        with pytest.raises(InvalidReplicationAssignmentError):
            client.create_topics({"manual-bad": {"assignments": {0: [target.broker_ids[0], unknown]}}})
        assert "manual-bad" not in client.list_topics()
    finally:
        client.close()


def test_a_name_twice_in_one_request_is_refused_once(admin_target):
    from kafka.admin import NewTopic as KafkaPythonTopic
    from kafka.errors import InvalidRequestError, for_code

    target = admin_target
    client = kafka_python_admin(target)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)   # a list of NewTopic may repeat a name
            answer = client.create_topics([KafkaPythonTopic("twice", 1, 1), KafkaPythonTopic("once", 1, 1),
                                           KafkaPythonTopic("twice", 1, 1)], raise_errors=False)
    finally:
        client.close()
    codes = [(t["name"], for_code(t["error_code"])) for t in answer["topics"]]
    assert [name for name, _ in codes] == ["twice", "once"]
    assert codes[0][1] is InvalidRequestError and codes[1][1].errno == 0
    ready_everywhere(target, "once", 1)
    assert "twice" not in admin(target).list_topics(timeout=TIMEOUT).topics


# -- CreatePartitions ----------------------------------------------------------------------

def test_create_partitions_grows_and_never_shrinks(admin_target):
    target = admin_target
    client = admin(target)
    create(client, NewTopic("growing", 1, target.broker_count))
    ready_everywhere(target, "growing", 1)
    client.create_partitions([NewPartitions("growing", 4)], validate_only=True)["growing"].result(TIMEOUT)
    assert len(client.list_topics(timeout=TIMEOUT).topics["growing"].partitions) == 1
    client.create_partitions([NewPartitions("growing", 4)])["growing"].result(TIMEOUT)
    t = ready_everywhere(target, "growing", 4)
    assert all(len(p.replicas) == target.broker_count for p in t.partitions.values())
    for count in (2, 4):
        assert error_name(client.create_partitions([NewPartitions("growing", count)])["growing"]) == \
            "INVALID_PARTITIONS"
    assert error_name(client.create_partitions([NewPartitions("nowhere", 3)])["nowhere"]) == "UNKNOWN_TOPIC_OR_PART"
    assert len(client.list_topics(timeout=TIMEOUT).topics["growing"].partitions) == 4
    round_trip(target, "growing", 3)


# -- AlterConfigs / IncrementalAlterConfigs ------------------------------------------------

def _described_everywhere(target, name: str, expected: dict[str, tuple[str, int]]) -> None:
    """Every broker describes the topic's ``expected`` (value, source) pairs."""
    def matches(broker_id):
        configs = describe(admin(target, broker_id), name)
        seen = {k: (configs[k].value, configs[k].source) for k in expected}
        return seen == expected or seen
    for broker_id in target.broker_ids:
        eventually(lambda b=broker_id: matches(b) is True, f"{name}'s configs at broker {broker_id}")


def test_altered_configs_are_described_by_every_broker(admin_target):
    target = admin_target
    client = admin(target)
    dynamic, default = ConfigSource.DYNAMIC_TOPIC_CONFIG.value, ConfigSource.DEFAULT_CONFIG.value
    create(client, NewTopic("tuned", 1, target.broker_count, config={"retention.ms": "60000"}))
    ready_everywhere(target, "tuned", 1)

    resource = ConfigResource("TOPIC", "tuned", incremental_configs=[
        ConfigEntry("max.message.bytes", "300000", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
    client.incremental_alter_configs([resource])[resource].result(TIMEOUT)
    _described_everywhere(target, "tuned", {"max.message.bytes": ("300000", dynamic),
                                            "retention.ms": ("604800000", default)})

    bad = ConfigResource("TOPIC", "tuned", incremental_configs=[
        ConfigEntry("retention.ms", "soon", incremental_operation=AlterConfigOpType.SET)])
    assert error_name(client.incremental_alter_configs([bad])[bad]) == "INVALID_CONFIG"
    missing = ConfigResource("TOPIC", "untuned", incremental_configs=[
        ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
    assert error_name(client.incremental_alter_configs([missing])[missing]) == "UNKNOWN_TOPIC_OR_PART"

    legacy = ConfigResource("TOPIC", "tuned", set_config={"retention.bytes": "90000000"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)       # confluent-kafka deprecates the old API
        client.alter_configs([legacy])[legacy].result(TIMEOUT)    # replaces the whole set of overrides
        bad_legacy = ConfigResource("TOPIC", "tuned", set_config={"segment.bytes": "tiny"})
        assert error_name(client.alter_configs([bad_legacy])[bad_legacy]) == "INVALID_CONFIG"
    _described_everywhere(target, "tuned", {"retention.bytes": ("90000000", dynamic),
                                            "max.message.bytes": ("1048588", default)})
    round_trip(target, "tuned")


def test_kafka_python_alters_and_describes_configs(admin_target):
    from kafka.admin import ConfigResource as KafkaPythonResource
    from kafka.admin import ConfigResourceType

    target = admin_target
    create(admin(target), NewTopic("kp-configs", 1, 1))
    client = kafka_python_admin(target)
    try:
        resource = KafkaPythonResource(ConfigResourceType.TOPIC, "kp-configs", configs={"retention.ms": "7000"})
        assert client.alter_configs([resource], incremental=True) == {"topic": {"kp-configs": "OK"}}
    finally:
        client.close()
    for broker_id in target.broker_ids:
        def modified(broker_id=broker_id):
            one = kafka_python_admin(target, broker_id)
            try:
                described = one.describe_configs([KafkaPythonResource(ConfigResourceType.TOPIC, "kp-configs")])
            finally:
                one.close()
            return {k: (e["value"], e["config_source"]) for k, e in described["topic"]["kp-configs"].items()}
        eventually(lambda: modified() == {"retention.ms": ("7000", "DYNAMIC_TOPIC_CONFIG")},
                   f"kp-configs' overrides at broker {broker_id}")


# -- DeleteTopics --------------------------------------------------------------------------

def test_deleted_topic_disappears_and_its_name_is_free_again(admin_target):
    target = admin_target
    client = admin(target)
    create(client, NewTopic("doomed", 1, target.broker_count))
    ready_everywhere(target, "doomed", 1)
    produce(target, "doomed", [b"old-1", b"old-2"])
    client.delete_topics(["doomed"], operation_timeout=10)["doomed"].result(TIMEOUT)
    listed_nowhere(target, "doomed")
    assert error_name(client.delete_topics(["doomed"])["doomed"]) == "UNKNOWN_TOPIC_OR_PART"
    assert error_name(client.delete_topics(["never-was"])["never-was"]) == "UNKNOWN_TOPIC_OR_PART"

    create(client, NewTopic("doomed", 1, target.broker_count))
    ready_everywhere(target, "doomed", 1)
    produce(target, "doomed", [b"new"])
    assert consume(target, "doomed", 1) == [b"new"]     # nothing of the old topic came back
    assert high_watermark(target, "doomed") == 1


def test_the_offsets_topic_cannot_be_deleted(admin_target):
    from kafka.errors import InvalidTopicError

    target = admin_target
    create(admin(target), NewTopic("offsets-user", 1, 1))
    commit_offset(target, "keeper", "offsets-user", 5)               # makes __consumer_offsets
    eventually(lambda: OFFSETS in admin(target).list_topics(timeout=TIMEOUT).topics, f"{OFFSETS} listed")
    confluent = admin(target)
    assert error_name(confluent.delete_topics([OFFSETS])[OFFSETS]) == "TOPIC_EXCEPTION"
    client = kafka_python_admin(target)
    try:
        with pytest.raises(InvalidTopicError):
            client.delete_topics([OFFSETS])
    finally:
        client.close()
    assert OFFSETS in admin(target).list_topics(timeout=TIMEOUT).topics
    consumer = Consumer({"bootstrap.servers": target.bootstrap(), "group.id": "keeper"})
    try:
        assert consumer.committed([TopicPartition("offsets-user", 0)], timeout=TIMEOUT)[0].offset == 5
    finally:
        consumer.close()


# -- DescribeCluster, FindCoordinator, groups ----------------------------------------------

def test_describe_cluster_lists_every_broker_and_a_controller(admin_target):
    target = admin_target
    seen_ids = set()
    for broker_id in target.broker_ids:
        client = admin(target, broker_id)   # kept referenced: a collected client fails its futures
        description = client.describe_cluster(request_timeout=TIMEOUT).result(TIMEOUT)
        assert sorted(node.id for node in description.nodes) == target.broker_ids
        assert description.controller.id in target.broker_ids
        seen_ids.add(description.cluster_id)
        metadata = client.list_topics(timeout=TIMEOUT)
        assert sorted(metadata.brokers) == target.broker_ids
        assert metadata.controller_id == description.controller.id
        assert metadata.cluster_id == description.cluster_id
    assert len(seen_ids) == 1 and all(seen_ids), "one cluster id, whichever broker answers"

    client = kafka_python_admin(target)
    try:
        cluster = client.describe_cluster()
    finally:
        client.close()
    assert cluster["cluster_id"] in seen_ids
    assert cluster["controller_id"] in target.broker_ids
    assert sorted((b["broker_id"], b["is_fenced"]) for b in cluster["brokers"]) == [
        (i, False) for i in target.broker_ids]


def test_a_group_commits_through_a_live_coordinator(admin_target):
    target = admin_target
    create(admin(target), NewTopic("grouped", 1, target.broker_count))
    ready_everywhere(target, "grouped", 1)
    commit_offset(target, "ledger", "grouped", 3)
    for broker_id in target.broker_ids:            # FindCoordinator through each broker
        client = admin(target, broker_id)
        group = client.describe_consumer_groups(["ledger"], request_timeout=TIMEOUT)["ledger"].result(TIMEOUT)
        assert group.coordinator.id in target.broker_ids
        consumer = Consumer({"bootstrap.servers": target.bootstrap(broker_id), "group.id": "ledger"})
        try:
            assert consumer.committed([TopicPartition("grouped", 0)], timeout=TIMEOUT)[0].offset == 3
        finally:
            consumer.close()
    client = kafka_python_admin(target)
    try:
        offsets = client.list_group_offsets("ledger")
    finally:
        client.close()
    from kafka.structs import TopicPartition as KafkaPythonPartition
    assert offsets["ledger"][KafkaPythonPartition("grouped", 0)].offset == 3


# -- auto-creation by Metadata -------------------------------------------------------------

def test_metadata_auto_creates_only_when_the_client_allows_it(admin_target):
    target = admin_target
    shy = Consumer({"bootstrap.servers": target.bootstrap(), "group.id": "shy", "allow.auto.create.topics": False})
    try:
        shy.list_topics("not-wanted", timeout=TIMEOUT)
    finally:
        shy.close()
    producer = Producer({"bootstrap.servers": target.bootstrap(), "allow.auto.create.topics": True})
    eventually(lambda: (t := producer.list_topics("wanted", timeout=TIMEOUT).topics.get("wanted")) is not None
               and t.error is None and len(t.partitions) == 2, "wanted auto-created")
    t = ready_everywhere(target, "wanted", 2)      # num.partitions, default.replication.factor
    assert all(len(p.replicas) == target.broker_count for p in t.partitions.values())
    round_trip(target, "wanted", 1)
    time.sleep(0.2)    # a creation, had it been asked for, would be visible by now
    for broker_id in target.broker_ids:
        assert topic_metadata(target, broker_id, "not-wanted") is None


# -- further rules both deployments must share ---------------------------------------------

def test_create_answers_the_resolved_layout_and_configs(admin_target):
    target = admin_target
    client = kafka_python_admin(target)
    try:
        answer = client.create_topics({"resolved": {"configs": {"retention.ms": "60000"}}})
        dry = client.create_topics({"resolved-dry": {"num_partitions": 3, "replication_factor": 1}},
                                   validate_only=True)
    finally:
        client.close()
    (made,) = answer["topics"]
    assert (made["name"], made["error_code"]) == ("resolved", 0)
    assert (made["num_partitions"], made["replication_factor"]) == (2, target.broker_count)
    assert made["configs"]["retention.ms"]["value"] == "60000"
    assert made["configs"]["segment.bytes"]["value"] == "1073741824"
    (checked,) = dry["topics"]
    assert (checked["error_code"], checked["num_partitions"], checked["replication_factor"]) == (0, 3, 1)
    ready_everywhere(target, "resolved", 2)


def test_topic_ids_are_one_per_topic_and_new_after_re_creation(admin_target):
    target = admin_target
    create(admin(target), NewTopic("identified", 1, 1))
    ready_everywhere(target, "identified", 1)

    def ids():
        found = set()
        for broker_id in target.broker_ids:
            client = admin(target, broker_id)
            from confluent_kafka import TopicCollection
            (future,) = client.describe_topics(TopicCollection(["identified"])).values()
            found.add(str(future.result(TIMEOUT).topic_id))
        return found
    first = ids()
    assert len(first) == 1, first
    client = admin(target)
    client.delete_topics(["identified"])["identified"].result(TIMEOUT)
    listed_nowhere(target, "identified")
    create(client, NewTopic("identified", 1, 1))
    ready_everywhere(target, "identified", 1)
    second = eventually(lambda: len(s := ids()) == 1 and s, "one topic id everywhere")
    assert second != first


def test_partitions_added_with_a_manual_assignment(admin_target):
    target = admin_target
    ids = target.broker_ids
    client = admin(target)
    create(client, NewTopic("placed-more", 1, 1))
    ready_everywhere(target, "placed-more", 1)
    layout = [[ids[-1]], [ids[0]]]
    client.create_partitions([NewPartitions("placed-more", 3, replica_assignment=layout)])["placed-more"].result(
        TIMEOUT)
    t = ready_everywhere(target, "placed-more", 3)
    assert [list(t.partitions[p].replicas) for p in (1, 2)] == layout
    bad = client.create_partitions([NewPartitions("placed-more", 4, replica_assignment=[[max(ids) + 7]])])
    assert error_name(bad["placed-more"]) == "INVALID_REPLICA_ASSIGNMENT"
    assert len(client.list_topics(timeout=TIMEOUT).topics["placed-more"].partitions) == 3


def test_internal_topic_keeps_its_partitions_and_policy(admin_target):
    target = admin_target
    create(admin(target), NewTopic("internal-user", 1, 1))
    commit_offset(target, "internal-keeper", "internal-user", 1)       # makes __consumer_offsets
    client = admin(target)
    eventually(lambda: OFFSETS in client.list_topics(timeout=TIMEOUT).topics, f"{OFFSETS} listed")
    assert error_name(client.create_partitions([NewPartitions(OFFSETS, 60)])[OFFSETS]) == "TOPIC_EXCEPTION"
    policy = ConfigResource("TOPIC", OFFSETS, incremental_configs=[
        ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SET)])
    assert error_name(client.incremental_alter_configs([policy])[policy]) == "POLICY_VIOLATION"
    reserved = client.create_topics([NewTopic("__transaction_state", 1, 1)])["__transaction_state"]
    assert error_name(reserved) == "TOPIC_EXCEPTION"
    assert len(client.list_topics(timeout=TIMEOUT).topics[OFFSETS].partitions) == 4
    assert describe(client, OFFSETS)["cleanup.policy"].value == "compact"


def test_config_validate_only_and_unknown_topics(admin_target):
    target = admin_target
    client = admin(target)
    create(client, NewTopic("checked", 1, 1))
    dry = ConfigResource("TOPIC", "checked", incremental_configs=[
        ConfigEntry("retention.ms", "1000", incremental_operation=AlterConfigOpType.SET)])
    client.incremental_alter_configs([dry], validate_only=True)[dry].result(TIMEOUT)
    append = ConfigResource("TOPIC", "checked", incremental_configs=[
        ConfigEntry("segment.ms", "5", incremental_operation=AlterConfigOpType.APPEND)])
    assert error_name(client.incremental_alter_configs([append])[append]) == "INVALID_CONFIG"
    for broker_id in target.broker_ids:
        one = admin(target, broker_id)
        assert describe(one, "checked")["retention.ms"].value == "604800000"
        missing = ConfigResource("TOPIC", "unchecked")
        assert error_name(one.describe_configs([missing])[missing]) == "UNKNOWN_TOPIC_OR_PART"


def test_configs_altered_through_each_broker(admin_target):
    """Any broker takes an alteration (in a cluster: also one holding no replica)."""
    target = admin_target
    create(admin(target), NewTopic("any-door", 1, 1))
    ready_everywhere(target, "any-door", 1)
    for broker_id in target.broker_ids:
        value = str(100000 + broker_id)
        client = admin(target, broker_id)
        resource = ConfigResource("TOPIC", "any-door", incremental_configs=[
            ConfigEntry("retention.bytes", value, incremental_operation=AlterConfigOpType.SET)])
        client.incremental_alter_configs([resource])[resource].result(TIMEOUT)
        _described_everywhere(target, "any-door",
                              {"retention.bytes": (value, ConfigSource.DYNAMIC_TOPIC_CONFIG.value)})


def test_metadata_of_an_unknown_topic_is_an_error_without_auto_creation(admin_target):
    target = admin_target
    for broker_id in target.broker_ids:
        shy = Consumer({"bootstrap.servers": target.bootstrap(broker_id), "group.id": "shy-2",
                        "allow.auto.create.topics": False})
        try:
            t = shy.list_topics("absent", timeout=TIMEOUT).topics["absent"]
        finally:
            shy.close()
        assert t.error is not None and t.error.name() == "UNKNOWN_TOPIC_OR_PART"


def test_describe_cluster_authorized_operations_agree(admin_target):
    target = admin_target
    found = []
    for broker_id in target.broker_ids:
        client = kafka_python_admin(target, broker_id)
        try:
            cluster = client.describe_cluster()
        finally:
            client.close()
        found.append((sorted(cluster["authorized_operations"]), cluster["cluster_id"], cluster["controller_id"]))
    assert "DESCRIBE" in found[0][0]
    assert all(f == found[0] for f in found), found


# -- every broker answers admin requests itself ---------------------------------------------
# Client libraries send CreateTopics, DeleteTopics, CreatePartitions and config changes to the
# controller they learn from Metadata, so the tests above reach only the controller.  Here
# kavka's own one-connection client sends each request to one broker, as a client that
# picked any broker (Kafka forwards to the controller since KIP-590) would; codes are named
# with kafka-python's table.

def _code_name(code: int) -> str:
    from kafka.errors import for_code
    return for_code(code).__name__


def _ask(target, broker_id: int, body):
    from kavka.client import Client
    with Client(target.brokers[broker_id].bootstrap_servers, client_id="contract", timeout=TIMEOUT) as client:
        return client.request(body)


def _create_request(*topics: tuple[str, int, int], validate_only: bool = False):
    import datetime

    from kio.schema.create_topics.v7.request import CreatableTopic, CreateTopicsRequest
    return CreateTopicsRequest(timeout=datetime.timedelta(seconds=10), validate_only=validate_only, topics=tuple(
        CreatableTopic(name=name, num_partitions=p, replication_factor=rf, assignments=(), configs=())
        for name, p, rf in topics))


def test_every_broker_answers_create_partitions_and_delete_itself(admin_target):
    import datetime

    from kio.schema.create_partitions.v3.request import (
        CreatePartitionsRequest,
        CreatePartitionsTopic,
    )
    from kio.schema.delete_topics.v6.request import (
        DeleteTopicsRequest,
        DeleteTopicState,
    )
    from kio.schema.incremental_alter_configs.v1.request import (
        AlterableConfig,
        AlterConfigsResource,
        IncrementalAlterConfigsRequest,
    )
    target = admin_target
    wait = datetime.timedelta(seconds=10)
    n = target.broker_count
    for broker_id in target.broker_ids:
        name = f"door-{broker_id}"
        answer = _ask(target, broker_id, _create_request((name, 1, -1), (name, 1, 1), ("door too", 1, 1)))
        assert [(t.name, _code_name(t.error_code)) for t in answer.topics] == [
            (name, "InvalidRequestError"), ("door too", "InvalidTopicError")]
        answer = _ask(target, broker_id, _create_request((name, 1, -1), (f"wide-{broker_id}", 1, n + 1)))
        assert [(_code_name(t.error_code), t.num_partitions, t.replication_factor) for t in answer.topics] == [
            ("NoError", 1, n), ("InvalidReplicationFactorError", -1, -1)]
        dry = _ask(target, broker_id, _create_request((f"dry-{broker_id}", 2, n), validate_only=True))
        assert (_code_name(dry.topics[0].error_code), dry.topics[0].num_partitions) == ("NoError", 2)
        ready_everywhere(target, name, 1)
        assert topic_metadata(target, broker_id, f"dry-{broker_id}") is None
        again = _ask(target, broker_id, _create_request((name, 1, 1)))
        assert _code_name(again.topics[0].error_code) == "TopicAlreadyExistsError"

        grown = _ask(target, broker_id, CreatePartitionsRequest(timeout=wait, validate_only=False, topics=(
            CreatePartitionsTopic(name=name, count=3, assignments=None),
            CreatePartitionsTopic(name=f"nowhere-{broker_id}", count=3, assignments=None))))
        assert [_code_name(r.error_code) for r in grown.results] == ["NoError", "UnknownTopicOrPartitionError"]
        ready_everywhere(target, name, 3)

        altered = _ask(target, broker_id, IncrementalAlterConfigsRequest(validate_only=False, resources=(
            AlterConfigsResource(resource_type=2, resource_name=name, configs=(
                AlterableConfig(name="retention.ms", config_operation=0, value="5000"),)),)))
        assert _code_name(altered.responses[0].error_code) == "NoError"
        _described_everywhere(target, name, {"retention.ms": ("5000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)})

        deleted = _ask(target, broker_id, DeleteTopicsRequest(timeout=wait, topics=(
            DeleteTopicState(name=name, topic_id=None),
            DeleteTopicState(name=f"nowhere-{broker_id}", topic_id=None))))
        assert [_code_name(r.error_code) for r in deleted.responses] == ["NoError", "UnknownTopicOrPartitionError"]
        listed_nowhere(target, name)


# -- broker configs, records and groups -----------------------------------------------------

def test_each_broker_describes_its_own_configs(admin_target):
    target = admin_target
    client = admin(target)
    for broker_id in target.broker_ids:   # librdkafka sends a BROKER resource to that broker
        resource = ConfigResource("BROKER", str(broker_id))
        configs = client.describe_configs([resource])[resource].result(TIMEOUT)
        assert configs["broker.id"].value == str(broker_id)
        entry = configs["num.partitions"]
        assert (entry.value, entry.source) == ("2", ConfigSource.STATIC_BROKER_CONFIG.value)
        assert configs["default.replication.factor"].value == str(target.broker_count)


def test_delete_records_moves_the_low_watermark(admin_target):
    from confluent_kafka.admin import OffsetSpec

    target = admin_target
    client = admin(target)
    create(client, NewTopic("trimmed", 1, target.broker_count))
    ready_everywhere(target, "trimmed", 1)
    produce(target, "trimmed", [f"r{i}".encode() for i in range(5)])
    tp = TopicPartition("trimmed", 0, 3)
    assert client.delete_records([tp])[tp].result(TIMEOUT).low_watermark == 3
    spec = TopicPartition("trimmed", 0)
    for offset_spec, expected in ((OffsetSpec.earliest(), 3), (OffsetSpec.latest(), 5)):
        (future,) = client.list_offsets({spec: offset_spec}).values()
        assert future.result(TIMEOUT).offset == expected
    beyond = TopicPartition("trimmed", 0, 9)
    assert error_name(client.delete_records([beyond])[beyond]) == "OFFSET_OUT_OF_RANGE"
    assert consume(target, "trimmed", 2) == [b"r3", b"r4"]


def test_groups_are_listed_and_deleted(admin_target):
    target = admin_target
    client = admin(target)
    create(client, NewTopic("listed-groups", 1, 1))
    ready_everywhere(target, "listed-groups", 1)
    for group in ("census-a", "census-b"):
        commit_offset(target, group, "listed-groups", 2)
    listed = client.list_consumer_groups(request_timeout=TIMEOUT).result(TIMEOUT)
    assert not listed.errors, listed.errors
    assert {"census-a", "census-b"} <= {g.group_id for g in listed.valid}
    client.delete_consumer_groups(["census-a"], request_timeout=TIMEOUT)["census-a"].result(TIMEOUT)
    assert error_name(client.delete_consumer_groups(["census-a"])["census-a"]) == "GROUP_ID_NOT_FOUND"
    listed = client.list_consumer_groups(request_timeout=TIMEOUT).result(TIMEOUT)
    assert "census-a" not in {g.group_id for g in listed.valid}
    consumer = Consumer({"bootstrap.servers": target.bootstrap(), "group.id": "census-a"})
    try:
        assert consumer.committed([TopicPartition("listed-groups", 0)], timeout=TIMEOUT)[0].offset < 0
    finally:
        consumer.close()


# -- configs that change what produce and describe answer ---------------------------------

def _produce_error(target, topic: str, acks: str) -> str | None:
    """The delivery error's name of one record (None: delivered)."""
    producer = Producer({"bootstrap.servers": target.bootstrap(), "acks": acks, "message.timeout.ms": 5000,
                         "retries": 0})
    errors = []
    producer.produce(topic, b"x", partition=0, on_delivery=lambda e, m: errors.append(e))
    producer.flush(10)
    assert len(errors) == 1
    return None if errors[0] is None else errors[0].name()


LONE_IGNORES_MIN_ISR = (
    "lone differs: a lone broker acknowledges acks=all whatever the topic's min.insync.replicas "
    "(api/produce.py asks the ReplicaManager's produce_check only when there is one, and a lone broker "
    "has none), so min.insync.replicas=2 on a 1-replica topic is delivered; the cluster (and Kafka on one "
    "broker) answers NOT_ENOUGH_REPLICAS")


@pytest.mark.known_difference("lone", LONE_IGNORES_MIN_ISR)
def test_min_insync_replicas_above_the_isr_refuses_acks_all_only(admin_target):
    target = admin_target
    n = target.broker_count
    create(admin(target), NewTopic("strict-isr", 1, n, config={"min.insync.replicas": str(n + 1)}),
           NewTopic("full-isr", 1, n, config={"min.insync.replicas": str(n)}))
    ready_everywhere(target, "strict-isr", 1)
    ready_everywhere(target, "full-isr", 1)
    assert _produce_error(target, "strict-isr", "all") == "NOT_ENOUGH_REPLICAS"
    assert _produce_error(target, "strict-isr", "1") is None
    assert _produce_error(target, "full-isr", "all") is None


def test_created_configs_are_the_described_ones(admin_target):
    """CreateTopics v5+ answers every resolved config; DescribeConfigs then says the same."""
    target = admin_target
    client = kafka_python_admin(target)
    try:
        answer = client.create_topics({"described-as-made": {"configs": {"retention.ms": "60000",
                                                                         "cleanup.policy": "compact"}}})
    finally:
        client.close()
    (made,) = answer["topics"]
    answered = {k: v["value"] for k, v in made["configs"].items()}
    ready_everywhere(target, "described-as-made", 2)
    for broker_id in target.broker_ids:
        described = describe(admin(target, broker_id), "described-as-made")
        assert {k: e.value for k, e in described.items()} == answered, f"at broker {broker_id}"


def test_describe_configs_synonyms_agree(admin_target):
    target = admin_target
    client = admin(target)
    create(client, NewTopic("synonyms", 1, 1, config={"retention.ms": "60000"}))
    resource = ConfigResource("TOPIC", "synonyms")
    for broker_id in target.broker_ids:
        one = admin(target, broker_id)
        entry = one.describe_configs([resource])[resource].result(TIMEOUT)["retention.ms"]
        assert [(s.name, s.value, s.source) for s in entry.synonyms.values()] == [
            ("retention.ms", "60000", ConfigSource.DYNAMIC_TOPIC_CONFIG.value),
            ("log.retention.hours", "168", ConfigSource.DEFAULT_CONFIG.value)], f"at broker {broker_id}"


def test_broker_configs_cannot_be_altered(admin_target):
    target = admin_target
    client = admin(target)
    for broker_id in target.broker_ids:
        resource = ConfigResource("BROKER", str(broker_id), incremental_configs=[
            ConfigEntry("log.retention.ms", "5", incremental_operation=AlterConfigOpType.SET)])
        assert error_name(client.incremental_alter_configs([resource])[resource]) == "INVALID_REQUEST"


def test_the_offsets_topic_is_described_as_internal(admin_target):
    from confluent_kafka import TopicCollection

    target = admin_target
    create(admin(target), NewTopic("internal-flag", 1, 1))
    commit_offset(target, "flagger", "internal-flag", 1)
    for broker_id in target.broker_ids:
        client = admin(target, broker_id)
        futures = client.describe_topics(TopicCollection([OFFSETS, "internal-flag"]))
        flags = {name: f.result(TIMEOUT).is_internal for name, f in futures.items()}
        assert flags == {OFFSETS: True, "internal-flag": False}, f"at broker {broker_id}"


def test_every_broker_applies_validate_only_and_refusals_itself(admin_target):
    """validate_only and the refusals, sent to each broker alone (forwarded in a cluster)."""
    import datetime
    import uuid

    from kio.schema.alter_configs.v2.request import AlterableConfig as LegacyConfig
    from kio.schema.alter_configs.v2.request import AlterConfigsRequest
    from kio.schema.alter_configs.v2.request import (
        AlterConfigsResource as LegacyResource,
    )
    from kio.schema.create_partitions.v3.request import (
        CreatePartitionsRequest,
        CreatePartitionsTopic,
    )
    from kio.schema.delete_topics.v6.request import (
        DeleteTopicsRequest,
        DeleteTopicState,
    )
    from kio.schema.incremental_alter_configs.v1.request import (
        AlterableConfig,
        AlterConfigsResource,
        IncrementalAlterConfigsRequest,
    )
    target = admin_target
    wait = datetime.timedelta(seconds=10)
    create(admin(target), NewTopic("guarded", 2, target.broker_count, config={"retention.ms": "60000"}))
    ready_everywhere(target, "guarded", 2)

    def incremental(value: str, validate_only: bool):
        return IncrementalAlterConfigsRequest(validate_only=validate_only, resources=(AlterConfigsResource(
            resource_type=2, resource_name="guarded", configs=(
                AlterableConfig(name="retention.ms", config_operation=0, value=value),)),))

    def partitions(count: int, validate_only: bool):
        return CreatePartitionsRequest(timeout=wait, validate_only=validate_only, topics=(
            CreatePartitionsTopic(name="guarded", count=count, assignments=None),))

    for broker_id in target.broker_ids:
        ask = functools.partial(_ask, target, broker_id)
        assert _codes(ask(incremental("1000", True)), "responses") == ["NoError"]
        assert _codes(ask(incremental("soon", False)), "responses") == ["InvalidConfigurationError"]
        legacy = ask(AlterConfigsRequest(validate_only=True, resources=(LegacyResource(
            resource_type=2, resource_name="guarded", configs=(LegacyConfig(name="segment.bytes", value="2000000"),)),)))
        assert _codes(legacy, "responses") == ["NoError"]
        assert _codes(ask(partitions(5, True)), "results") == ["NoError"]
        assert _codes(ask(partitions(1, False)), "results") == ["InvalidPartitionsError"]
        bad_config = _create_request(("guarded-bad", 1, 1))
        bad_config = dataclasses.replace(bad_config, topics=(dataclasses.replace(
            bad_config.topics[0], configs=(_creatable_config("cleanup.policy", "shred"),)),))
        assert _codes(ask(bad_config), "topics") == ["InvalidConfigurationError"]
        deleted = ask(DeleteTopicsRequest(timeout=wait, topics=(DeleteTopicState(name=None, topic_id=uuid.uuid4()),)))
        assert _codes(deleted, "responses") == ["UnknownTopicIdError"]
    for broker_id in target.broker_ids:   # nothing of the dry runs or refusals took effect
        configs = describe(admin(target, broker_id), "guarded")
        assert (configs["retention.ms"].value, configs["segment.bytes"].value) == ("60000", "1073741824")
        assert len(topic_metadata(target, broker_id, "guarded").partitions) == 2
        assert topic_metadata(target, broker_id, "guarded-bad") is None


def _codes(answer, field: str) -> list[str]:
    return [_code_name(r.error_code) for r in getattr(answer, field)]


def _creatable_config(name: str, value: str):
    from kio.schema.create_topics.v7.request import CreatableTopicConfig
    return CreatableTopicConfig(name=name, value=value)


def test_every_broker_deletes_by_topic_id(admin_target):
    import datetime

    from confluent_kafka import TopicCollection
    from kio.schema.delete_topics.v6.request import (
        DeleteTopicsRequest,
        DeleteTopicState,
    )

    target = admin_target
    for broker_id in target.broker_ids:
        name = f"by-id-{broker_id}"
        client = admin(target)
        create(client, NewTopic(name, 1, 1))
        ready_everywhere(target, name, 1)
        (future,) = client.describe_topics(TopicCollection([name])).values()
        topic_id = uuid_of(future.result(TIMEOUT).topic_id)
        answer = _ask(target, broker_id, DeleteTopicsRequest(timeout=datetime.timedelta(seconds=10), topics=(
            DeleteTopicState(name=None, topic_id=topic_id),)))
        (result,) = answer.responses
        assert (_code_name(result.error_code), result.name, result.topic_id) == ("NoError", name, topic_id)
        listed_nowhere(target, name)


def uuid_of(confluent_uuid):
    """confluent-kafka's Uuid as a uuid.UUID (its str() is base64, as Kafka prints ids)."""
    import base64
    import uuid
    text = str(confluent_uuid)
    return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
