"""Client quotas as real clients meet them: `kavka quotas` sets them (read back with
DescribeClientQuotas apart from the CLI), and a confluent-kafka producer whose client id has a
producer_byte_rate is throttled — librdkafka reports the broker's throttle_time_ms in its
statistics and the run takes about as long as the quota says — while an unlimited producer
in the same broker is not.  The broker measures over 2 one-second samples
(quota.window.num=2), so a burst of about one second's worth passes before throttling.
connection_creation_rate of an ip entity (or the default ip) closes connections beyond it."""

from __future__ import annotations

import datetime
import json
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
from test_cli_tools import failed, kavka, ok
from test_connection_limits import closed_within, raw

from kavka.api.responses import make
from kavka.client import Client
from kavka.protocol.record_codec import encode_batch
from kio.schema.describe_client_quotas.v1 import request as describe_quotas

pytestmark = pytest.mark.timeout(120)

RATE = 1_000_000          # producer_byte_rate of the limited client id
TOTAL = 4_000_000         # bytes each producer sends
VALUE = b"x" * 10_000


def stored(broker) -> list[tuple]:
    with Client(broker.bootstrap_servers) as client:
        answer = client.request(make(describe_quotas.DescribeClientQuotasRequest, components=(), strict=False))
    assert answer.error_code == 0
    return [(tuple((e.entity_type, e.entity_name) for e in entry.entity),
             tuple((v.key, v.value) for v in entry.values)) for entry in answer.entries]


def produce(bootstrap: str, client_id: str) -> tuple[float, int]:
    """(seconds to deliver TOTAL bytes, the largest broker throttle librdkafka reported in ms)."""
    throttles = []

    def on_stats(text: str) -> None:
        for b in json.loads(text)["brokers"].values():
            throttles.append(b.get("throttle", {}).get("max", 0))

    producer = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "linger.ms": 5,
                         "statistics.interval.ms": 200, "stats_cb": on_stats, "message.timeout.ms": 30_000})
    delivered = []
    start = time.monotonic()
    for _ in range(TOTAL // len(VALUE)):
        while True:
            try:
                producer.produce("quota-topic", VALUE, on_delivery=lambda err, msg: delivered.append(err))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(60) == 0
    elapsed = time.monotonic() - start
    time.sleep(0.5)
    producer.poll(0.5)   # the last statistics
    assert delivered and all(err is None for err in delivered)
    return elapsed, max(throttles, default=0)


@pytest.fixture
def broker(kavka_broker_factory):
    return kavka_broker_factory({"quota.window.num": "2", "num.partitions": "1"})


def test_cli_sets_lists_and_removes(broker):
    out = ok(kavka(broker, "quotas", "set", "--user", "alice", "--client-id-default",
                   "--config", "producer_byte_rate=1048576", "--config", "request_percentage=25.5"))
    assert out.strip() == ("Altered the quotas of user=alice, client-id=<default>: producer_byte_rate=1048576, "
                           "request_percentage=25.5")
    ok(kavka(broker, "quotas", "set", "--ip", "10.0.0.1", "--config", "connection_creation_rate=5"))
    assert stored(broker) == [
        ((("ip", "10.0.0.1"),), (("connection_creation_rate", 5.0),)),
        ((("user", "alice"), ("client-id", None)), (("producer_byte_rate", 1048576.0),
                                                    ("request_percentage", 25.5))),
    ]
    lines = ok(kavka(broker, "quotas", "list", "--user", "alice")).splitlines()
    assert lines[0].split() == ["ENTITY", "KEY", "VALUE"]
    assert [line.split() for line in lines[1:]] == [
        ["user=alice,", "client-id=<default>", "producer_byte_rate", "1048576"],
        ["user=alice,", "client-id=<default>", "request_percentage", "25.5"]]
    assert ok(kavka(broker, "quotas", "list", "--user", "alice", "--strict")).splitlines()[1:] == []
    ok(kavka(broker, "quotas", "remove", "--user", "alice", "--client-id-default", "--config", "request_percentage"))
    assert stored(broker)[1] == ((("user", "alice"), ("client-id", None)), (("producer_byte_rate", 1048576.0),))


def test_cli_refusals_are_one_line(broker):
    assert "INVALID_REQUEST" in failed(kavka(broker, "quotas", "set", "--ip", "10.0.0.1", "--user", "bob",
                                             "--config", "connection_creation_rate=5"))
    assert "INVALID_REQUEST" in failed(kavka(broker, "quotas", "set", "--user", "bob",
                                             "--config", "producer_byte_rate=1.5"))
    assert "needs an entity" in failed(kavka(broker, "quotas", "set", "--config", "producer_byte_rate=5"))
    assert stored(broker) == []


def test_a_limited_producer_is_throttled_an_unlimited_one_is_not(broker):
    ok(kavka(broker, "quotas", "set", "--client-id", "limited", "--config", f"producer_byte_rate={RATE}"))
    free_s, free_throttle = produce(broker.bootstrap_servers, "unlimited")
    limited_s, limited_throttle = produce(broker.bootstrap_servers, "limited")
    # about (TOTAL - one second's burst) / RATE = 3 s; at most 30% less
    assert limited_s >= 0.7 * (TOTAL - RATE) / RATE, (limited_s, limited_throttle)
    assert limited_throttle > 0
    assert free_throttle == 0
    assert free_s < limited_s / 2, (free_s, limited_s)


def test_connection_creation_rate_per_ip(broker):
    ok(kavka(broker, "quotas", "set", "--ip", "10.0.0.9", "--config", "connection_creation_rate=1"))
    many = [raw(broker) for _ in range(5)]             # another ip's quota: 127.0.0.1 is not limited
    assert not any(closed_within(s, 0.3) for s in many)
    for s in many:
        s.close()
    ok(kavka(broker, "quotas", "set", "--ip-default", "--config", "connection_creation_rate=2"))
    # 2 a second over max(elapsed, 1 s) (quota.window.num=2): the first two pass, then refusals
    sockets = [raw(broker) for _ in range(4)]
    kept = [not closed_within(s, 0.5) for s in sockets]
    assert kept[:2] == [True, True] and kept[2:] == [False, False], kept
    time.sleep(2.5)                                     # the window has moved on
    again = raw(broker)
    assert not closed_within(again, 0.5)
    for s in [*sockets, again]:
        s.close()


def produce_request(size: int) -> ProduceRequest:
    batch = encode_batch([(b"k", b"v" * size, 1_700_000_000_000, ())])
    return ProduceRequest(transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=5),
                          topic_data=(TopicProduceData(name="quota-topic", partition_data=(
                              PartitionProduceData(index=0, records=batch),)),))


