"""One admin contract, two deployments: a lone broker and a 3-broker cluster on etcd.

Every test of test_admin_contract*.py runs on both ``admin_target`` parameters with the
same assertions, through real clients (confluent-kafka's AdminClient, Producer and
Consumer on librdkafka, and kafka-python's KafkaAdminClient).  Where a rule depends on
the deployment (how many replicas a topic may have, which broker ids exist) the
expectation is derived from the target's broker count and ids, never from its mode's
name.  A difference found today is kept as a test with
``@pytest.mark.known_difference(mode, reason)``: a strict xfail on that mode only.

The brokers are started once per module and parameter; topic names are unique per
module, so the tests do not depend on each other's order.  This module: topics
(CreateTopics, CreatePartitions, DeleteTopics, Metadata and its auto-creation).
"""

from __future__ import annotations

import time
import warnings

import pytest
from admin_contract_helpers import (
    OFFSETS,
    TIMEOUT,
    admin,
    commit_offset,
    consume,
    create,
    describe,
    error_name,
    eventually,
    high_watermark,
    kafka_python_admin,
    listed_nowhere,
    produce,
    ready_everywhere,
    round_trip,
    topic_metadata,
)
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
)

pytestmark = pytest.mark.timeout(120)


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
