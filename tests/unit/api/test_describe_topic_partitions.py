"""DescribeTopicPartitions (key 75) through the dispatcher with wire bytes: Kafka's
cursor pagination, unknown and invalid names, the cursor-not-named error."""

from __future__ import annotations

import datetime
import pytest

from kavka.protocol.errors import ErrorCode

CREATE_TOPICS, DESCRIBE_TOPIC_PARTITIONS, API_VERSIONS = 19, 75, 18
NULL_ID = None  # the zero uuid, as kio decodes it
TOPIC_OPERATIONS = sum(1 << op for op in (3, 4, 5, 6, 7, 8, 10, 11))


def create(h, name, partitions):
    q = h.req(CREATE_TOPICS, 7)
    body = q.CreateTopicsRequest(topics=(q.CreatableTopic(
        name=name, num_partitions=partitions, replication_factor=-1, assignments=(), configs=()),),
        timeout=datetime.timedelta(seconds=30), validate_only=False)
    (result,) = h.call(body).topics
    assert result.error_code == ErrorCode.none
    return result.topic_id


def describe(h, names=(), limit=2000, cursor=None):
    q = h.req(DESCRIBE_TOPIC_PARTITIONS, 0)
    return h.call(q.DescribeTopicPartitionsRequest(
        topics=tuple(q.TopicRequest(name=n) for n in names), response_partition_limit=limit,
        cursor=None if cursor is None else q.Cursor(topic_name=cursor[0], partition_index=cursor[1])))


def pages(response):
    """[(topic, [partition indexes])] and the next cursor as a tuple."""
    got = [(t.name, [p.partition_index for p in t.partitions]) for t in response.topics]
    c = response.next_cursor
    return got, None if c is None else (c.topic_name, c.partition_index)


@pytest.fixture
def h(admin):
    h = admin({})
    h.ids = {name: create(h, name, n) for name, n in (("b", 3), ("a", 2), ("c", 1))}
    return h


def test_advertised_in_api_versions(h):
    q = h.req(API_VERSIONS, 3)
    keys = {k.api_key: (k.min_version, k.max_version) for k in h.call(
        q.ApiVersionsRequest(client_software_name="t", client_software_version="1")).api_keys}
    assert keys[DESCRIBE_TOPIC_PARTITIONS] == (0, 0)


def test_all_topics_sorted_with_partition_details(h):
    response = describe(h)
    assert pages(response) == ([("a", [0, 1]), ("b", [0, 1, 2]), ("c", [0])], None)
    a = response.topics[0]
    assert (a.error_code, a.topic_id, a.is_internal) == (ErrorCode.none, h.ids["a"], False)
    assert a.topic_authorized_operations == TOPIC_OPERATIONS
    p = a.partitions[1]
    assert (p.error_code, p.leader_id, p.leader_epoch) == (ErrorCode.none, 0, 0)
    assert (p.replica_nodes, p.isr_nodes, p.offline_replicas) == ((0,), (0,), ())
    assert (p.eligible_leader_replicas, p.last_known_elr) == ((), ())


def test_named_topics_once_each_in_name_order(h):
    assert pages(describe(h, ["c", "a", "c"])) == ([("a", [0, 1]), ("c", [0])], None)


def test_limit_inside_a_topic_points_at_the_next_partition(h):
    assert pages(describe(h, limit=3)) == ([("a", [0, 1]), ("b", [0])], ("b", 1))
    assert pages(describe(h, limit=3, cursor=("b", 1))) == ([("b", [1, 2]), ("c", [0])], None)


def test_limit_at_a_topic_end_points_at_the_next_topic(h):
    assert pages(describe(h, limit=2)) == ([("a", [0, 1])], ("b", 0))
    assert pages(describe(h, limit=5)) == ([("a", [0, 1]), ("b", [0, 1, 2])], ("c", 0))


def test_limit_at_the_last_topic_end_has_no_cursor(h):
    assert pages(describe(h, limit=6)) == ([("a", [0, 1]), ("b", [0, 1, 2]), ("c", [0])], None)


def test_broker_limit_caps_the_request_limit(admin):
    h = admin({"max.request.partition.size.limit": "2"})
    create(h, "t", 5)
    assert pages(describe(h, limit=100)) == ([("t", [0, 1])], ("t", 2))


def test_cursor_past_the_last_partition_describes_none(h):
    assert pages(describe(h, cursor=("b", 7))) == ([("b", []), ("c", [0])], None)


def test_cursor_topic_not_named_is_invalid_request(h):
    response = describe(h, ["c", "a"], cursor=("b", 0))
    assert [(t.name, t.error_code, t.partitions) for t in response.topics] == [
        ("c", ErrorCode.invalid_request, ()), ("a", ErrorCode.invalid_request, ())]
    assert response.next_cursor is None


def test_named_topics_before_the_cursor_are_skipped(h):
    assert pages(describe(h, ["a", "b", "c"], cursor=("b", 2))) == ([("b", [2]), ("c", [0])], None)


def test_unknown_and_invalid_names(h):
    response = describe(h, ["nope", "bad name", "a"])
    got = [(t.name, t.error_code, t.topic_id, t.partitions) for t in response.topics]
    assert got == [("a", ErrorCode.none, h.ids["a"], response.topics[0].partitions),
                   ("bad name", ErrorCode.invalid_topic_exception, NULL_ID, ()),
                   ("nope", ErrorCode.unknown_topic_or_partition, NULL_ID, ())]


def test_unknown_topics_take_no_partitions_of_the_limit(h):
    assert pages(describe(h, ["a", "aa", "b"], limit=5)) == ([("a", [0, 1]), ("aa", []), ("b", [0, 1, 2])], None)
