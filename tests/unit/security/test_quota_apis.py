"""DescribeClientQuotas and AlterClientQuotas on a lone broker: Kafka's validation
(INVALID_REQUEST per entry, validate_only), the match filters, the authorization checks, and
the quotas kept in the data directory across a restart."""

from __future__ import annotations

import datetime

import pytest

from acl_harness import ADMIN, ALICE, AUTHORIZER, Q
from kavka.api.inter_broker import InterBrokerIdentity
from kavka.protocol import messages, record_codec
from kavka.protocol.errors import ErrorCode

ALTER, DESCRIBE = 49, 48
EXACT, DEFAULT, SPECIFIED = 0, 1, 2


def alter(b, *entries, validate_only=False, version=1, who=ADMIN):
    """entries: ({type: name}, {key: value or None (remove)})"""
    q = Q(ALTER, version)
    wire = tuple(q.EntryData(entity=tuple(q.EntityData(entity_type=t, entity_name=n) for t, n in entity.items()),
                             ops=tuple(q.OpData(key=k, value=0.0 if v is None else float(v), remove=v is None)
                                       for k, v in ops.items()))
                 for entity, ops in entries)
    response = b.call(q.AlterClientQuotasRequest(entries=wire, validate_only=validate_only), who)
    return [e.error_code for e in response.entries]


def describe(b, *components, strict=False, version=1, who=ADMIN):
    q = Q(DESCRIBE, version)
    wire = tuple(q.ComponentData(entity_type=t, match_type=m, match=n) for t, m, n in components)
    response = b.call(q.DescribeClientQuotasRequest(components=wire, strict=strict), who)
    if response.error_code != ErrorCode.none:
        return response.error_code
    return [(tuple((e.entity_type, e.entity_name) for e in entry.entity),
             tuple((v.key, v.value) for v in entry.values)) for entry in response.entries]


def test_set_describe_remove(broker_at):
    b = broker_at()
    assert alter(b, ({"user": "alice"}, {"producer_byte_rate": 1024, "consumer_byte_rate": 2048}),
                 ({"user": None, "client-id": "app"}, {"request_percentage": 50.5}),
                 ({"client-id": None}, {"producer_byte_rate": 10})) == [ErrorCode.none] * 3
    assert describe(b) == [
        ((("client-id", None),), (("producer_byte_rate", 10.0),)),
        ((("user", None), ("client-id", "app")), (("request_percentage", 50.5),)),
        ((("user", "alice"),), (("consumer_byte_rate", 2048.0), ("producer_byte_rate", 1024.0))),
    ]
    assert alter(b, ({"user": "alice"}, {"producer_byte_rate": None})) == [ErrorCode.none]
    assert describe(b, ("user", EXACT, "alice")) == [((("user", "alice"),), (("consumer_byte_rate", 2048.0),))]
    assert alter(b, ({"user": "alice"}, {"consumer_byte_rate": None})) == [ErrorCode.none]
    assert describe(b, ("user", EXACT, "alice")) == []


def test_filters_exact_default_specified_and_strict(broker_at):
    b = broker_at()
    alter(b, ({"user": "alice"}, {"producer_byte_rate": 1}), ({"user": None}, {"producer_byte_rate": 2}),
          ({"user": "bob", "client-id": "app"}, {"producer_byte_rate": 3}), ({"ip": "10.0.0.1"},
                                                                              {"connection_creation_rate": 4}))
    values = lambda found: [v[0][1] for _e, v in found]  # noqa: E731
    assert values(describe(b, ("user", DEFAULT, None))) == [2]
    assert values(describe(b, ("user", SPECIFIED, None))) == [1, 3]
    assert values(describe(b, ("user", SPECIFIED, None), strict=True)) == [1]
    assert values(describe(b, ("client-id", EXACT, "app"))) == [3]
    assert values(describe(b, ("ip", SPECIFIED, None))) == [4]


@pytest.mark.parametrize("entity,ops", [
    ({"ip": "10.0.0.1", "user": "alice"}, {"connection_creation_rate": 1}),
    ({"ip": None}, {"producer_byte_rate": 1}),
    ({"user": "alice"}, {"connection_creation_rate": 1}),
    ({"user": "alice"}, {"producer_byte_rate": 1.5}),
    ({"user": "alice"}, {"producer_byte_rate": -5}),
    ({"group": "g"}, {"producer_byte_rate": 1}),
    ({"user": "alice"}, {"no_such_key": 1}),
])
def test_invalid_entries_are_refused_the_others_applied(broker_at, entity, ops):
    b = broker_at()
    assert alter(b, (entity, ops), ({"client-id": "ok"}, {"producer_byte_rate": 7})) == [
        ErrorCode.invalid_request, ErrorCode.none]
    assert describe(b) == [((("client-id", "ok"),), (("producer_byte_rate", 7.0),))]


