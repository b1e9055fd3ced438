"""The authorization matrix: for each API kavka checks, a principal (User:alice) without the
ACL Kafka requires gets Kafka's error and nothing changes in the data directory; with the
ACL the same request is answered as usual.  Plus DENY over ALLOW, PREFIXED, super users and
allow.everyone.if.no.acl.found at the API level, and Metadata listing only described topics."""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from dataclasses import dataclass
from typing import Callable

import pytest

from acl_harness import ADMIN, ALICE, AUTHORIZER, Broker, Q, acl, tree_digest
from kavka.protocol import record_codec
from kavka.security.principal import ANONYMOUS
from kavka.protocol.errors import ErrorCode as E
from kavka.security.acl import AclOperation as Op, AclPermission as Perm, PatternType as Pat, ResourceType as Res

MS = datetime.timedelta(milliseconds=1)
TIMEOUT = 5000 * MS
TOPIC, GROUP, TXN = "orders", "g1", "tx1"
SECURED = {"authorizer.class.name": AUTHORIZER, "super.users": "User:admin", "num.partitions": 1}
CLUSTER = "kafka-cluster"


def batch() -> bytes:
    return record_codec.encode_batch([(b"k", b"v", 1_000, ())])


def produce(b):
    q = Q(0, 9)
    return q.ProduceRequest(transactional_id=None, acks=1, timeout=TIMEOUT, topic_data=(q.TopicProduceData(
        name=TOPIC, partition_data=(q.PartitionProduceData(index=0, records=batch()),)),))


def fetch(b):
    q = Q(1, 12)
    return q.FetchRequest(replica_id=-1, max_wait=0 * MS, min_bytes=0, max_bytes=1 << 20, isolation_level=0,
                          session_id=0, session_epoch=-1, rack_id="", forgotten_topics_data=(), topics=(
                              q.FetchTopic(topic=TOPIC, partitions=(q.FetchPartition(
                                  partition=0, current_leader_epoch=-1, fetch_offset=0, last_fetched_epoch=-1,
                                  log_start_offset=-1, partition_max_bytes=1 << 20),)),))


def list_offsets(b):
    q = Q(2, 8)
    return q.ListOffsetsRequest(replica_id=-1, isolation_level=0, topics=(q.ListOffsetsTopic(
        name=TOPIC, partitions=(q.ListOffsetsPartition(partition_index=0, current_leader_epoch=-1,
                                                       timestamp=-1),)),))


def metadata(b, name=TOPIC, create=False):
    q = Q(3, 12)
    return q.MetadataRequest(topics=(q.MetadataRequestTopic(topic_id=uuid.UUID(int=0), name=name),),
                             allow_auto_topic_creation=create, include_topic_authorized_operations=True)


def create_topics(b):
    q = Q(19, 7)
    return q.CreateTopicsRequest(timeout=TIMEOUT, validate_only=False, topics=(q.CreatableTopic(
        name="fresh", num_partitions=1, replication_factor=1, assignments=(), configs=()),))


def delete_topics(b):
    q = Q(20, 5)
    return q.DeleteTopicsRequest(topic_names=(TOPIC,), timeout=TIMEOUT)


def create_partitions(b):
    q = Q(37, 3)
    return q.CreatePartitionsRequest(timeout=TIMEOUT, validate_only=False, topics=(
        q.CreatePartitionsTopic(name=TOPIC, count=3, assignments=None),))


def delete_records(b):
    q = Q(21, 2)
    return q.DeleteRecordsRequest(timeout=TIMEOUT, topics=(q.DeleteRecordsTopic(
        name=TOPIC, partitions=(q.DeleteRecordsPartition(partition_index=0, offset=-1),)),))


def describe_configs(b, rtype=2, name=TOPIC):
    q = Q(32, 4)
    return q.DescribeConfigsRequest(include_synonyms=False, include_documentation=False, resources=(
        q.DescribeConfigsResource(resource_type=rtype, resource_name=name, configuration_keys=None),))


def alter_configs(b, rtype=2, name=TOPIC, key="retention.ms", value="1000"):
    q = Q(44, 1)
    return q.IncrementalAlterConfigsRequest(validate_only=False, resources=(q.AlterConfigsResource(
        resource_type=rtype, resource_name=name, configs=(
            q.AlterableConfig(name=key, config_operation=0, value=value),)),))


