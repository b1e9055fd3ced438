"""CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs and DescribeCluster,
through the dispatcher with wire bytes, against a real LogManager."""

from __future__ import annotations

import datetime
import uuid

import pytest

from kavka.config import BROKER_KEYS, TOPIC_KEYS
from kavka.protocol.errors import ErrorCode

CREATE_TOPICS, DELETE_TOPICS, CREATE_PARTITIONS, DESCRIBE_CONFIGS, DESCRIBE_CLUSTER = 19, 20, 37, 32, 60
TOPIC, BROKER, BROKER_LOGGER = 2, 4, 8
DYNAMIC_TOPIC, STATIC_BROKER, DEFAULT = 1, 4, 5
TIMEOUT = datetime.timedelta(seconds=30)
ZERO = uuid.UUID(int=0)


# -- request helpers -----------------------------------------------------------------------

def topic(name, partitions=-1, replication=-1, assignments=(), configs=None):
    """Fields of one CreatableTopic; nested objects are built per version in create()."""
    return dict(name=name, num_partitions=partitions, replication_factor=replication,
                assignments=assignments, configs=configs or {})


def _creatable(h, version, spec):
    q = h.req(CREATE_TOPICS, version)
    return q.CreatableTopic(
        name=spec["name"], num_partitions=spec["num_partitions"], replication_factor=spec["replication_factor"],
        assignments=tuple(q.CreatableReplicaAssignment(partition_index=i, broker_ids=tuple(b))
                          for i, b in spec["assignments"]),
        configs=tuple(q.CreatableTopicConfig(name=k, value=v) for k, v in spec["configs"].items()))


def create(h, *specs, version=7, validate_only=False):
    q = h.req(CREATE_TOPICS, version)
    body = q.CreateTopicsRequest(topics=tuple(_creatable(h, version, s) for s in specs),
                                 timeout=TIMEOUT, validate_only=validate_only)
    return h.call(body).topics


def create_one(h, spec, **kwargs):
    (result,) = create(h, spec, **kwargs)
    return result


def delete(h, names=(), ids=(), refs=None, version=6):
    q = h.req(DELETE_TOPICS, version)
    if version < 6:
        return h.call(q.DeleteTopicsRequest(topic_names=tuple(names), timeout=TIMEOUT)).responses
    refs = refs if refs is not None else [(n, ZERO) for n in names] + [(None, i) for i in ids]
    states = tuple(q.DeleteTopicState(name=n, topic_id=i) for n, i in refs)
    return h.call(q.DeleteTopicsRequest(topics=states, timeout=TIMEOUT)).responses


def grow(h, *topics, version=3, validate_only=False):
    """topics: (name, count) or (name, count, [[broker ids] per new partition])."""
    q = h.req(CREATE_PARTITIONS, version)
    items = []
    for name, count, *rest in topics:
        assignments = None if not rest else tuple(
            q.CreatePartitionsAssignment(broker_ids=tuple(b)) for b in rest[0])
        items.append(q.CreatePartitionsTopic(name=name, count=count, assignments=assignments))
    body = q.CreatePartitionsRequest(topics=tuple(items), timeout=TIMEOUT, validate_only=validate_only)
    return h.call(body).results


def describe(h, *resources, version=4, synonyms=False, docs=False):
    """resources: (type, name) or (type, name, keys)."""
    q = h.req(DESCRIBE_CONFIGS, version)
    items = tuple(q.DescribeConfigsResource(resource_type=t, resource_name=n,
                                            configuration_keys=rest[0] if rest else None)
                  for t, n, *rest in resources)
    return h.call(q.DescribeConfigsRequest(resources=items, include_synonyms=synonyms,
                                           include_documentation=docs)).results


def describe_topic(h, name, **kwargs):
    (result,) = describe(h, (TOPIC, name), **kwargs)
    assert result.error_code == ErrorCode.none, result.error_message
    return {c.name: c for c in result.configs}


