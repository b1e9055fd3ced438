"""Produce's per-record errors (KIP-467): a compacted topic refuses a batch with keyless
records, and the answer names each of them by its index in the batch, so a client can
tell the bad records from the good ones of the same batch (nothing of it is stored)."""

from __future__ import annotations

import datetime

from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.produce.v7.request import PartitionProduceData as Data7
from kio.schema.produce.v7.request import ProduceRequest as Produce7
from kio.schema.produce.v7.request import TopicProduceData as Topic7
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from kavka.client import Client
from kavka.protocol.record_codec import ZSTD, encode_batch

NOW = 1_700_000_000_000
KEYLESS = {3, 17, 42, 99}


def compacted_topic(bootstrap: str, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, 1, 1, config={"cleanup.policy": "compact"})])[name].result(10)


def batch(codec: int = 0) -> bytes:
    return encode_batch([(None if i in KEYLESS else b"k%d" % i, b"v%d" % i, NOW, ()) for i in range(100)],
                        codec=codec)


def produce(client: Client, topic: str, records: bytes, version: int = 9):
    if version >= 8:
        body = ProduceRequest(transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=5), topic_data=(
            TopicProduceData(name=topic, partition_data=(PartitionProduceData(index=0, records=records),)),))
    else:
        body = Produce7(transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=5), topic_data=(
            Topic7(name=topic, partition_data=(Data7(index=0, records=records),)),))
    (topic_response,) = client.request(body).responses
    (partition,) = topic_response.partition_responses
    return partition


def test_each_keyless_record_of_a_batch_is_named(kavka_broker):
    bootstrap = kavka_broker.bootstrap_servers
    compacted_topic(bootstrap, "table")
    with Client(bootstrap) as client:
        for codec in (0, ZSTD):
            answer = produce(client, "table", batch(codec))
            assert answer.error_code == 87            # INVALID_RECORD
            assert [e.batch_index for e in answer.record_errors] == sorted(KEYLESS)
            assert {e.batch_index_error_message for e in answer.record_errors} == {
                "Compacted topic cannot accept message without key in topic partition table-0."}
            assert answer.error_message.startswith("One or more records have been rejected due to 4 record errors")
            assert answer.base_offset == -1
        keyed = encode_batch([(b"k", b"v", NOW, ())])
        assert produce(client, "table", keyed).base_offset == 0   # nothing of the refused batches was stored


def test_produce_before_v8_gets_the_error_without_the_list(kavka_broker):
    bootstrap = kavka_broker.bootstrap_servers
    compacted_topic(bootstrap, "table7")
    with Client(bootstrap) as client:
        answer = produce(client, "table7", batch(), version=7)
    assert answer.error_code == 87


def test_librdkafka_tells_the_bad_records_from_the_good_ones(kavka_broker):
    """librdkafka reads the list: the keyless records fail INVALID_RECORD, the others of
    their batch _INVALID_DIFFERENT_RECORD ("an invalid record in the same batch caused
    the failure of this message too"); none is stored."""
    bootstrap = kavka_broker.bootstrap_servers
    compacted_topic(bootstrap, "table-rd")
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 100, "retries": 0})
    producer.produce("table-rd", key=b"warm", value=b"v")   # metadata known: the 100 go as one batch
    assert producer.flush(10) == 0
    outcomes = {}
    for i in range(100):
        producer.produce("table-rd", key=None if i in KEYLESS else b"k%d" % i, value=b"%d" % i,
                         on_delivery=lambda err, msg: outcomes.__setitem__(int(msg.value()), err))
    assert producer.flush(10) == 0
    assert len(outcomes) == 100
    codes = {i: err.code() for i, err in outcomes.items()}
    assert {i for i, code in codes.items() if code == KafkaError.INVALID_RECORD} == KEYLESS
    assert {code for i, code in codes.items() if i not in KEYLESS} == {KafkaError._INVALID_DIFFERENT_RECORD}
    with Client(bootstrap) as client:
        assert produce(client, "table-rd", encode_batch([(b"k", b"v", NOW, ())])).base_offset == 1