def init_producer_id(b):
    return Q(22, 5).InitProducerIdRequest(transactional_id=None, transaction_timeout=60_000 * MS,
                                          producer_id=-1, producer_epoch=-1)


def join_group(b):
    q = Q(11, 9)
    return q.JoinGroupRequest(group_id=GROUP, session_timeout=10_000 * MS, rebalance_timeout=10_000 * MS,
                              member_id="", group_instance_id=None, protocol_type="consumer", reason=None,
                              protocols=(q.JoinGroupRequestProtocol(name="range", metadata=b""),))


def consumer_heartbeat(b):
    return Q(68, 1).ConsumerGroupHeartbeatRequest(
        group_id=GROUP, member_id=uuid.uuid4().hex[:22], member_epoch=0, instance_id=None, rack_id=None,
        rebalance_timeout=10_000 * MS, subscribed_topic_names=(TOPIC,), subscribed_topic_regex=None,
        server_assignor=None, topic_partitions=())


def offset_commit(b):
    q = Q(8, 8)
    return q.OffsetCommitRequest(group_id=GROUP, generation_id_or_member_epoch=-1, member_id="",
                                 group_instance_id=None, topics=(q.OffsetCommitRequestTopic(
                                     name=TOPIC, partitions=(q.OffsetCommitRequestPartition(
                                         partition_index=0, committed_offset=0, committed_leader_epoch=-1,
                                         committed_metadata=""),)),))


def offset_fetch(b):
    q = Q(9, 8)
    return q.OffsetFetchRequest(require_stable=False, groups=(q.OffsetFetchRequestGroup(
        group_id=GROUP, topics=(q.OffsetFetchRequestTopics(name=TOPIC, partition_indexes=(0,)),)),))


def describe_groups(b):
    return Q(15, 5).DescribeGroupsRequest(groups=(GROUP,), include_authorized_operations=True)


def delete_groups(b):
    return Q(42, 2).DeleteGroupsRequest(groups_names=(GROUP,))


def find_coordinator(b):
    return Q(10, 4).FindCoordinatorRequest(key_type=0, coordinator_keys=(GROUP,))


def end_txn(b):
    return Q(26, 3).EndTxnRequest(transactional_id=TXN, producer_id=1, producer_epoch=0, committed=True)


def init_transactional(b):
    return Q(22, 5).InitProducerIdRequest(transactional_id=TXN, transaction_timeout=60_000 * MS,
                                          producer_id=-1, producer_epoch=-1)


def produce_transactional(b):
    q = Q(0, 9)
    records = record_codec.encode_batch([(b"k", b"v", 1_000, ())], producer_id=7, producer_epoch=0,
                                        base_sequence=0, transactional=True)
    return q.ProduceRequest(transactional_id=TXN, acks=1, timeout=TIMEOUT, topic_data=(q.TopicProduceData(
        name=TOPIC, partition_data=(q.PartitionProduceData(index=0, records=records),)),))


def add_partitions(b):
    q = Q(24, 3)
    return q.AddPartitionsToTxnRequest(v3_and_below_transactional_id=TXN, v3_and_below_producer_id=7,
                                       v3_and_below_producer_epoch=0, v3_and_below_topics=(
                                           q.AddPartitionsToTxnTopic(name=TOPIC, partitions=(0,)),))


def txn_offset_commit(b):
    q = Q(28, 3)
    return q.TxnOffsetCommitRequest(transactional_id=TXN, group_id=GROUP, producer_id=7, producer_epoch=0,
                                    generation_id=-1, member_id="", group_instance_id=None, topics=(
                                        q.TxnOffsetCommitRequestTopic(name=TOPIC, partitions=(
                                            q.TxnOffsetCommitRequestPartition(
                                                partition_index=0, committed_offset=0, committed_leader_epoch=-1,
                                                committed_metadata=""),)),))


def describe_transactions(b):
    return Q(65, 0).DescribeTransactionsRequest(transactional_ids=(TXN,))


def write_txn_markers(b):
    q = Q(27, 1)
    return q.WriteTxnMarkersRequest(markers=(q.WritableTxnMarker(
        producer_id=1, producer_epoch=0, transaction_result=False, coordinator_epoch=0,
        topics=(q.WritableTxnMarkerTopic(name=TOPIC, partition_indexes=(0,)),)),))