def cluster(h, version=2, endpoint_type=1, operations=False):
    q = h.req(DESCRIBE_CLUSTER, version)
    return h.call(q.DescribeClusterRequest(include_cluster_authorized_operations=operations,
                                           endpoint_type=endpoint_type, include_fenced_brokers=False))


@pytest.fixture
def h(admin):
    return admin({"num.partitions": "3"})


# -- CreateTopics --------------------------------------------------------------------------

@pytest.mark.parametrize("version", range(2, 8))
def test_create_topics_every_version(h, version):
    result = create_one(h, topic("orders", 2, 1, configs={"retention.ms": "1000"}), version=version)
    assert result.name == "orders"
    assert result.error_code == ErrorCode.none
    info = h.logs.topic("orders")
    assert info.partitions == 2
    assert info.config.values["retention.ms"] == 1000
    if version >= 5:
        assert (result.num_partitions, result.replication_factor) == (2, 1)
        configs = {c.name: c for c in result.configs}
        assert set(configs) == set(TOPIC_KEYS)
        assert [c.name for c in result.configs] == sorted(TOPIC_KEYS)
        assert configs["retention.ms"].value == "1000"
        assert configs["retention.ms"].config_source == DYNAMIC_TOPIC
        assert configs["segment.bytes"].config_source == DEFAULT
        assert not configs["segment.bytes"].read_only and not configs["segment.bytes"].is_sensitive
    if version >= 7:
        assert result.topic_id == info.topic_id != ZERO


def test_create_topics_minus_one_uses_broker_defaults(h):
    result = create_one(h, topic("defaults"))
    assert result.error_code == ErrorCode.none
    assert (result.num_partitions, result.replication_factor) == (3, 1)
    assert h.logs.topic("defaults").partitions == 3


def test_create_topics_duplicate_name_is_invalid_request_once(h):
    results = create(h, topic("twice"), topic("other"), topic("twice"))
    assert [(r.name, r.error_code) for r in results] == [
        ("twice", ErrorCode.invalid_request), ("other", ErrorCode.none)]
    assert results[0].error_message
    assert h.logs.topic("twice") is None
    assert h.logs.topic("other") is not None


def test_create_topics_existing_topic(h):
    create_one(h, topic("taken"))
    result = create_one(h, topic("taken"))
    assert result.error_code == ErrorCode.topic_already_exists
    assert "taken" in result.error_message
    assert (result.num_partitions, result.replication_factor, result.configs) == (-1, -1, ())


@pytest.mark.parametrize("name", ["", ".", "..", "x" * 250, "has space", "ünïcode", "a/b"])
def test_create_topics_illegal_name(h, name):
    result = create_one(h, topic(name))
    assert result.error_code == ErrorCode.invalid_topic_exception
    assert result.error_message


def test_create_topics_longest_legal_name(h):
    assert create_one(h, topic("x" * 249)).error_code == ErrorCode.none


def test_create_topics_name_colliding_on_dot_and_underscore(h):
    create_one(h, topic("metrics_raw"))
    result = create_one(h, topic("metrics.raw"))
    assert result.error_code == ErrorCode.invalid_topic_exception
    assert "collides" in result.error_message


@pytest.mark.parametrize("partitions", [0, -2])
def test_create_topics_bad_partition_count(h, partitions):
    result = create_one(h, topic("p", partitions=partitions))
    assert result.error_code == ErrorCode.invalid_partitions
    assert result.error_message


@pytest.mark.parametrize("replication", [0, -2, 2])
def test_create_topics_bad_replication_factor(h, replication):
    result = create_one(h, topic("r", replication=replication))
    assert result.error_code == ErrorCode.invalid_replication_factor
    assert result.error_message


def test_create_topics_replication_factor_follows_live_brokers(h):
    h.context.metadata.live_broker_ids = lambda: frozenset({0, 1, 2})
    assert create_one(h, topic("three", replication=3)).error_code == ErrorCode.none
    assert create_one(h, topic("four", replication=4)).error_code == ErrorCode.invalid_replication_factor


