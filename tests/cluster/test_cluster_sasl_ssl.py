"""Three brokers talking SASL_SSL to each other (issue 13's cluster test).

One SASL_SSL listener, the inter-broker one, for brokers and clients alike: TLS with
certificates generated here, PLAIN with the brokers' own user (``User:broker``, a super
user) from the listener's JAAS config, the StandardAuthorizer without
``allow.everyone.if.no.acl.found``.  So every broker-to-broker connection must authenticate
and be authorized: replica fetches (an acks=all produce reaches all three logs), a
CreateTopics sent to a broker that is not the controller (forwarded), a transaction over
partitions led by three brokers (WriteTxnMarkers and AddPartitionsToTxn verification cross
brokers).  A client without ACLs is refused on every broker; a client calling itself
``kavka-broker-N`` is still only itself.  Last, broker 3 comes back with a wrong inter-broker
password: its fetchers are refused (logged), it does not catch up, brokers 1 and 2 serve on.
"""

from __future__ import annotations

import datetime
import logging
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient, ResourcePatternType,
                                   ResourceType)
from kio.schema.create_topics.v5 import request as create_topics
from kio.schema.metadata.v12 import request as metadata
from kio.schema.produce.v9 import request as produce

from admin_targets import wait_until as wait
from kavka.api.responses import make
from kavka.broker import Broker
from kavka.client import Client
from kavka.client_security import ClientSecurity
from kavka.cluster.node import ClusterSettings
from kavka.protocol import record_codec

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from secure_clients import poll_values  # noqa: E402
from tls_certs import make_pki  # noqa: E402

pytestmark = pytest.mark.timeout(120)   # ~5 s: not slow

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
NONE, TOPIC_AUTHORIZATION_FAILED, INVALID_TOPIC = 0, 29, 17
RESERVED = "__cluster_metadata"   # reserved for the brokers' own use, and not there: a broker could create it
PASSWORDS = {"broker": "broker-secret", "alice": "alice-secret", "bob": "bob-secret"}


def jaas(password: str = PASSWORDS["broker"]) -> str:
    users = " ".join(f'user_{u}="{p}"' for u, p in PASSWORDS.items())
    return (f'org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" '
            f'password="{password}" {users};')


def settings(pki, broker_id: int, password: str = PASSWORDS["broker"]) -> dict[str, str]:
    return {"broker.id": str(broker_id), "listener.security.protocol.map": "INTERNAL:SASL_SSL",
            "inter.broker.listener.name": "INTERNAL", "sasl.enabled.mechanisms": "PLAIN",
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "listener.name.internal.plain.sasl.jaas.config": jaas(password),
            "ssl.keystore.location": str(pki.server), "ssl.truststore.location": str(pki.ca),
            "authorizer.class.name": AUTHORIZER, "super.users": "User:broker",
            "offsets.topic.num.partitions": "2", "transaction.state.log.num.partitions": "2",
            "group.initial.rebalance.delay.ms": "0", "replica.lag.time.max.ms": "3000",
            "connection.failed.authentication.delay.ms": "20"}


class Cluster:
    def __init__(self, etcd, directory: Path) -> None:
        self.pki = make_pki(directory / "pki")
        self.directory = directory
        self.settings = ClusterSettings(etcd.endpoint, "sasl-ssl-" + uuid.uuid4().hex[:8], 2000)
        self.brokers: dict[int, Broker] = {}

    def start(self, broker_id: int, password: str = PASSWORDS["broker"]) -> Broker:
        self.brokers[broker_id] = Broker(self.directory / f"b{broker_id}", config=settings(self.pki, broker_id, password),
                                         cluster=self.settings, listeners="INTERNAL://127.0.0.1:0").start()
        return self.brokers[broker_id]

    def bootstrap(self, *ids: int) -> str:
        return ",".join(self.brokers[i].bootstrap("INTERNAL") for i in ids or sorted(self.brokers))

    def conf(self, user: str, *ids: int) -> dict:
        return {"bootstrap.servers": self.bootstrap(*ids), "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
                "sasl.username": user, "sasl.password": PASSWORDS[user], "ssl.ca.location": str(self.pki.ca)}

    def client(self, user: str, broker_id: int, client_id: str = "test") -> Client:
        security = ClientSecurity.from_properties({k: v for k, v in self.conf(user).items() if k != "bootstrap.servers"})
        return Client(self.brokers[broker_id].bootstrap("INTERNAL"), client_id=client_id, timeout=20,
                      security=security)

    def stop(self) -> None:
        for b in self.brokers.values():
            b.stop()


@pytest.fixture(scope="module")
def cluster(etcd, tmp_path_factory):
    c = Cluster(etcd, tmp_path_factory.mktemp("sasl-ssl"))
    try:
        for i in (1, 2, 3):
            c.start(i)
        wait(lambda: all(len(b.node.view.brokers) == 3 and b.node.controller_id() > 0 for b in c.brokers.values()),
             15, "3 brokers and a controller")
        admin = AdminClient(c.conf("broker"))
        bindings = [AclBinding(kind, name, pattern, "User:alice", "*", AclOperation.ALL, AclPermissionType.ALLOW)
                    for kind, name, pattern in ((ResourceType.TOPIC, "t-", ResourcePatternType.PREFIXED),
                                                (ResourceType.GROUP, "*", ResourcePatternType.LITERAL),
                                                (ResourceType.TRANSACTIONAL_ID, "*", ResourcePatternType.LITERAL))]
        bindings.append(AclBinding(ResourceType.TOPIC, RESERVED, ResourcePatternType.LITERAL, "User:alice", "*",
                                   AclOperation.CREATE, AclPermissionType.ALLOW))
        for future in admin.create_acls(bindings).values():
            future.result(15)
        wait(lambda: all(len(b.context.metadata.acls()) == 4 for b in c.brokers.values()), 10, "the ACLs everywhere")
        yield c
    finally:
        c.stop()


