"""Producer ids cannot be guessed, so one client cannot disturb another's idempotent
producer; idle producers are forgotten on the broker's producer-expiry schedule.

Before the fix InitProducerId handed out 0, 1, 2, ...: a client could take its own
id minus one and fence its neighbour with epoch 1, sequence 0.
"""

from __future__ import annotations

import datetime
import time

import pytest
from kio.schema.init_producer_id.v4.request import InitProducerIdRequest
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from kavka.broker import Broker
from kavka.client import Client
from kavka.clock import ManualClock
from kavka.protocol.record_codec import encode_batch
from kafka_helpers import stored_batches, wait_until

confluent_kafka = pytest.importorskip("confluent_kafka")
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

TIMEOUT = 15


def _init_producer_id(client: Client, producer_id: int = -1, epoch: int = -1):
    response = client.request(InitProducerIdRequest(
        transactional_id=None, transaction_timeout=datetime.timedelta(milliseconds=60000),
        producer_id=producer_id, producer_epoch=epoch))
    assert response.error_code == 0
    return response.producer_id, response.producer_epoch


def _produce(client: Client, topic: str, batch: bytes) -> int:
    response = client.request(ProduceRequest(
        transactional_id=None, acks=-1, timeout=datetime.timedelta(seconds=5), topic_data=(
            TopicProduceData(name=topic, partition_data=(PartitionProduceData(index=0, records=batch),)),)))
    return response.responses[0].partition_responses[0].error_code


def _idempotent_batch(pid: int, epoch: int, seq: int, ts: int, value: bytes = b"x") -> bytes:
    return encode_batch([(None, value, ts, ())], producer_id=pid, producer_epoch=epoch, base_sequence=seq)


def test_producer_ids_are_random_and_distinct(kavka_broker):
    with Client(kavka_broker.bootstrap_servers) as client:
        ids = [_init_producer_id(client) for _ in range(20)]
    assert all(epoch == 0 for _, epoch in ids)
    pids = [pid for pid, _ in ids]
    assert len(set(pids)) == len(pids) and all(0 <= pid < 2**63 for pid in pids)
    assert max(pids) >= 2**32, "spread over 63 bits, not counted from 0"
    assert any(b - a != 1 for a, b in zip(pids, pids[1:])), "not a sequence"


def _read_all(bootstrap: str, topic: str) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, 0, 0)])
    values = []
    try:
        for _ in range(200):
            message = consumer.poll(0.1)
            if message is None:
                if values:
                    break
                continue
            assert message.error() is None
            values.append(message.value())
    finally:
        consumer.close()
    return values


def test_one_client_cannot_fence_another_idempotent_producer(kavka_broker):
    bootstrap = kavka_broker.bootstrap_servers
    kavka_broker.call(kavka_broker.logs.create_topic, "t", 1)
    errors = []
    victim = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 0})

    def send(values):
        for value in values:
            victim.produce("t", value, partition=0, on_delivery=lambda err, msg: err and errors.append(err))
        assert victim.flush(TIMEOUT) == 0

    send([b"before-%d" % i for i in range(10)])
    victim_pid = stored_batches(kavka_broker, "t", 0)[0]["producer_id"]
    with Client(bootstrap) as attacker:
        # Naming the victim's id in InitProducerId (v3+) yields a fresh id, not the victim's state.
        pid, epoch = _init_producer_id(attacker, victim_pid, 0)
        assert (pid, epoch) != (victim_pid, 0) and pid != victim_pid
        # Guessing a neighbour of its own ids, as sequential ids allowed, reaches no one.
        mine, _ = _init_producer_id(attacker)
        now = kavka_broker._clock.now_ms()
        for guess in {mine + d for d in range(-5, 6) if d and mine + d >= 0}:
            assert _produce(attacker, "t", _idempotent_batch(guess, 1, 0, now, b"forged")) == 0
    send([b"after-%d" % i for i in range(10)])
    assert errors == [], "the victim was never fenced nor out of sequence"
    mine_only = [v for v in _read_all(bootstrap, "t") if v != b"forged"]
    assert mine_only == [b"before-%d" % i for i in range(10)] + [b"after-%d" % i for i in range(10)]


@pytest.fixture
def manual_clock_broker(tmp_path):
    clock = ManualClock(time.time_ns() // 1_000_000)  # record timestamps are checked against it
    broker = Broker(tmp_path / "data", clock=clock, config={
        "producer.id.expiration.ms": "60000", "producer.id.expiration.check.interval.ms": "20"})
    broker.start()
    yield broker, clock
    broker.stop()


def test_broker_expires_idle_producers_on_its_schedule(manual_clock_broker):
    broker, clock = manual_clock_broker
    broker.call(broker.logs.create_topic, "t", 1)
    producers = lambda: broker.call(lambda: dict(broker.logs.partition("t", 0).producers.producers))  # noqa: E731
    with Client(broker.bootstrap_servers) as client:
        pid, _ = _init_producer_id(client)
        other, _ = _init_producer_id(client)
        assert _produce(client, "t", _idempotent_batch(pid, 0, 0, clock.now_ms())) == 0
        assert _produce(client, "t", _idempotent_batch(pid, 0, 1, clock.now_ms())) == 0
        clock.advance(30_000)
        assert _produce(client, "t", _idempotent_batch(other, 0, 0, clock.now_ms())) == 0
        assert set(producers()) == {pid, other}
        clock.advance(30_000)   # pid's last batch is now 60 s old, other's 30 s
        wait_until(lambda: set(producers()) == {other}, timeout=5)
        # The forgotten producer continues at any sequence, as in Kafka 4.x.
        assert _produce(client, "t", _idempotent_batch(pid, 0, 9, clock.now_ms())) == 0
        assert producers()[pid].last_seq == 9


def test_the_expiration_time_changes_live(manual_clock_broker):
    """KIP-854: an IncrementalAlterConfigs of producer.id.expiration.ms takes effect at the
    next check, without a restart."""
    from confluent_kafka import admin as ck

    broker, clock = manual_clock_broker
    broker.call(broker.logs.create_topic, "t", 1)
    producers = lambda: broker.call(lambda: set(broker.logs.partition("t", 0).producers.producers))  # noqa: E731
    with Client(broker.bootstrap_servers) as client:
        pid, _ = _init_producer_id(client)
        assert _produce(client, "t", _idempotent_batch(pid, 0, 0, clock.now_ms())) == 0
    clock.advance(10_000)
    time.sleep(0.2)  # several checks at 60 s: the producer stays
    assert producers() == {pid}
    admin = ck.AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    resource = ck.ConfigResource("BROKER", "0", incremental_configs=[
        ck.ConfigEntry("producer.id.expiration.ms", "5000", incremental_operation=ck.AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(TIMEOUT)
    wait_until(lambda: producers() == set(), timeout=5)