@pytest.mark.parametrize("partitions, replication", [(2, -1), (-1, 1), (2, 1)])
def test_create_topics_assignment_with_explicit_counts(h, partitions, replication):
    result = create_one(h, topic("m", partitions, replication, assignments=[(0, [0])]))
    assert result.error_code == ErrorCode.invalid_request
    assert "manual partition assignment" in result.error_message


@pytest.mark.parametrize("assignments, words", [
    ([(0, [7])], "broker 7"),
    ([(0, [0, 0])], "more than once"),
    ([(0, [0]), (2, [0])], "consecutive"),
    ([(1, [0])], "consecutive"),
    ([(0, [0]), (0, [0])], "multiple"),
    ([(0, [])], "empty"),
])
def test_create_topics_bad_assignment(h, assignments, words):
    result = create_one(h, topic("m", assignments=assignments))
    assert result.error_code == ErrorCode.invalid_replica_assignment
    assert words in result.error_message
    assert h.logs.topic("m") is None


def test_create_topics_unequal_replica_counts(h):
    h.context.metadata.live_broker_ids = lambda: frozenset({0, 1})
    result = create_one(h, topic("m", assignments=[(0, [0, 1]), (1, [1])]))
    assert result.error_code == ErrorCode.invalid_replica_assignment
    assert "replica(s)" in result.error_message


def test_create_topics_manual_assignment(h):
    result = create_one(h, topic("manual", assignments=[(1, [0]), (0, [0])]))
    assert result.error_code == ErrorCode.none
    assert (result.num_partitions, result.replication_factor) == (2, 1)
    assert h.logs.topic("manual").partitions == 2


@pytest.mark.parametrize("configs, setting", [
    ({"retention.ms": "soon"}, "retention.ms"),
    ({"no.such.setting": "1"}, "no.such.setting"),
    ({"cleanup.policy": "shred"}, "cleanup.policy"),
    ({"segment.bytes": "1"}, "segment.bytes"),
    ({"min.insync.replicas": None}, "min.insync.replicas"),
])
def test_create_topics_bad_config(h, configs, setting):
    result = create_one(h, topic("c", configs=configs))
    assert result.error_code == ErrorCode.invalid_config
    assert setting in result.error_message
    assert h.logs.topic("c") is None


def test_create_topics_validate_only_creates_nothing(h):
    result = create_one(h, topic("dry", 4, configs={"cleanup.policy": "compact"}), validate_only=True)
    assert result.error_code == ErrorCode.none
    assert (result.num_partitions, result.replication_factor) == (4, 1)
    assert result.topic_id in (None, ZERO)  # kio reads the zero uuid as None
    assert {c.name: c.value for c in result.configs}["cleanup.policy"] == "compact"
    assert h.logs.topic("dry") is None


def test_create_topics_validate_only_still_reports_errors(h):
    create_one(h, topic("exists"))
    results = create(h, topic("exists"), topic("bad", partitions=0), topic("bad!"), validate_only=True)
    assert [r.error_code for r in results] == [
        ErrorCode.topic_already_exists, ErrorCode.invalid_partitions, ErrorCode.invalid_topic_exception]


def test_create_topics_static_broker_setting_is_the_source(admin):
    h = admin({"log.segment.bytes": "1048576"})
    result = create_one(h, topic("s"))
    configs = {c.name: c for c in result.configs}
    assert configs["segment.bytes"].value == "1048576"
    assert configs["segment.bytes"].config_source == STATIC_BROKER


# -- DeleteTopics --------------------------------------------------------------------------

@pytest.mark.parametrize("version", range(1, 7))
def test_delete_topics_by_name_every_version(h, version):
    create_one(h, topic("gone"))
    topic_id = h.logs.topic("gone").topic_id
    (result,) = delete(h, ["gone"], version=version)
    assert (result.name, result.error_code) == ("gone", ErrorCode.none)
    if version >= 6:
        assert result.topic_id == topic_id
    assert h.logs.topic("gone") is None


def test_delete_topics_by_id(h):
    create_one(h, topic("by-id"))
    topic_id = h.logs.topic("by-id").topic_id
    (result,) = delete(h, ids=[topic_id])
    assert (result.name, result.topic_id, result.error_code) == ("by-id", topic_id, ErrorCode.none)
    assert h.logs.topic("by-id") is None