def create(c: Cluster, user: str, broker_id: int, name: str, client_id: str = "test") -> int:
    topic = make(create_topics.CreatableTopic, name=name, num_partitions=3, replication_factor=3, configs=(),
                 assignments=())
    body = make(create_topics.CreateTopicsRequest, topics=(topic,), timeout=datetime.timedelta(seconds=10),
                validate_only=False)
    with c.client(user, broker_id, client_id) as client:
        return client.request(body).topics[0].error_code


def leo(b: Broker, topic: str, index: int) -> int:
    p = b.logs.partition(topic, index)
    return -1 if p is None else p.log.log_end_offset


def test_replication_forwarding_and_transactions_authenticate_between_brokers(cluster):
    c = cluster
    controller = c.brokers[1].node.controller_id()
    other = next(i for i in c.brokers if i != controller)
    assert create(c, "bob", other, "t-refused") == TOPIC_AUTHORIZATION_FAILED
    assert create(c, "alice", other, "t-orders") == NONE      # forwarded to the controller over SASL_SSL
    assert "t-refused" not in c.brokers[controller].node.view.topics
    wait(lambda: all("t-orders" in b.node.view.topics for b in c.brokers.values()), 10, "the topic everywhere")

    producer = Producer({**c.conf("alice"), "acks": "all", "enable.idempotence": True})
    for i in range(30):
        producer.produce("t-orders", f"v{i}".encode(), partition=i % 3)
    assert producer.flush(20) == 0
    wait(lambda: all(leo(b, "t-orders", p) == 10 for b in c.brokers.values() for p in range(3)), 10,
         "every replica of every partition at 10 records")

    leaders = {c.brokers[1].node.view.partitions[("t-orders", p)].value.leader for p in range(3)}
    assert leaders == {1, 2, 3}, "the transaction's partitions are led by three brokers"
    txn = Producer({**c.conf("alice"), "transactional.id": "t-txn", "acks": "all"})
    txn.init_transactions(15)
    txn.begin_transaction()
    for p in range(3):
        txn.produce("t-orders", f"txn-{p}".encode(), partition=p)
    txn.commit_transaction(20)            # markers from the coordinator to three leaders
    consumer = Consumer({**c.conf("alice"), "group.id": "t-readers", "isolation.level": "read_committed",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([TopicPartition("t-orders", p, 0) for p in range(3)])
    got = poll_values(consumer, 33)
    assert sorted(got) == sorted([f"v{i}".encode() for i in range(30)] + [f"txn-{p}".encode() for p in range(3)])


def metadata_code(client: Client, topic: str) -> int:
    body = make(metadata.MetadataRequest, topics=(make(metadata.MetadataRequestTopic, topic_id=None, name=topic),),
                allow_auto_topic_creation=False, include_topic_authorized_operations=False)
    return client.request(body).topics[0].error_code


def produce_code(client: Client, topic: str) -> int:
    data = make(produce.PartitionProduceData, index=0, records=record_codec.encode_batch([(b"k", b"v", 1, ())]))
    body = make(produce.ProduceRequest, transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=5),
                topic_data=(make(produce.TopicProduceData, name=topic, partition_data=(data,)),))
    return client.request(body).responses[0].partition_responses[0].error_code


def test_a_client_without_rights_is_refused_on_every_broker_whatever_it_calls_itself(cluster):
    c = cluster
    assert create(c, "alice", 1, "t-guarded") == NONE
    wait(lambda: all("t-guarded" in b.node.view.topics for b in c.brokers.values()), 10, "the topic everywhere")
    for broker_id in c.brokers:
        for client_id in ("bob-app", f"kavka-broker-{broker_id}", "kavka-replica-1"):
            with c.client("bob", broker_id, client_id) as bob:
                assert metadata_code(bob, "t-guarded") == TOPIC_AUTHORIZATION_FAILED
                assert produce_code(bob, "t-guarded") == TOPIC_AUTHORIZATION_FAILED
        # alice may create the reserved name (an ACL) but is no broker, whatever her client id says
        assert create(c, "alice", broker_id, RESERVED, f"kavka-broker-{broker_id}") == INVALID_TOPIC
    assert all(RESERVED not in b.node.view.topics for b in c.brokers.values())


def test_a_broker_with_a_wrong_inter_broker_password_does_not_replicate(cluster, caplog):
    c = cluster
    assert create(c, "alice", 2, "t-after") == NONE
    wait(lambda: all(leo(b, "t-after", p) == 0 for b in c.brokers.values() for p in range(3)), 10,
         "the topic on every broker")
    c.brokers.pop(3).stop()
    caplog.set_level(logging.INFO, logger="kavka")
    c.start(3, password="wrong")
    producer = Producer({**c.conf("alice", 1, 2), "acks": "all"})
    for i in range(9):
        producer.produce("t-after", f"a{i}".encode(), partition=i % 3)
    assert producer.flush(20) == 0, "brokers 1 and 2 keep serving acks=all"

    def refused():
        return any("refused PLAIN authentication" in r.getMessage() and "SASL_AUTHENTICATION_FAILED" in r.getMessage()
                   for r in caplog.records)
    wait(refused, 10, "broker 3 logging why it cannot fetch")
    time.sleep(1.0)
    led_elsewhere = [p for p in range(3) if c.brokers[1].node.view.partitions[("t-after", p)].value.leader != 3]
    assert led_elsewhere and all(leo(c.brokers[3], "t-after", p) == 0 for p in led_elsewhere), \
        "broker 3's followers did not catch up"
    assert all(leo(c.brokers[1], "t-after", p) == 3 for p in range(3))