def test_bad_filters_are_invalid_request(broker_at):
    b = broker_at()
    assert describe(b, ("ip", SPECIFIED, None), ("user", SPECIFIED, None)) == ErrorCode.invalid_request
    assert describe(b, ("user", EXACT, None)) == ErrorCode.invalid_request
    assert describe(b, ("user", DEFAULT, None), ("user", SPECIFIED, None)) == ErrorCode.invalid_request


def test_validate_only_changes_nothing(broker_at, tmp_path):
    b = broker_at()
    assert alter(b, ({"user": "alice"}, {"producer_byte_rate": 5}), validate_only=True) == [ErrorCode.none]
    assert alter(b, ({"user": "alice"}, {"producer_byte_rate": 5.5}), validate_only=True) == [
        ErrorCode.invalid_request]
    assert describe(b) == []
    assert not list(tmp_path.rglob("client_quotas.json"))


def test_quotas_survive_a_restart(broker_at):
    b = broker_at()
    alter(b, ({"user": "alice", "client-id": None}, {"producer_byte_rate": 1048576}))
    b.close()
    again = broker_at()
    assert describe(again, version=0) == [((("user", "alice"), ("client-id", None)),
                                           (("producer_byte_rate", 1048576.0),))]


def test_authorization_on_the_cluster(broker_at):
    b = broker_at({"authorizer.class.name": AUTHORIZER, "super.users": "User:admin"})
    assert alter(b, ({"user": "alice"}, {"producer_byte_rate": 5}), who=ALICE) == [
        ErrorCode.cluster_authorization_failed]
    assert describe(b, who=ALICE) == ErrorCode.cluster_authorization_failed
    assert describe(b) == []
    assert alter(b, ({"user": "alice"}, {"producer_byte_rate": 5})) == [ErrorCode.none]


CREATE_TOPICS, DELETE_TOPICS = 19, 20


def create_topics(b, names, version, partitions=5):
    q = Q(CREATE_TOPICS, version)
    topics = tuple(q.CreatableTopic(name=n, num_partitions=partitions, replication_factor=1, assignments=(),
                                    configs=()) for n in names)
    response = b.call(q.CreateTopicsRequest(topics=topics, timeout=datetime.timedelta(seconds=5),
                                            validate_only=False))
    return [t.error_code for t in response.topics], response.throttle_time.total_seconds() * 1000


def test_controller_mutation_rate_refuses_strict_requests_and_throttles_older_ones(broker_at):
    b = broker_at()
    # burst: 1 partition/s * 11 s (controller.quota.window.num * size) = 11 partitions
    alter(b, ({"client-id": "acl-test"}, {"controller_mutation_rate": 1}))
    codes, throttle = create_topics(b, ["a", "b", "c", "d"], version=6)
    assert codes == [ErrorCode.none, ErrorCode.none, ErrorCode.none, ErrorCode.throttling_quota_exceeded]
    assert throttle == 4000                         # 15 taken of 11: 4 s to climb back to zero
    codes, throttle = create_topics(b, ["e"], version=5)   # before KIP-599: created, throttled
    assert codes == [ErrorCode.none] and throttle == 9000
    b.clock.advance(9000)
    codes, _ = create_topics(b, ["f"], version=7, partitions=1)
    assert codes == [ErrorCode.none]
    assert sorted(b.context.metadata.topic_names()) == ["a", "b", "c", "e", "f"]


class ThrottledConn:
    peer = "127.0.0.1:50000"

    def __init__(self) -> None:
        self.throttles: list[int] = []

    def throttle(self, ms: int) -> None:
        self.throttles.append(ms)


def api_versions_frame(client_id: str) -> bytes:
    body = Q(18, 3).ApiVersionsRequest(client_software_name="t", client_software_version="1")
    return messages.encode_request_frame(body, 7, client_id)[4:]


