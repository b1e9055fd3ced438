"""Brokers with several listeners in a cluster: each registers all of them in etcd, replicates
through inter.broker.listener.name, and a client is told every broker's endpoint on the
listener it came through."""

from __future__ import annotations

import logging
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient, NewTopic,
                                   ResourcePatternType, ResourceType)
from kio.schema.metadata.v4.request import MetadataRequest

from kavka.broker import Broker
from kavka.client import Client
from kavka.cluster.node import ClusterSettings
from kavka.config import ConfigError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))   # tls_certs, secure_clients
from secure_clients import poll_values  # noqa: E402

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
        assert poll_values(consumer, 10) == [f"v{i}".encode() for i in range(10)]
    finally:
        for b in brokers.values():
            b.stop()


def test_a_sasl_inter_broker_listener_kavka_cannot_use_is_refused_before_joining(etcd, tmp_path):
    settings = ClusterSettings(etcd.endpoint, "t-" + uuid.uuid4().hex[:10], 2000)
    refusals = [({}, "GSSAPI is Kafka's default"),   # sasl.mechanism.inter.broker.protocol's default
                ({"sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-256"},
                 "listener.name.secure.scram-sha-256.sasl.jaas.config")]
    for extra, message in refusals:
        broker = Broker(tmp_path / "b1", config={**SETTINGS, "broker.id": "1", "inter.broker.listener.name": "SECURE",
                                                 "sasl.enabled.mechanisms": "SCRAM-SHA-256", **extra},
                        cluster=settings, listeners="CLIENTS://127.0.0.1:0,SECURE://127.0.0.1:0")
        with pytest.raises(ConfigError, match=message):
            broker.start()


def _replicate(brokers, topic: str, bootstrap: str, count: int = 10) -> None:
    """A topic on both brokers, ``count`` records produced with acks=all; both logs hold them."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 2)])[topic].result(15)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(count):
        producer.produce(topic, f"v{i}".encode())
    assert producer.flush(20) == 0
    _wait(lambda: all((p := b.logs.partition(topic, 0)) is not None and p.log.log_end_offset == count
                      for b in brokers), 10, "both replicas")


def test_brokers_replicate_over_mutual_tls(etcd, tmp_path):
    """An SSL inter-broker listener with ssl.client.auth=required: each broker presents its key
    store, its certificate's subject is its principal, and that principal (a super user) is
    what Fetch's CLUSTER_ACTION is checked against."""
    from tls_certs import make_pki
    pki = make_pki(tmp_path / "pki")
    settings = ClusterSettings(etcd.endpoint, "t-" + uuid.uuid4().hex[:10], 2000)
    secure = {**SETTINGS, "listener.security.protocol.map": "CLIENTS:PLAINTEXT,REPLICATION:SSL",
              "ssl.keystore.location": str(pki.server), "ssl.truststore.location": str(pki.ca),
              "listener.name.replication.ssl.client.auth": "required",
              "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
              "allow.everyone.if.no.acl.found": "true", "super.users": "User:CN=localhost"}
    brokers = {}
    try:
        for i in (1, 2):
            brokers[i] = Broker(tmp_path / f"b{i}", config={**secure, "broker.id": str(i)}, cluster=settings,
                                listeners="CLIENTS://127.0.0.1:0,REPLICATION://127.0.0.1:0").start()
        assert brokers[1].context.inter_broker.principal.name == "CN=localhost"
        _wait(lambda: all(len(b.node.view.brokers) == 2 for b in brokers.values()), 15, "2 registered brokers")
        admin = AdminClient({"bootstrap.servers": brokers[1].bootstrap("CLIENTS")})
        for future in admin.create_acls([AclBinding(
                ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, "User:ops", "*",
                AclOperation.DESCRIBE, AclPermissionType.ALLOW)]).values():
            future.result(10)   # the cluster now has an ACL: CLUSTER_ACTION is the super user's only
        _wait(lambda: all(b.context.metadata.acls() for b in brokers.values()), 10, "the ACL on both brokers")
        _replicate(brokers.values(), "mtls", brokers[2].bootstrap("CLIENTS"))
    finally:
        for b in brokers.values():
            b.stop()


def test_brokers_authenticate_to_each_other_with_scram(etcd, tmp_path, caplog):
    """SCRAM-SHA-512 between brokers: each broker's credential for its own user is created
    through AlterUserScramCredentials (``kavka users add``); until then the followers are
    refused, and logged, and they catch up once it exists."""
    from kavka.cli.main import main
    settings = ClusterSettings(etcd.endpoint, "t-" + uuid.uuid4().hex[:10], 2000)
    scram = {**SETTINGS, "inter.broker.listener.name": "SECURE", "sasl.enabled.mechanisms": "SCRAM-SHA-512",
             "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512", "connection.failed.authentication.delay.ms": "10",
             "listener.name.secure.scram-sha-512.sasl.jaas.config":
                 'org.apache.kafka.common.security.scram.ScramLoginModule required username="kavka" password="pw";'}
    brokers = {}
    caplog.set_level(logging.INFO, logger="kavka")
    try:
        for i in (1, 2):
            brokers[i] = Broker(tmp_path / f"b{i}", config={**scram, "broker.id": str(i)}, cluster=settings,
                                listeners="CLIENTS://127.0.0.1:0,SECURE://127.0.0.1:0").start()
        _wait(lambda: all(len(b.node.view.brokers) == 2 for b in brokers.values()), 15, "2 registered brokers")
        _wait(lambda: brokers[1].node.controller_id() > 0, 10, "a controller")
        bootstrap = brokers[brokers[1].node.controller_id()].bootstrap("CLIENTS")   # nothing to forward yet
        admin = AdminClient({"bootstrap.servers": bootstrap})
        admin.create_topics([NewTopic("scram", 1, 2)])["scram"].result(15)
        _wait(lambda: any("refused SCRAM-SHA-512 authentication" in r.getMessage() for r in caplog.records), 10,
              "a follower refused before the credential exists")
        for b in brokers.values():
            assert main(["users", "add", "kavka", "--mechanism", "SCRAM-SHA-512", "--password", "pw",
                         "--bootstrap-server", b.bootstrap("CLIENTS")]) == 0
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
        for i in range(10):
            producer.produce("scram", f"v{i}".encode())
        assert producer.flush(20) == 0
        _wait(lambda: all((p := b.logs.partition("scram", 0)) is not None and p.log.log_end_offset == 10
                          for b in brokers.values()), 10, "both replicas")
    finally:
        for b in brokers.values():
            b.stop()