def elect_leaders(b):
    q = Q(43, 2)
    return q.ElectLeadersRequest(election_type=0, timeout=TIMEOUT,
                                 topic_partitions=(q.TopicPartitions(topic=TOPIC, partitions=(0,)),))


def describe_log_dirs(b):
    return Q(35, 4).DescribeLogDirsRequest(topics=None)


def list_reassignments(b):
    return Q(46, 0).ListPartitionReassignmentsRequest(timeout=TIMEOUT, topics=None)


def offset_for_leader_epoch(b):
    q = Q(23, 4)
    return q.OffsetForLeaderEpochRequest(replica_id=-1, topics=(q.OffsetForLeaderTopic(
        topic=TOPIC, partitions=(q.OffsetForLeaderPartition(partition=0, current_leader_epoch=-1,
                                                            leader_epoch=0),)),))


def describe_producers(b):
    q = Q(61, 0)
    return q.DescribeProducersRequest(topics=(q.TopicRequest(name=TOPIC, partition_indexes=(0,)),))


# -- what each answer says ------------------------------------------------------------------

def produce_codes(resp):
    return [p.error_code for t in resp.responses for p in t.partition_responses]


def fetch_codes(resp):
    return [p.error_code for t in resp.responses for p in t.partitions]


def list_offsets_codes(resp):
    return [p.error_code for t in resp.topics for p in t.partitions]


def topic_codes(resp):
    return [t.error_code for t in resp.topics]


def describe_scram(b):
    q = Q(50, 0)
    return q.DescribeUserScramCredentialsRequest(users=None)


def alter_scram(b):
    q = Q(51, 0)
    return q.AlterUserScramCredentialsRequest(deletions=(), upsertions=(q.ScramCredentialUpsertion(
        name="bob", mechanism=1, iterations=4096, salt=b"salt" * 4, salted_password=b"p" * 32),))


def results_codes(resp):
    return [t.error_code for t in resp.results]


def responses_codes(resp):
    return [t.error_code for t in resp.responses]


def top(resp):
    return [resp.error_code]


def commit_codes(resp):
    return [p.error_code for t in resp.topics for p in t.partitions]


def offset_fetch_codes(resp):
    """The group's code, then each partition's; a refused group's partitions show no offset (-1)."""
    assert all(p.committed_offset == -1 for g in resp.groups if g.error_code for t in g.topics for p in t.partitions)
    return [g.error_code for g in resp.groups] + [p.error_code for g in resp.groups for t in g.topics
                                                  for p in t.partitions]


def groups_codes(resp):
    return [g.error_code for g in resp.groups]


def coordinator_codes(resp):
    return [c.error_code for c in resp.coordinators]


def marker_codes(resp):
    return [p.error_code for m in resp.markers for t in m.topics for p in t.partitions]


def add_partitions_codes(resp):
    return [p.partition_error_code for t in resp.results_by_topic_v3_and_below for p in t.results_by_partition]


def txn_states_codes(resp):
    return [t.error_code for t in resp.transaction_states]


def elect_codes(resp):
    return [resp.error_code] + [p.error_code for t in resp.replica_election_results for p in t.partition_result]


def epoch_codes(resp):
    return [p.error_code for t in resp.topics for p in t.partitions]


def producers_codes(resp):
    return [p.error_code for t in resp.topics for p in t.partitions]


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable
    codes: Callable
    refused: list
    grants: tuple
    allowed: list


def topic_acl(op, name=TOPIC):
    return acl(Res.TOPIC, name, op)


def cluster_acl(op):
    return acl(Res.CLUSTER, CLUSTER, op)