def test_request_percentage_counts_handler_time_and_mutes_the_connection(broker_at):
    b = broker_at()
    alter(b, ({"client-id": "busy"}, {"request_percentage": 0.0001}))   # a microsecond a second
    busy, idle = ThrottledConn(), ThrottledConn()
    for _ in range(3):
        assert b.dispatcher.handle(api_versions_frame("busy"), busy)
        assert b.dispatcher.handle(api_versions_frame("calm"), idle)
    assert busy.throttles and all(ms > 0 for ms in busy.throttles)
    assert idle.throttles == []


def test_the_brokers_own_requests_count_against_no_quota(broker_at):
    """On a cluster's PLAINTEXT inter-broker listener the client id is all that names a broker;
    a lone broker has no other brokers, so there the same client id is just a client's."""
    b = broker_at()
    alter(b, ({"client-id": None}, {"request_percentage": 0.0001}))   # every client id's default
    alone = ThrottledConn()
    for _ in range(3):
        b.dispatcher.handle(api_versions_frame("kavka-broker-2"), alone)
    assert alone.throttles
    b.context.inter_broker = InterBrokerIdentity("PLAINTEXT", authenticated=False)
    client, broker = ThrottledConn(), ThrottledConn()
    for _ in range(3):
        b.dispatcher.handle(api_versions_frame("some-client"), client)
        b.dispatcher.handle(api_versions_frame("kavka-broker-2"), broker)
    assert client.throttles and broker.throttles == []


def test_create_partitions_and_delete_topics_take_from_the_same_bucket(broker_at):
    b = broker_at()
    create_topics(b, ["x", "y"], version=7, partitions=2)     # before any quota: nothing counted
    alter(b, ({"client-id": "acl-test"}, {"controller_mutation_rate": 0.5}))   # burst 5.5 partitions
    q = Q(37, 3)
    grow = b.call(q.CreatePartitionsRequest(topics=(q.CreatePartitionsTopic(name="x", count=8, assignments=None),),
                                            timeout=datetime.timedelta(seconds=5), validate_only=False))
    assert [t.error_code for t in grow.results] == [ErrorCode.none]   # 6 taken: 0.5 below zero
    assert grow.throttle_time.total_seconds() == 1
    q = Q(DELETE_TOPICS, 5)
    gone = b.call(q.DeleteTopicsRequest(topic_names=("y",), timeout=datetime.timedelta(seconds=5)))
    assert [t.error_code for t in gone.responses] == [ErrorCode.throttling_quota_exceeded]
    q = Q(DELETE_TOPICS, 4)   # before KIP-599: deleted, and throttled
    gone = b.call(q.DeleteTopicsRequest(topic_names=("y",), timeout=datetime.timedelta(seconds=5)))
    assert [t.error_code for t in gone.responses] == [ErrorCode.none] and gone.throttle_time.total_seconds() == 5
    assert b.context.metadata.topic_names() == ["x"]


def test_a_quota_d_consumer_fetches_at_most_window_num_minus_one_samples_worth(broker_at):
    b = broker_at()
    assert create_topics(b, ["t"], version=7, partitions=1)[0] == [ErrorCode.none]
    q = Q(0, 9)
    for _ in range(6):   # six batches of about 4 kB
        batch = record_codec.encode_batch([(b"k", b"v" * 4000, 1_000, ())])
        b.call(q.ProduceRequest(transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=5), topic_data=(
            q.TopicProduceData(name="t", partition_data=(q.PartitionProduceData(index=0, records=batch),)),)))
    alter(b, ({"client-id": "acl-test"}, {"consumer_byte_rate": 1000}))   # 10 kB in 11 samples of 1 s
    f = Q(1, 12)
    fetch = f.FetchRequest(replica_id=-1, max_wait=datetime.timedelta(0), min_bytes=1, max_bytes=1 << 20,
                           isolation_level=0, session_id=0, session_epoch=-1, rack_id="", forgotten_topics_data=(),
                           topics=(f.FetchTopic(topic="t", partitions=(f.FetchPartition(
                               partition=0, current_leader_epoch=-1, fetch_offset=0, last_fetched_epoch=-1,
                               log_start_offset=-1, partition_max_bytes=1 << 20),)),))
    first = b.call(fetch)
    assert first.throttle_time.total_seconds() > 0 and first.responses == ()   # 8 kB over 1 s: throttled, empty
    b.clock.advance(10_000)
    records = b.call(fetch).responses[0].partitions[0].records
    # two batches (8 kB over 10 s, within the quota); all six (24 kB) would always be throttled
    assert 8000 <= len(records) <= 10_000
