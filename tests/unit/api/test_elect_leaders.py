"""ElectLeaders on a lone broker, through the dispatcher with wire bytes: its only replica
is every partition's preferred leader, so no election is ever needed while it is online."""

from __future__ import annotations

import datetime

import pytest

from kavka.protocol.errors import ErrorCode

ELECT_LEADERS, CREATE_TOPICS, API_VERSIONS = 43, 19, 18
PREFERRED, UNCLEAN = 0, 1
TIMEOUT = datetime.timedelta(seconds=30)


@pytest.fixture
def h(admin):
    h = admin({"num.partitions": "3"})
    q = h.req(CREATE_TOPICS, 7)
    h.call(q.CreateTopicsRequest(timeout=TIMEOUT, validate_only=False, topics=tuple(
        q.CreatableTopic(name=name, num_partitions=-1, replication_factor=-1, assignments=(), configs=())
        for name in ("a", "b"))))
    return h


def elect(h, topics, election_type=PREFERRED, version=2):
    """topics: {name: [partitions]} or None (every partition)."""
    q = h.req(ELECT_LEADERS, version)
    wanted = None if topics is None else tuple(
        q.TopicPartitions(topic=name, partitions=tuple(parts)) for name, parts in topics.items())
    return h.call(q.ElectLeadersRequest(election_type=election_type, topic_partitions=wanted, timeout=TIMEOUT))


def codes(response):
    return {(t.topic, p.partition_id): p.error_code for t in response.replica_election_results
            for p in t.partition_result}


def test_elect_leaders_is_advertised(h):
    response = h.call(h.req(API_VERSIONS, 3).ApiVersionsRequest(client_software_name="t",
                                                                client_software_version="1"))
    (entry,) = [k for k in response.api_keys if k.api_key == ELECT_LEADERS]
    assert (entry.min_version, entry.max_version) == (0, 2)


@pytest.mark.parametrize("version, election_type", [(0, PREFERRED), (1, PREFERRED), (1, UNCLEAN),
                                                    (2, PREFERRED), (2, UNCLEAN)])
def test_every_named_partition_needs_no_election(h, version, election_type):
    response = elect(h, {"a": [0, 2], "b": [1]}, election_type, version)
    assert codes(response) == {("a", 0): ErrorCode.election_not_needed, ("a", 2): ErrorCode.election_not_needed,
                               ("b", 1): ErrorCode.election_not_needed}
    assert [t.topic for t in response.replica_election_results] == ["a", "b"]
    assert "a-0" in response.replica_election_results[0].partition_result[0].error_message
    if version > 0:
        assert response.error_code == ErrorCode.none


def test_unknown_topic_and_partition(h):
    response = elect(h, {"a": [1, 3, -1], "nope": [0]})
    assert codes(response) == {("a", 1): ErrorCode.election_not_needed,
                               ("a", 3): ErrorCode.unknown_topic_or_partition,
                               ("a", -1): ErrorCode.unknown_topic_or_partition,
                               ("nope", 0): ErrorCode.unknown_topic_or_partition}
    assert response.error_code == ErrorCode.none


def test_all_partitions_lists_every_topic_but_only_partitions_that_were_elected(h):
    for election_type in (PREFERRED, UNCLEAN):
        response = elect(h, None, election_type)
        assert response.error_code == ErrorCode.none
        assert sorted(t.topic for t in response.replica_election_results) == ["a", "b"]
        assert codes(response) == {}


def test_offline_log_dir_leaves_no_leader_to_elect(h):
    h.logs.health.go_offline("EIO in a test", "test")
    assert codes(elect(h, {"a": [0]}, PREFERRED)) == {("a", 0): ErrorCode.preferred_leader_not_available}
    assert codes(elect(h, {"a": [0]}, UNCLEAN)) == {("a", 0): ErrorCode.eligible_leaders_not_available}
    response = elect(h, None, UNCLEAN)   # a failed election is listed even when all were asked for
    assert codes(response)[("b", 2)] == ErrorCode.eligible_leaders_not_available
    assert len(codes(response)) == 6


@pytest.mark.parametrize("version", [1, 2])
def test_unknown_election_type_is_an_invalid_request(h, version):
    response = elect(h, {"a": [0, 1]}, 7, version)
    assert response.error_code == ErrorCode.invalid_request
    assert codes(response) == {("a", 0): ErrorCode.invalid_request, ("a", 1): ErrorCode.invalid_request}
    everything = elect(h, None, 7, version)
    assert everything.error_code == ErrorCode.invalid_request and everything.replica_election_results == ()