@pytest.mark.parametrize("version", [1, 5, 6])
def test_delete_topics_unknown_name(h, version):
    (result,) = delete(h, ["nowhere"], version=version)
    assert result.error_code == ErrorCode.unknown_topic_or_partition
    if version >= 5:
        assert "nowhere" in result.error_message


def test_delete_topics_unknown_id(h):
    missing = uuid.uuid4()
    (result,) = delete(h, ids=[missing])
    assert (result.name, result.topic_id, result.error_code) == (None, missing, ErrorCode.unknown_topic_id)


def test_delete_topics_duplicates_and_bad_references(h):
    create_one(h, topic("dup"))
    some_id = uuid.uuid4()
    results = delete(h, refs=[("dup", ZERO), ("dup", ZERO), (None, some_id), (None, some_id),
                              ("both", uuid.uuid4()), (None, ZERO)])
    assert [r.error_code for r in results] == [ErrorCode.invalid_request] * 4
    assert results[0].error_message == "Duplicate topic name."
    assert results[1].error_message == "Duplicate topic id."
    assert h.logs.topic("dup") is not None


@pytest.mark.parametrize("version, code", [
    (1, ErrorCode.invalid_request), (2, ErrorCode.invalid_request),
    (3, ErrorCode.topic_deletion_disabled), (6, ErrorCode.topic_deletion_disabled)])
def test_delete_topics_disabled(admin, version, code):
    h = admin({"delete.topic.enable": "false"})
    create_one(h, topic("kept"))
    (result,) = delete(h, ["kept"], version=version)
    assert result.error_code == code
    assert h.logs.topic("kept") is not None


# -- CreatePartitions ----------------------------------------------------------------------

@pytest.mark.parametrize("version", range(0, 4))
def test_create_partitions_every_version(h, version):
    create_one(h, topic("grow", 1))
    (result,) = grow(h, ("grow", 3), version=version)
    assert (result.name, result.error_code, result.error_message) == ("grow", ErrorCode.none, None)
    assert h.logs.topic("grow").partitions == 3


@pytest.mark.parametrize("count", [2, 1])
def test_create_partitions_must_increase(h, count):
    create_one(h, topic("fixed", 2))
    (result,) = grow(h, ("fixed", count))
    assert result.error_code == ErrorCode.invalid_partitions
    assert result.error_message == f"Topic currently has 2 partitions, {count} must be greater"
    assert h.logs.topic("fixed").partitions == 2


def test_create_partitions_unknown_topic(h):
    (result,) = grow(h, ("nowhere", 4))
    assert result.error_code == ErrorCode.unknown_topic_or_partition
    assert result.error_message


def test_create_partitions_duplicate_topic(h):
    create_one(h, topic("dup", 1))
    results = grow(h, ("dup", 2), ("dup", 3))
    assert [(r.name, r.error_code) for r in results] == [("dup", ErrorCode.invalid_request)]
    assert h.logs.topic("dup").partitions == 1


def test_create_partitions_validate_only(h):
    create_one(h, topic("dry", 1))
    (result,) = grow(h, ("dry", 5), validate_only=True)
    assert result.error_code == ErrorCode.none
    assert h.logs.topic("dry").partitions == 1


@pytest.mark.parametrize("assignments, words", [
    ([[0]], "additional partition"),
    ([[0], [0], [0]], "additional partition"),
    ([[0], [9]], "broker 9"),
    ([[0], [0, 0]], "more than once"),
    ([[0], []], "empty"),
])
def test_create_partitions_bad_assignments(h, assignments, words):
    create_one(h, topic("a", 1))
    (result,) = grow(h, ("a", 3, assignments))
    assert result.error_code == ErrorCode.invalid_replica_assignment
    assert words in result.error_message
    assert h.logs.topic("a").partitions == 1