def test_the_throttled_connection_reads_nothing_until_its_throttle_is_over(broker):
    ok(kavka(broker, "quotas", "set", "--client-id", "raw", "--config", "producer_byte_rate=100000"))
    with Client(broker.bootstrap_servers, client_id="raw") as client, \
            Client(broker.bootstrap_servers, client_id="other") as other:
        client.request(MetadataRequest(topics=(MetadataRequestTopic(name="quota-topic", topic_id=None),),
                                       allow_auto_topic_creation=True, include_topic_authorized_operations=False))
        first = client.request(produce_request(300_000))   # 3 s worth over a 1 s window: ~2 s throttle
        throttle_s = first.throttle_time.total_seconds()
        assert first.responses[0].partition_responses[0].error_code == 0
        assert 1.4 <= throttle_s <= 2.6, throttle_s
        started = time.monotonic()
        assert other.request(produce_request(300_000)).throttle_time.total_seconds() == 0   # not limited
        assert client.request(ApiVersionsRequest(client_software_name="t", client_software_version="1")).error_code == 0
        waited = time.monotonic() - started
    assert 0.7 * throttle_s <= waited <= throttle_s + 2, (waited, throttle_s)


def test_a_limited_consumer_is_throttled_and_gets_everything(broker):
    ok(kavka(broker, "quotas", "set", "--client-id", "slow-reader", "--config", "consumer_byte_rate=1000000"))
    produce(broker.bootstrap_servers, "unlimited")       # TOTAL bytes in quota-topic
    elapsed = {}
    for client_id in ("fast-reader", "slow-reader"):
        consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "client.id": client_id,
                             "group.id": client_id, "enable.auto.commit": False, "max.partition.fetch.bytes": 300_000})
        consumer.assign([TopicPartition("quota-topic", 0, 0)])
        got, start = 0, time.monotonic()
        while got < TOTAL and time.monotonic() - start < 30:
            for message in consumer.consume(100, 1.0):
                assert message.error() is None
                got += len(message.value())
        elapsed[client_id] = time.monotonic() - start
        consumer.close()
        assert got == TOTAL
    assert elapsed["slow-reader"] >= 0.7 * (TOTAL - 1_000_000) / 1_000_000, elapsed
    assert elapsed["fast-reader"] < elapsed["slow-reader"] / 2, elapsed


def test_a_broker_stops_without_waiting_out_a_throttle(kavka_broker_factory):
    broker = kavka_broker_factory()   # Kafka's 11 samples
    ok(kavka(broker, "quotas", "set", "--client-id", "raw", "--config", "producer_byte_rate=10000"))
    client = Client(broker.bootstrap_servers, client_id="raw")
    client.request(MetadataRequest(topics=(MetadataRequestTopic(name="quota-topic", topic_id=None),),
                                   allow_auto_topic_creation=True, include_topic_authorized_operations=False))
    # 300 kB over one 1 s sample at 10 kB/s: 29 s (a byte rate's throttle is not capped, as in Kafka)
    assert 29 <= client.request(produce_request(300_000)).throttle_time.total_seconds() < 30
    started = time.monotonic()
    broker.stop()
    assert time.monotonic() - started < 4
    client.close()