CASES = [
    Case("Produce", produce, produce_codes, [E.topic_authorization_failed], (topic_acl(Op.WRITE),), [E.none]),
    Case("Fetch", fetch, fetch_codes, [E.topic_authorization_failed], (topic_acl(Op.READ),), [E.none]),
    Case("ListOffsets", list_offsets, list_offsets_codes, [E.topic_authorization_failed],
         (topic_acl(Op.DESCRIBE),), [E.none]),
    Case("Metadata", metadata, topic_codes, [E.topic_authorization_failed], (topic_acl(Op.DESCRIBE),), [E.none]),
    Case("Metadata auto-create", lambda b: metadata(b, "auto", create=True), topic_codes,
         [E.topic_authorization_failed], (topic_acl(Op.DESCRIBE, "auto"), topic_acl(Op.CREATE, "auto")), [E.none]),
    Case("CreateTopics", create_topics, topic_codes, [E.topic_authorization_failed], (cluster_acl(Op.CREATE),),
         [E.none]),
    Case("CreateTopics per topic", create_topics, topic_codes, [E.topic_authorization_failed],
         (topic_acl(Op.CREATE, "fresh"),), [E.none]),
    Case("DeleteTopics", delete_topics, responses_codes, [E.topic_authorization_failed],
         (topic_acl(Op.DELETE),), [E.none]),
    Case("CreatePartitions", create_partitions, results_codes, [E.topic_authorization_failed],
         (topic_acl(Op.ALTER),), [E.none]),
    Case("DeleteRecords", delete_records, list_offsets_codes,
         [E.topic_authorization_failed], (topic_acl(Op.DELETE),), [E.none]),
    Case("DescribeConfigs topic", describe_configs, results_codes, [E.topic_authorization_failed],
         (topic_acl(Op.DESCRIBE_CONFIGS),), [E.none]),
    Case("DescribeConfigs broker", lambda b: describe_configs(b, 4, "0"), results_codes,
         [E.cluster_authorization_failed], (cluster_acl(Op.DESCRIBE_CONFIGS),), [E.none]),
    Case("IncrementalAlterConfigs topic", alter_configs, responses_codes, [E.topic_authorization_failed],
         (topic_acl(Op.ALTER_CONFIGS),), [E.none]),
    Case("IncrementalAlterConfigs broker", lambda b: alter_configs(b, 4, "0", "log.cleaner.threads", "2"),
         responses_codes, [E.cluster_authorization_failed], (cluster_acl(Op.ALTER_CONFIGS),), [E.none]),
    Case("InitProducerId idempotent", init_producer_id, top, [E.cluster_authorization_failed],
         (cluster_acl(Op.IDEMPOTENT_WRITE),), [E.none]),
    Case("InitProducerId by topic WRITE", init_producer_id, top, [E.cluster_authorization_failed],
         (topic_acl(Op.WRITE, "any"),), [E.none]),
    Case("JoinGroup", join_group, top, [E.group_authorization_failed], (acl(Res.GROUP, GROUP),),
         [E.member_id_required]),
    Case("ConsumerGroupHeartbeat group", consumer_heartbeat, top, [E.group_authorization_failed],
         (topic_acl(Op.DESCRIBE),), [E.group_authorization_failed]),
    Case("ConsumerGroupHeartbeat topic", consumer_heartbeat, top, [E.group_authorization_failed],
         (acl(Res.GROUP, GROUP),), [E.topic_authorization_failed]),
    Case("ConsumerGroupHeartbeat", consumer_heartbeat, top, [E.group_authorization_failed],
         (acl(Res.GROUP, GROUP), topic_acl(Op.DESCRIBE)), [E.none]),
    Case("OffsetCommit group", offset_commit, commit_codes, [E.group_authorization_failed],
         (topic_acl(Op.READ),), [E.group_authorization_failed]),
    Case("OffsetCommit", offset_commit, commit_codes, [E.group_authorization_failed],
         (topic_acl(Op.READ), acl(Res.GROUP, GROUP)), [E.none]),
    Case("OffsetCommit topic", offset_commit, commit_codes, [E.group_authorization_failed],
         (acl(Res.GROUP, GROUP),), [E.topic_authorization_failed]),
    Case("OffsetFetch", offset_fetch, offset_fetch_codes, [E.group_authorization_failed, E.none],
         (acl(Res.GROUP, GROUP, Op.DESCRIBE), topic_acl(Op.DESCRIBE)), [E.none, E.none]),
    Case("DescribeGroups", describe_groups, groups_codes, [E.group_authorization_failed],
         (acl(Res.GROUP, GROUP, Op.DESCRIBE),), [E.none]),
    Case("DeleteGroups", delete_groups, results_codes, [E.group_authorization_failed],
         (acl(Res.GROUP, GROUP, Op.DELETE),), [E.group_id_not_found]),
    Case("FindCoordinator", find_coordinator, coordinator_codes, [E.group_authorization_failed],
         (acl(Res.GROUP, GROUP, Op.DESCRIBE),), [E.none]),
    Case("EndTxn", end_txn, top, [E.transactional_id_authorization_failed],
         (acl(Res.TRANSACTIONAL_ID, TXN, Op.WRITE),), [E.invalid_producer_id_mapping]),
    Case("InitProducerId transactional", init_transactional, top, [E.transactional_id_authorization_failed],
         (acl(Res.TRANSACTIONAL_ID, TXN, Op.WRITE),), [E.none]),
    Case("Produce transactional", produce_transactional, produce_codes, [E.transactional_id_authorization_failed],
         (acl(Res.TRANSACTIONAL_ID, TXN, Op.WRITE),), [E.topic_authorization_failed]),
    Case("AddPartitionsToTxn id", add_partitions, add_partitions_codes, [E.transactional_id_authorization_failed],
         (topic_acl(Op.WRITE),), [E.transactional_id_authorization_failed]),
    Case("AddPartitionsToTxn topic", add_partitions, add_partitions_codes,
         [E.transactional_id_authorization_failed], (acl(Res.TRANSACTIONAL_ID, TXN, Op.WRITE),),
         [E.topic_authorization_failed]),
    Case("AddPartitionsToTxn", add_partitions, add_partitions_codes, [E.transactional_id_authorization_failed],
         (acl(Res.TRANSACTIONAL_ID, TXN, Op.WRITE), topic_acl(Op.WRITE)), [E.invalid_producer_id_mapping]),
    Case("TxnOffsetCommit id", txn_offset_commit, commit_codes, [E.transactional_id_authorization_failed],
         (acl(Res.GROUP, GROUP), topic_acl(Op.READ)), [E.transactional_id_authorization_failed]),
    Case("TxnOffsetCommit group", txn_offset_commit, commit_codes, [E.transactional_id_authorization_failed],
         (acl(Res.TRANSACTIONAL_ID, TXN, Op.WRITE), topic_acl(Op.READ)), [E.group_authorization_failed]),
    Case("TxnOffsetCommit topic", txn_offset_commit, commit_codes, [E.transactional_id_authorization_failed],
         (acl(Res.TRANSACTIONAL_ID, TXN, Op.WRITE), acl(Res.GROUP, GROUP)), [E.topic_authorization_failed]),
    Case("DescribeTransactions", describe_transactions, txn_states_codes, [E.transactional_id_authorization_failed],
         (acl(Res.TRANSACTIONAL_ID, TXN, Op.DESCRIBE),), [E.transactional_id_not_found]),
    Case("WriteTxnMarkers", write_txn_markers, marker_codes, [E.cluster_authorization_failed],
         (cluster_acl(Op.CLUSTER_ACTION),), [E.none]),
    Case("ElectLeaders", elect_leaders, elect_codes, [E.cluster_authorization_failed] * 2,
         (cluster_acl(Op.ALTER),), [E.none, E.election_not_needed]),
    Case("DescribeLogDirs", describe_log_dirs, top, [E.cluster_authorization_failed],
         (cluster_acl(Op.DESCRIBE),), [E.none]),
    Case("ListPartitionReassignments", list_reassignments, top, [E.cluster_authorization_failed],
         (cluster_acl(Op.DESCRIBE),), [E.none]),
    Case("OffsetForLeaderEpoch", offset_for_leader_epoch, epoch_codes, [E.topic_authorization_failed],
         (topic_acl(Op.DESCRIBE),), [E.none]),
    Case("DescribeProducers", describe_producers, producers_codes, [E.topic_authorization_failed],
         (topic_acl(Op.READ),), [E.none]),
    Case("DescribeUserScramCredentials", describe_scram, top, [E.cluster_authorization_failed],
         (cluster_acl(Op.DESCRIBE),), [E.none]),
    Case("AlterUserScramCredentials", alter_scram, results_codes, [E.cluster_authorization_failed],
         (cluster_acl(Op.ALTER),), [E.none]),
]


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path, SECURED)
    b.logs.create_topic(TOPIC, 1)
    yield b
    b.close()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_matrix(broker, tmp_path, case):
    before = tree_digest(tmp_path)
    assert case.codes(broker.call(case.build(broker), ALICE)) == case.refused
    assert tree_digest(tmp_path) == before, f"{case.name} refused, yet the data directory changed"
    broker.grant(*case.grants)
    assert case.codes(broker.call(case.build(broker), ALICE)) == case.allowed


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_matrix_over_the_wire(broker, tmp_path, case):
    """The same answers through the Dispatcher with wire bytes, for User:ANONYMOUS (what every
    connection is until it authenticates), with the bindings given to User:ANONYMOUS."""
    before = tree_digest(tmp_path)
    assert case.codes(broker.wire(case.build(broker))) == case.refused
    assert tree_digest(tmp_path) == before, f"{case.name} refused, yet the data directory changed"
    broker.grant(*(dataclasses.replace(b, principal=str(ANONYMOUS)) for b in case.grants))
    assert case.codes(broker.wire(case.build(broker))) == case.allowed


