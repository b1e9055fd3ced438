"""Brokers with several listeners in a cluster: each registers all of them in etcd, replicates
through inter.broker.listener.name, and a client is told every broker's endpoint on the
listener it came through."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kio.schema.metadata.v4.request import MetadataRequest

from kavka.broker import Broker
from kavka.client import Client
from kavka.cluster.node import ClusterSettings
from kavka.config import ConfigError

pytestmark = pytest.mark.timeout(90)
SETTINGS = {"listener.security.protocol.map": "CLIENTS:PLAINTEXT,REPLICATION:PLAINTEXT,SECURE:SASL_PLAINTEXT",
            "inter.broker.listener.name": "REPLICATION", "replica.lag.time.max.ms": "2000",
            "offsets.topic.num.partitions": "2", "group.initial.rebalance.delay.ms": "0"}


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_clients_see_their_listener_and_replication_uses_the_inter_broker_one(etcd, tmp_path):
    settings = ClusterSettings(etcd.endpoint, "t-" + uuid.uuid4().hex[:10], 2000)
    brokers = {}
    try:
        for i in (1, 2):
            brokers[i] = Broker(tmp_path / f"b{i}", config={**SETTINGS, "broker.id": str(i)}, cluster=settings,
                                listeners="CLIENTS://127.0.0.1:0,REPLICATION://127.0.0.1:0").start()
        _wait(lambda: all(len(b.node.view.brokers) == 2 for b in brokers.values()), 15, "2 registered brokers")
        for b in brokers.values():   # what etcd holds: the replication address and every listener
            info = brokers[1].node.view.brokers[b.config.get("broker.id")].value
            assert f"{info.host}:{info.port}" == b.bootstrap("REPLICATION")
            assert {n: f"{h}:{p}" for n, h, p in info.listeners} == {
                n: b.bootstrap(n) for n in ("CLIENTS", "REPLICATION")}
        for listener in ("CLIENTS", "REPLICATION"):
            with Client(brokers[2].bootstrap(listener)) as c:
                md = c.request(MetadataRequest(topics=None, allow_auto_topic_creation=False))
            assert {b.node_id: f"{b.host}:{b.port}" for b in md.brokers} == {
                i: b.bootstrap(listener) for i, b in brokers.items()}
        bootstrap = brokers[1].bootstrap("CLIENTS")
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("replicated", 1, 2)])["replicated"].result(15)
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        for i in range(10):
            producer.produce("replicated", f"v{i}".encode())
        assert producer.flush(20) == 0       # acks=all: the follower fetched over REPLICATION
        consumer = Consumer({"bootstrap.servers": brokers[2].bootstrap("CLIENTS"), "group.id": "g",
                             "auto.offset.reset": "earliest"})
        consumer.subscribe(["replicated"])
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 10 and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                got.append(msg.value())
        consumer.close()
        assert got == [f"v{i}".encode() for i in range(10)]
    finally:
        for b in brokers.values():
            b.stop()


def test_a_secured_inter_broker_listener_is_refused_in_a_cluster(etcd, tmp_path):
    settings = ClusterSettings(etcd.endpoint, "t-" + uuid.uuid4().hex[:10], 2000)
    broker = Broker(tmp_path / "b1", config={**SETTINGS, "broker.id": "1", "inter.broker.listener.name": "SECURE",
                                             "sasl.enabled.mechanisms": "SCRAM-SHA-256"},
                    cluster=settings, listeners="CLIENTS://127.0.0.1:0,SECURE://127.0.0.1:0")
    with pytest.raises(ConfigError, match="replicate and forward over PLAINTEXT only"):
        broker.start()
