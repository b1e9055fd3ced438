"""The reassignment throttles: ``leader.replication.throttled.rate`` and
``follower.replication.throttled.rate`` bound the copying of a reassignment's new replicas,
and nothing else.

On three brokers (and a fourth, empty one) with one of the two rates set on every broker, a
partition holding BYTES moves onto broker 4: it cannot finish before the throttle lets BYTES
through (less the burst the rate's window allows), where unthrottled the copy takes a
fraction of a second.  While it crawls, acks=all writes to another RF=3 topic, whose
followers are not being added by a reassignment, complete at full speed, and the moved
partition holds every record at the end.
"""

from __future__ import annotations

import time

import pytest
from confluent_kafka.admin import NewTopic
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from admin_contract_helpers import TIMEOUT, admin, create, eventually, kafka_python_admin, ready_everywhere
from admin_targets import scaled_out

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

RATE = 250_000                        # bytes/s
RECORD = b"x" * 1000
MOVED_RECORDS = 1500                  # ~1.6 MB with batch overhead
OTHER_RECORDS = 500
WINDOW = {"replication.quota.window.num": "2", "replication.quota.window.size.seconds": "1"}
# Burst allowed at the start: one fetch of up to 1 MiB (the rate is measured after it), so at
# least (bytes - 1 MiB) / RATE seconds, less rounding; unthrottled the copy takes < 1 s.
SLOWEST_UNTHROTTLED_S = 1.0


@pytest.fixture(scope="module", params=["leader", "follower"])
def throttled(request, etcd, tmp_path_factory):
    extra = {f"{request.param}.replication.throttled.rate": str(RATE), **WINDOW}
    with scaled_out(etcd.endpoint, tmp_path_factory.mktemp(f"throttle-{request.param}"), extra) as target:
        yield target


def produce(target, topic: str, count: int) -> float:
    """acks=all writes of ``count`` records to partition 0; the seconds they took."""
    producer = KafkaProducer(bootstrap_servers=target.bootstrap(1, 2, 3), acks="all", linger_ms=5)
    started = time.monotonic()
    try:
        for f in [producer.send(topic, RECORD, partition=0) for _ in range(count)]:
            f.get(timeout=TIMEOUT)
    finally:
        producer.close()
    return time.monotonic() - started


def count_records(target, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=target.bootstrap(2, 3, 4), auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=3000)
    consumer.assign([TopicPartition(topic, 0)])
    seen = 0
    deadline = time.monotonic() + TIMEOUT * 2
    try:
        while seen < MOVED_RECORDS and time.monotonic() < deadline:
            seen += sum(len(batch) for batch in consumer.poll(timeout_ms=500).values())
    finally:
        consumer.close()
    return seen


def test_only_the_new_replicas_copy_at_the_throttled_rate(throttled):
    for name in ("crawl", "other"):
        create(admin(throttled), NewTopic(name, 1, replica_assignment=[[1, 2, 3]]))
        ready_everywhere(throttled, name, 1)
    produce(throttled, "crawl", MOVED_RECORDS)
    size = throttled.brokers[1].node.broker.logs.partition("crawl", 0).log.log_end_offset  # records
    client = kafka_python_admin(throttled)
    try:
        started = time.monotonic()
        assert client.alter_partition_reassignments({TopicPartition("crawl", 0): [4, 2, 3]}) == {
            TopicPartition("crawl", 0): None}
        other_s = produce(throttled, "other", OTHER_RECORDS)
        assert client.list_partition_reassignments() != {}, "the move finished before the other writes did"
        eventually(lambda: client.list_partition_reassignments() == {}, "the throttled move", timeout=60)
        moved_s = time.monotonic() - started
    finally:
        client.close()
    minimum = (MOVED_RECORDS * len(RECORD) - (1 << 20)) / RATE
    assert moved_s >= max(minimum, SLOWEST_UNTHROTTLED_S), (moved_s, minimum)
    assert other_s < moved_s, (other_s, moved_s)
    assert size == MOVED_RECORDS and count_records(throttled, "crawl") == MOVED_RECORDS