def test_super_user_passes_everything(broker):
    for case in CASES:
        codes = case.codes(broker.call(case.build(broker), ADMIN))
        assert E.topic_authorization_failed not in codes and E.cluster_authorization_failed not in codes \
            and E.group_authorization_failed not in codes, case.name


def test_deny_beats_allow_and_prefixed_matches(broker):
    broker.grant(acl(Res.TOPIC, "ord", Op.WRITE, pattern=Pat.PREFIXED))
    assert produce_codes(broker.call(produce(broker), ALICE)) == [E.none]
    broker.grant(acl(Res.TOPIC, TOPIC, Op.WRITE, principal="User:*", permission=Perm.DENY))
    assert produce_codes(broker.call(produce(broker), ALICE)) == [E.topic_authorization_failed]


def test_host_of_the_client_counts(broker):
    broker.grant(acl(Res.TOPIC, TOPIC, Op.WRITE, host="10.1.1.1"))
    assert produce_codes(broker.call(produce(broker), ALICE, peer="10.1.1.1:4000")) == [E.none]
    assert produce_codes(broker.call(produce(broker), ALICE, peer="10.1.1.2:4000")) == \
        [E.topic_authorization_failed]


def test_allow_everyone_if_no_acl_found(tmp_path):
    b = Broker(tmp_path, {**SECURED, "allow.everyone.if.no.acl.found": "true"})
    try:
        b.logs.create_topic(TOPIC, 1)
        b.logs.create_topic("other", 1)
        assert produce_codes(b.call(produce(b), ALICE)) == [E.none]
        b.grant(acl(Res.TOPIC, TOPIC, Op.WRITE, principal="User:bob"))
        assert produce_codes(b.call(produce(b), ALICE)) == [E.topic_authorization_failed]
    finally:
        b.close()