def test_create_partitions_replica_count_must_match_topic(h):
    h.context.metadata.live_broker_ids = lambda: frozenset({0, 1})
    create_one(h, topic("rf1", 1))
    (result,) = grow(h, ("rf1", 2, [[0, 1]]))
    assert result.error_code == ErrorCode.invalid_replica_assignment


def test_create_partitions_with_assignments(h):
    create_one(h, topic("a", 1))
    (result,) = grow(h, ("a", 3, [[0], [0]]))
    assert result.error_code == ErrorCode.none
    assert h.logs.topic("a").partitions == 3


# -- DescribeConfigs -----------------------------------------------------------------------

@pytest.mark.parametrize("version", range(1, 5))
def test_describe_configs_topic_every_version(h, version):
    create_one(h, topic("t", configs={"retention.ms": "1000"}))
    configs = describe_topic(h, "t", version=version, synonyms=True, docs=True)
    assert set(configs) == set(TOPIC_KEYS)
    entry = configs["retention.ms"]
    assert (entry.value, entry.config_source, entry.read_only, entry.is_sensitive) == (
        "1000", DYNAMIC_TOPIC, False, False)
    assert [(s.name, s.value, s.source) for s in entry.synonyms] == [
        ("retention.ms", "1000", DYNAMIC_TOPIC), ("log.retention.hours", "168", DEFAULT)]
    if version >= 3:
        assert entry.config_type == 5  # LONG
        assert configs["cleanup.policy"].config_type == 7  # LIST
        assert configs["segment.bytes"].documentation


def test_describe_configs_topic_defaults(h):
    create_one(h, topic("t"))
    configs = describe_topic(h, "t", synonyms=True)
    segment = configs["segment.bytes"]
    assert (segment.value, segment.config_source) == ("1073741824", DEFAULT)
    assert [(s.name, s.value, s.source) for s in segment.synonyms] == [
        ("log.segment.bytes", "1073741824", DEFAULT)]
    retention = configs["retention.ms"]
    assert (retention.value, retention.config_source) == ("604800000", DEFAULT)
    assert configs["cleanup.policy"].value == "delete"
    flush = configs["flush.ms"]  # its broker synonym has no default
    assert (flush.config_source, flush.synonyms) == (DEFAULT, ())


def test_describe_configs_static_broker_synonyms(admin):
    h = admin({"log.retention.hours": "24", "log.segment.bytes": "1048576"})
    create_one(h, topic("t", configs={"segment.bytes": "2097152"}))
    configs = describe_topic(h, "t", synonyms=True)
    retention = configs["retention.ms"]
    assert (retention.value, retention.config_source) == (str(24 * 3600 * 1000), STATIC_BROKER)
    assert [(s.name, s.value, s.source) for s in retention.synonyms] == [
        ("log.retention.hours", "24", STATIC_BROKER), ("log.retention.hours", "168", DEFAULT)]
    segment = configs["segment.bytes"]
    assert (segment.value, segment.config_source) == ("2097152", DYNAMIC_TOPIC)
    assert [(s.name, s.value, s.source) for s in segment.synonyms] == [
        ("segment.bytes", "2097152", DYNAMIC_TOPIC), ("log.segment.bytes", "1048576", STATIC_BROKER),
        ("log.segment.bytes", "1073741824", DEFAULT)]


def test_describe_configs_without_synonyms_and_with_key_filter(h):
    create_one(h, topic("t"))
    (result,) = describe(h, (TOPIC, "t", ("retention.ms", "segment.ms")))
    assert sorted(c.name for c in result.configs) == ["retention.ms", "segment.ms"]
    assert all(c.synonyms == () and c.documentation is None for c in result.configs)
    (everything,) = describe(h, (TOPIC, "t", ()))
    assert len(everything.configs) == len(TOPIC_KEYS)


def test_describe_configs_unknown_and_invalid_topic(h):
    unknown, invalid = describe(h, (TOPIC, "nowhere"), (TOPIC, "no way"))
    assert (unknown.error_code, unknown.resource_name, unknown.configs) == (
        ErrorCode.unknown_topic_or_partition, "nowhere", ())
    assert "nowhere" in unknown.error_message
    assert invalid.error_code == ErrorCode.invalid_topic_exception


