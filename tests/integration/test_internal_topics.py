"""Clients cannot write, delete, grow, reconfigure or create the broker's internal topics,
and the group coordinator's loader survives unreadable records in __consumer_offsets.

Before the fix a Produce to __consumer_offsets was accepted: a 9-byte garbage record
made every later start fail (struct.error in the loader) and a forged record rewrote
another group's committed offset at the next restart.
"""

from __future__ import annotations

import datetime
import logging
import struct
import uuid

import pytest
from kio.schema.alter_configs.v2.request import AlterableConfig as LegacyConfig
from kio.schema.alter_configs.v2.request import AlterConfigsRequest, AlterConfigsResource as LegacyResource
from kio.schema.create_partitions.v3.request import CreatePartitionsRequest, CreatePartitionsTopic
from kio.schema.create_topics.v7.request import CreatableTopic, CreateTopicsRequest
from kio.schema.delete_records.v2.request import DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic
from kio.schema.delete_topics.v6.request import DeleteTopicsRequest, DeleteTopicState
from kio.schema.incremental_alter_configs.v1.request import (
    AlterableConfig, AlterConfigsResource, IncrementalAlterConfigsRequest,
)
from kio.schema.offset_fetch.v8.request import OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopics
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from kavka.client import Client
from kavka.group.log_format import OffsetKey, OffsetValue, encode_key, encode_value, partition_for
from kavka.protocol import records as rb
from kavka.protocol.errors import ErrorCode
from kavka.protocol.record_codec import encode_batch

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402

OFFSETS = "__consumer_offsets"
PARTITIONS = 4  # offsets.topic.num.partitions, small so the test is quick
TIMEOUT = 15
SETTINGS = {"offsets.topic.num.partitions": PARTITIONS}
INVALID_TOPIC = ErrorCode.invalid_topic_exception.value