def test_metadata_lists_only_described_topics_with_their_operations(broker):
    broker.logs.create_topic("secret", 1)
    broker.grant(topic_acl(Op.READ), acl(Res.CLUSTER, CLUSTER, Op.DESCRIBE))
    q = Q(3, 10)
    every = broker.call(q.MetadataRequest(topics=None, allow_auto_topic_creation=False,
                                          include_cluster_authorized_operations=True,
                                          include_topic_authorized_operations=True), ALICE)
    assert [t.name for t in every.topics] == [TOPIC]
    (t,) = every.topics
    assert t.topic_authorized_operations == (1 << Op.READ) | (1 << Op.DESCRIBE)
    assert every.cluster_authorized_operations == 1 << Op.DESCRIBE
    admin_view = broker.call(q.MetadataRequest(topics=None, allow_auto_topic_creation=False,
                                               include_cluster_authorized_operations=False,
                                               include_topic_authorized_operations=False), ADMIN)
    assert sorted(t.name for t in admin_view.topics) == [TOPIC, "secret"]


def test_without_an_authorizer_nothing_is_checked(tmp_path):
    b = Broker(tmp_path, {})
    try:
        b.logs.create_topic(TOPIC, 1)
        assert produce_codes(b.call(produce(b), ALICE)) == [E.none]
        resp = b.call(metadata(b), ALICE)
        assert resp.topics[0].topic_authorized_operations == sum(
            1 << op for op in (Op.READ, Op.WRITE, Op.CREATE, Op.DELETE, Op.ALTER, Op.DESCRIBE,
                               Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS))
    finally:
        b.close()