@pytest.mark.parametrize("version", range(1, 5))
def test_describe_configs_broker(admin, version):
    h = admin({"num.partitions": "6", "broker.id": "3"})
    (result,) = describe(h, (BROKER, "3"), version=version, synonyms=True)
    assert result.error_code == ErrorCode.none
    configs = {c.name: c for c in result.configs}
    assert set(configs) == set(BROKER_KEYS)
    assert (configs["num.partitions"].value, configs["num.partitions"].config_source) == ("6", STATIC_BROKER)
    assert [(s.name, s.value, s.source) for s in configs["num.partitions"].synonyms] == [
        ("num.partitions", "6", STATIC_BROKER), ("num.partitions", "1", DEFAULT)]
    assert (configs["log.segment.bytes"].value, configs["log.segment.bytes"].config_source) == (
        "1073741824", DEFAULT)
    hours = configs["log.retention.hours"]
    assert (hours.value, hours.config_source) == ("168", DEFAULT)
    millis = configs["log.retention.ms"]
    assert (millis.value, millis.config_source, millis.synonyms) == (None, DEFAULT, ())


def test_describe_configs_broker_names(h):
    default, other, garbage = describe(h, (BROKER, ""), (BROKER, "7"), (BROKER, "zero"))
    assert (default.error_code, default.configs) == (ErrorCode.none, ())
    assert other.error_code == ErrorCode.invalid_request and "7" in other.error_message
    assert garbage.error_code == ErrorCode.invalid_request and "integer" in garbage.error_message


def test_describe_configs_broker_logger(h):
    ours, empty = describe(h, (BROKER_LOGGER, "0"), (BROKER_LOGGER, ""))
    assert ours.error_code == ErrorCode.none
    names = {c.name: c for c in ours.configs}
    assert "root" in names
    assert names["root"].value in {"ALL", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
    assert empty.error_code == ErrorCode.invalid_request


@pytest.mark.parametrize("resource_type", [0, 1, 3, 16])
def test_describe_configs_unsupported_resource_type(h, resource_type):
    (result,) = describe(h, (resource_type, "x"))
    assert result.error_code == ErrorCode.invalid_request
    assert result.resource_type == resource_type


# -- DescribeCluster -----------------------------------------------------------------------

@pytest.mark.parametrize("version", range(0, 3))
def test_describe_cluster_every_version(h, version):
    response = cluster(h, version)
    assert response.error_code == ErrorCode.none
    assert response.cluster_id == h.context.cluster_id
    assert response.controller_id == 0
    assert [(b.broker_id, b.host, b.port) for b in response.brokers] == [(0, "127.0.0.1", 9092)]
    assert response.cluster_authorized_operations == -(2**31)
    if version >= 2:
        assert response.brokers[0].is_fenced is False


def test_describe_cluster_authorized_operations_when_asked(h):
    operations = cluster(h, operations=True).cluster_authorized_operations
    assert operations > 0
    assert operations & (1 << 8)  # DESCRIBE


@pytest.mark.parametrize("endpoint_type, code", [
    (2, ErrorCode.mismatched_endpoint_type), (3, ErrorCode.unsupported_endpoint_type),
    (0, ErrorCode.unsupported_endpoint_type)])
def test_describe_cluster_endpoint_types(h, endpoint_type, code):
    response = cluster(h, version=1, endpoint_type=endpoint_type)
    assert response.error_code == code
    assert response.error_message
    assert response.brokers == ()


# -- registration --------------------------------------------------------------------------

def test_admin_apis_are_advertised(h):
    q = h.req(18, 3)
    response = h.call(q.ApiVersionsRequest(client_software_name="t", client_software_version="1"))
    ranges = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert ranges[CREATE_TOPICS] == (2, 7)
    assert ranges[DELETE_TOPICS] == (1, 6)
    assert ranges[CREATE_PARTITIONS] == (0, 3)
    assert ranges[DESCRIBE_CONFIGS] == (1, 4)
    assert ranges[DESCRIBE_CLUSTER] == (0, 2)