def _commit(bootstrap: str, group: str, offset: int, topic: str = "t") -> None:
    """A real client's commit (librdkafka, no subscription needed for explicit offsets)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
    finally:
        consumer.close()


def _committed(bootstrap: str, group: str, topic: str = "t") -> int:
    with Client(bootstrap) as client:
        response = client.request(OffsetFetchRequest(require_stable=False, groups=(OffsetFetchRequestGroup(
            group_id=group, topics=(OffsetFetchRequestTopics(name=topic, partition_indexes=(0,)),)),)))
    group_answer = response.groups[0]
    assert group_answer.error_code == 0
    return group_answer.topics[0].partitions[0].committed_offset


def _produce(bootstrap: str, topic: str, index: int, batch: bytes):
    with Client(bootstrap) as client:
        response = client.request(ProduceRequest(
            transactional_id=None, acks=-1, timeout=datetime.timedelta(seconds=5), topic_data=(
                TopicProduceData(name=topic, partition_data=(PartitionProduceData(index=index, records=batch),)),)))
    return response.responses[0].partition_responses[0]


def _offsets_files(data_dir) -> dict[str, bytes]:
    return {str(p.relative_to(data_dir)): p.read_bytes()
            for p in sorted(data_dir.glob(f"{OFFSETS}-*/*.log"))}


def _forged_commit(group: str, offset: int) -> bytes:
    return encode_batch([(encode_key(OffsetKey(group, "t", 0)),
                          encode_value(OffsetValue(offset, -1, "", 0)), 0, ())])


@pytest.fixture
def broker_with_groups(kavka_broker_factory, tmp_path):
    """A broker with __consumer_offsets holding the commits of two groups."""
    data_dir = tmp_path / "data"
    broker = kavka_broker_factory(SETTINGS, data_dir=data_dir)
    broker.call(broker.logs.create_topic, "t", 1)
    _commit(broker.bootstrap_servers, "victim", 42)
    _commit(broker.bootstrap_servers, "bystander", 7)
    return broker, data_dir


def _restart(factory, broker, data_dir):
    port = broker.port
    broker.stop()
    return factory(SETTINGS, data_dir=data_dir, port=port)


def test_produce_to_consumer_offsets_is_refused(broker_with_groups, kavka_broker_factory):
    broker, data_dir = broker_with_groups
    bootstrap = broker.bootstrap_servers
    before = _offsets_files(data_dir)
    victim_partition = partition_for("victim", PARTITIONS)
    garbage = encode_batch([(b"\x00\x01\x00", b"\xff" * 6, 0, ())])  # 9 bytes of key+value
    for batch in (garbage, _forged_commit("victim", 0)):
        answer = _produce(bootstrap, OFFSETS, victim_partition, batch)
        assert answer.error_code == INVALID_TOPIC
        assert "internal topic" in answer.error_message
    for internal in ("__transaction_state", "__share_group_state"):  # refused even where absent
        assert _produce(bootstrap, internal, 0, garbage).error_code == INVALID_TOPIC

    # A real producer gets the error too, and ordinary topics keep working beside it.
    reports = {}
    producer = Producer({"bootstrap.servers": bootstrap, "message.send.max.retries": 0})
    producer.produce(OFFSETS, b"x" * 9, key=b"k", partition=victim_partition,
                     on_delivery=lambda err, msg: reports.__setitem__("internal", err))
    producer.produce("t", b"ordinary", on_delivery=lambda err, msg: reports.__setitem__("ordinary", err))
    assert producer.flush(TIMEOUT) == 0
    assert reports["internal"] is not None and reports["internal"].code() == KafkaError.TOPIC_EXCEPTION
    assert reports["ordinary"] is None

    assert _offsets_files(data_dir) == before, "nothing was written to __consumer_offsets"
    broker = _restart(kavka_broker_factory, broker, data_dir)
    assert _committed(broker.bootstrap_servers, "victim") == 42
    assert _committed(broker.bootstrap_servers, "bystander") == 7


def _corrupt_records(batch: bytes) -> bytes:
    """The batch with its records section overwritten, CRC recomputed: the framing is sound,
    the records inside are not."""
    buf = bytearray(batch)
    buf[rb.HEADER_SIZE:] = b"\x7f" * (len(buf) - rb.HEADER_SIZE)
    struct.pack_into(">I", buf, 17, rb.compute_crc(buf, 0, len(buf)))
    return bytes(buf)


def test_loader_skips_unreadable_records(broker_with_groups, kavka_broker_factory, caplog):
    """Records that bypassed the produce check (written through the log API, as a disk
    fault or another program could leave them) are skipped and logged at the next start."""
    broker, data_dir = broker_with_groups
    index = partition_for("victim", PARTITIONS)
    now = 1_700_000_000_000
    bad_batches = [
        encode_batch([(b"\x00\x01\x00", b"\xff" * 6, now, ())]),                 # truncated key
        encode_batch([(encode_key(OffsetKey("victim", "t", 0)), b"\x00\x03\x00", now, ())]),  # truncated value
        encode_batch([(b"\x00\x02\x00\x02\xff\xfe", None, now, ())]),            # key not UTF-8
        encode_batch([(b"\x00\x63junk", b"v", now, ())]),                       # unknown key version
        _corrupt_records(_forged_commit("victim", 1)),                          # records do not parse
    ]

    def append_bypassing_produce():
        log = broker.logs.partition(OFFSETS, index).log
        for batch in bad_batches:
            log.append(bytearray(batch), now_ms=now)
        return log.log_end_offset

    end = broker.call(append_bypassing_produce)
    broker = _restart(kavka_broker_factory, broker, data_dir)  # the loader meets them here
    caplog.set_level(logging.WARNING, logger="kavka.group")
    warnings = [r.getMessage() for r in caplog.records if "skipping unreadable" in r.getMessage()]
    assert len(warnings) == len(bad_batches), warnings
    assert all(f"{OFFSETS}-{index} offset " in w for w in warnings), "each names its topic-partition-offset"
    assert _committed(broker.bootstrap_servers, "victim") == 42
    assert _committed(broker.bootstrap_servers, "bystander") == 7
    _commit(broker.bootstrap_servers, "victim", 43)  # and the group keeps working
    assert _committed(broker.bootstrap_servers, "victim") == 43
    assert broker.logs.partition(OFFSETS, index).log.log_end_offset == end + 1


def test_admin_requests_on_internal_topics(broker_with_groups, kavka_broker_factory):
    broker, data_dir = broker_with_groups
    bootstrap = broker.bootstrap_servers
    before = _offsets_files(data_dir)
    info = broker.logs.topic(OFFSETS)
    with Client(bootstrap) as client:
        deleted = client.request(DeleteTopicsRequest(timeout=datetime.timedelta(seconds=5), topics=(
            DeleteTopicState(name=OFFSETS, topic_id=uuid.UUID(int=0)),
            DeleteTopicState(name=None, topic_id=info.topic_id))))
        assert [r.error_code for r in deleted.responses] == [INVALID_TOPIC, INVALID_TOPIC]

        records = client.request(DeleteRecordsRequest(timeout=datetime.timedelta(seconds=5), topics=(
            DeleteRecordsTopic(name=OFFSETS, partitions=(DeleteRecordsPartition(partition_index=0, offset=-1),)),)))
        assert records.topics[0].partitions[0].error_code == INVALID_TOPIC

        grown = client.request(CreatePartitionsRequest(timeout=datetime.timedelta(seconds=5), validate_only=False,
                                                       topics=(CreatePartitionsTopic(name=OFFSETS, count=60,
                                                                                     assignments=None),)))
        assert grown.results[0].error_code == INVALID_TOPIC

        created = client.request(CreateTopicsRequest(timeout=datetime.timedelta(seconds=5), validate_only=False,
                                                     topics=tuple(CreatableTopic(
                                                         name=name, num_partitions=1, replication_factor=1,
                                                         assignments=(), configs=()) for name in (
                                                         "__transaction_state", "__share_group_state",
                                                         "__cluster_metadata"))))
        assert [t.error_code for t in created.topics] == [INVALID_TOPIC] * 3

        policy = ErrorCode.policy_violation.value
        for op, value in ((0, "delete"), (0, "compact,delete"), (1, None), (2, "delete")):
            answer = client.request(IncrementalAlterConfigsRequest(validate_only=False, resources=(
                AlterConfigsResource(resource_type=2, resource_name=OFFSETS, configs=(
                    AlterableConfig(name="cleanup.policy", config_operation=op, value=value),)),)))
            assert answer.responses[0].error_code == policy, (op, value)
        legacy = client.request(AlterConfigsRequest(validate_only=False, resources=(  # drops every override
            LegacyResource(resource_type=2, resource_name=OFFSETS,
                           configs=(LegacyConfig(name="retention.ms", value="1000"),)),)))
        assert legacy.responses[0].error_code == policy
        # Settings that keep the offsets are allowed, as in Kafka.
        fine = client.request(IncrementalAlterConfigsRequest(validate_only=False, resources=(
            AlterConfigsResource(resource_type=2, resource_name=OFFSETS, configs=(
                AlterableConfig(name="segment.bytes", config_operation=0, value="2000000"),)),)))
        assert fine.responses[0].error_code == 0

    assert broker.logs.topic(OFFSETS).partitions == PARTITIONS
    assert broker.logs.topic(OFFSETS).overrides["cleanup.policy"] == "compact"
    assert sorted(broker.logs.topics()) == [OFFSETS, "t"], "no reserved topic was created"
    assert _offsets_files(data_dir) == before
    broker = _restart(kavka_broker_factory, broker, data_dir)
    assert _committed(broker.bootstrap_servers, "victim") == 42
    assert _committed(broker.bootstrap_servers, "bystander") == 7


def test_kafka_python_admin_cannot_delete_consumer_offsets(broker_with_groups):
    kafka_admin = pytest.importorskip("kafka.admin")
    from kafka.errors import InvalidTopicError

    broker, _ = broker_with_groups
    admin = kafka_admin.KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers,
                                         request_timeout_ms=TIMEOUT * 1000)
    try:
        with pytest.raises(InvalidTopicError):
            admin.delete_topics([OFFSETS])
        with pytest.raises(InvalidTopicError):
            admin.create_partitions({OFFSETS: kafka_admin.NewPartitions(total_count=60)})
        assert OFFSETS in admin.list_topics()
    finally:
        admin.close()
    assert _committed(broker.bootstrap_servers, "victim") == 42
