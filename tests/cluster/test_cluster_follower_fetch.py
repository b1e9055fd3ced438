"""Fetch from followers (KIP-392) on three brokers in racks r1, r2 and r3 with Kafka's
RackAwareReplicaSelector: a confluent-kafka consumer with client.rack=r2 is sent by the
leader (broker 1, rack r1) to the follower in r2 and reads every record there, as
librdkafka's statistics show (the partition's fetch broker, and the Fetch requests each
broker got); kavka's own client checks the leader's redirect and the follower's answers
at and beyond its high watermark with Fetch v11 frames."""

from __future__ import annotations

import datetime
import json
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kio.schema.fetch.v10 import request as fetch10
from kio.schema.fetch.v11 import request as fetch11

from admin_targets import start_cluster
from kavka.api.responses import make
from kavka.client import Client
from test_cluster_partition_cap import create_topic

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

RACK_AWARE = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
LEADER, NEAR = 1, 2            # broker 1 leads (rack r1); broker 2 is the follower in rack r2
RECORDS = 60
OFFSET_OUT_OF_RANGE, NOT_LEADER_OR_FOLLOWER = 1, 6


@pytest.fixture(scope="module")
def racks(etcd, tmp_path_factory):
    target = start_cluster(etcd.endpoint, tmp_path_factory.mktemp("racks"),
                           extra=lambda i: {"broker.rack": f"r{i}", "replica.selector.class": RACK_AWARE})
    try:
        yield target
    finally:
        target.stop()


@pytest.fixture(scope="module")
def topic(racks):
    name = "near-" + uuid.uuid4().hex[:8]
    assert create_topic(racks.brokers[NEAR], name, assignment=[[LEADER, NEAR, 3]])[0] == 0
    _wait(lambda: all(racks.brokers[LEADER].node.replicas.leaders.get((name, 0)) is not None
                      and (name, 0) in racks.brokers[i].node.replicas.followers for i in (NEAR, 3)),
          20, "broker 1 leading and brokers 2 and 3 following")
    producer = Producer({"bootstrap.servers": racks.bootstrap(), "acks": "all"})
    for i in range(RECORDS):
        producer.produce(name, value=b"v%d" % i, partition=0)
    assert producer.flush(20) == 0
    _wait(lambda: _follower_hw(racks, name) == RECORDS, 20, "the follower's high watermark at the log end")
    return name


def _follower_hw(racks, name) -> int:
    return racks.brokers[NEAR].logs.partition(name, 0).log.high_watermark


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.05)


def test_a_consumer_of_rack_r2_reads_everything_from_the_follower_there(racks, topic):
    stats = []
    consumer = Consumer({"bootstrap.servers": racks.bootstrap(LEADER), "group.id": "g-" + topic,
                         "client.rack": "r2", "enable.auto.commit": False, "fetch.wait.max.ms": 100,
                         "statistics.interval.ms": 200, "stats_cb": lambda s: stats.append(json.loads(s))})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        values = []
        deadline = time.monotonic() + 30
        while len(values) < RECORDS and time.monotonic() < deadline:
            values += [m.value() for m in consumer.consume(RECORDS, 0.5) if m.error() is None]
        assert values == [b"v%d" % i for i in range(RECORDS)]
        seen = len(stats)
        _wait_for_stats(consumer, stats, seen)
    finally:
        consumer.close()
    partition = stats[-1]["topics"][topic]["partitions"]["0"]
    assert (partition["leader"], partition["broker"]) == (LEADER, NEAR)   # fetching from the follower
    fetches = {b["nodeid"]: b["req"].get("Fetch", 0) for b in stats[-1]["brokers"].values() if b["nodeid"] > 0}
    assert fetches[NEAR] > 0, fetches


def _wait_for_stats(consumer, stats, seen: int) -> None:
    """A statistics report after the last record (stats_cb runs inside poll)."""
    deadline = time.monotonic() + 5
    while len(stats) <= seen and time.monotonic() < deadline:
        consumer.poll(0.1)
    assert len(stats) > seen, "no statistics from librdkafka"


def _fetch(racks, broker_id: int, topic: str, offset: int, version=fetch11, rack: str = "r2", epoch: int = -1):
    """One Fetch from kavka's own client; the answer for partition 0."""
    q = version
    fields = {"rack_id": rack} if version is fetch11 else {}
    body = make(q.FetchRequest, replica_id=-1, max_wait=datetime.timedelta(milliseconds=100), min_bytes=1,
                max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1, forgotten_topics_data=(),
                topics=(make(q.FetchTopic, topic=topic, partitions=(make(
                    q.FetchPartition, partition=0, fetch_offset=offset, partition_max_bytes=1 << 20,
                    current_leader_epoch=epoch, log_start_offset=-1),)),), **fields)
    with Client(racks.brokers[broker_id].bootstrap_servers, timeout=10) as client:
        [answer] = client.request(body).responses
    [partition] = answer.partitions
    return partition


def test_fetch_v11_with_a_rack_id_is_redirected_and_the_follower_answers_up_to_its_watermark(racks, topic):
    redirect = _fetch(racks, LEADER, topic, 0)
    assert (redirect.error_code, redirect.preferred_read_replica, redirect.high_watermark) == (0, NEAR, RECORDS)
    assert not redirect.records
    near_leader = _fetch(racks, LEADER, topic, 0, rack="r1")
    assert near_leader.preferred_read_replica == -1 and near_leader.records
    served = _fetch(racks, NEAR, topic, 0)
    assert (served.error_code, served.preferred_read_replica, served.high_watermark) == (0, -1, RECORDS)
    assert served.records
    at_hw = _fetch(racks, NEAR, topic, RECORDS)                 # nothing yet: an empty answer, retried
    assert at_hw.error_code == 0 and not at_hw.records
    # past its log end, from a client sending the leader epoch (KIP-320): it goes back to the leader
    epoch = racks.brokers[LEADER].logs.partition(topic, 0).log.leader_epoch
    beyond = _fetch(racks, NEAR, topic, RECORDS + 10, epoch=epoch)
    assert beyond.error_code == OFFSET_OUT_OF_RANGE
    assert _fetch(racks, NEAR, topic, 0, version=fetch10).error_code == NOT_LEADER_OR_FOLLOWER