def test_list_groups_and_transactions_show_only_what_may_be_described(broker):
    for group in ("g1", "g2"):
        body = dataclasses.replace(offset_commit(broker), group_id=group)
        assert commit_codes(broker.call(body, ADMIN)) == [E.none]
    assert top(broker.call(init_transactional(broker), ADMIN)) == [E.none]
    list_groups = Q(16, 4).ListGroupsRequest(states_filter=())
    list_txns = Q(66, 1).ListTransactionsRequest(state_filters=(), producer_id_filters=(), duration_filter=-1)
    assert broker.call(list_groups, ALICE).groups == ()
    assert broker.call(list_txns, ALICE).transaction_states == ()
    broker.grant(acl(Res.GROUP, "g2", Op.DESCRIBE), acl(Res.TRANSACTIONAL_ID, TXN, Op.WRITE))
    assert [g.group_id for g in broker.call(list_groups, ALICE).groups] == ["g2"]
    assert [t.transactional_id for t in broker.call(list_txns, ALICE).transaction_states] == [TXN]
    broker.grant(cluster_acl(Op.DESCRIBE))
    assert sorted(g.group_id for g in broker.call(list_groups, ALICE).groups) == ["g1", "g2"]


GUARDED_WHOLE = {11: 0, 12: 0, 13: 0, 14: 0, 22: 0, 24: 4, 25: 0, 26: 0, 45: 0, 46: 0, 47: 0, 55: 0, 57: 0, 68: 0}


@pytest.mark.parametrize("key", sorted(GUARDED_WHOLE))
def test_every_version_of_a_guarded_api_can_say_no(key):
    """APIs refused as a whole (api.authorization.requires without ``refuse``) answer with their
    top-level error code: every version they serve must have one."""
    from kavka.api.registry import REGISTRY
    from kavka.api.responses import error_response
    spec = REGISTRY[key]
    for version in range(max(spec.min_version, GUARDED_WHOLE[key]), spec.max_version + 1):
        answer = error_response(key, version, E.cluster_authorization_failed)
        assert answer is not None and answer.error_code == E.cluster_authorization_failed, (spec.name, version)


def test_offset_delete_needs_read_on_each_topic(broker):
    assert commit_codes(broker.call(offset_commit(broker), ADMIN)) == [E.none]
    q = Q(47, 0)
    body = q.OffsetDeleteRequest(group_id=GROUP, topics=(q.OffsetDeleteRequestTopic(
        name=TOPIC, partitions=(q.OffsetDeleteRequestPartition(partition_index=0),)),))

    def codes(resp):
        return [resp.error_code] + [p.error_code for t in resp.topics for p in t.partitions]

    def committed():
        (group,) = broker.call(offset_fetch(broker), ADMIN).groups
        return [p.committed_offset for t in group.topics for p in t.partitions]

    assert codes(broker.call(body, ALICE)) == [E.group_authorization_failed]
    broker.grant(acl(Res.GROUP, GROUP, Op.DELETE))
    assert codes(broker.call(body, ALICE)) == [E.none, E.topic_authorization_failed]
    assert committed() == [0], "a refused partition keeps its offset"
    broker.grant(topic_acl(Op.READ))
    assert codes(broker.call(body, ALICE)) == [E.none, E.none]
    assert committed() == [-1]


def test_created_topic_configs_need_describe_configs(broker):
    broker.grant(cluster_acl(Op.CREATE))
    (hidden,) = broker.call(create_topics(broker), ALICE).topics
    assert (hidden.error_code, hidden.topic_config_error_code, hidden.configs) == (
        E.none, E.topic_authorization_failed, ())
    broker.grant(topic_acl(Op.DESCRIBE_CONFIGS, "shown"))
    body = dataclasses.replace(create_topics(broker), topics=(dataclasses.replace(
        create_topics(broker).topics[0], name="shown"),))
    (shown,) = broker.call(body, ALICE).topics
    assert shown.topic_config_error_code == E.none and "retention.ms" in {c.name for c in shown.configs}
