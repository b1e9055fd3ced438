"""Apache Kafka's Java client and Kafka's own ``kafka-acls`` tool against a broker with the
StandardAuthorizer and real SASL principals (tests/integration/authz_broker.py: SCRAM-SHA-512
users alice and bob, super user admin).

The Java program's ``authz-probe`` step (java/.../Authz.java) tries, as one principal, to produce,
consume in a group, list and create topics and commit a transaction; the assertions here are on
the exception class the client raised for each refusal, and on the data directory, which a
refused principal must leave as it was.  ``kafka-acls`` authenticates as admin over SASL with
``--command-config`` and its ACLs are what confluent-kafka's alice and bob then meet.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Producer
from test_java_client import run_step
from test_kafka_tools import java, tool  # noqa: F401 (fixture)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))  # the secured broker
from authz_broker import TIMEOUT, secured_broker  # noqa: E402
from test_authz_sasl_clients import ck_consume, ck_produce, txn_id_binding, user_topics  # noqa: E402

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]


def probe(java, secured, user: str, listener: str, txn_id: str) -> dict:  # noqa: F811
    lines = run_step(java, "authz-probe", secured.bootstrap(listener), "orders", "billing", txn_id,
                     *secured.java_settings(user, listener))
    return {key: value for line in lines for key, value in line.items() if key != "message"}


def test_java_client_alice_is_served_bob_refused(java, kavka_broker_factory, tmp_path):  # noqa: F811
    secured = secured_broker(kavka_broker_factory, tmp_path)
    assert ck_produce(secured.conf("alice"), "orders") == [None] * 5
    before = secured.digest()
    assert probe(java, secured, "bob", "SASL_SSL", "billing-java") == {
        "produce_error": "TopicAuthorizationException", "consume_error": "GroupAuthorizationException",
        "topics": [], "create_error": "TopicAuthorizationException",
        "txn_error": "TransactionalIdAuthorizationException"}
    assert secured.digest() == before

    alice = probe(java, secured, "alice", "SASL_PLAINTEXT", "billing-java")
    consumed = alice.pop("consume")
    assert alice == {"produce": 5, "topics": ["orders", "orders-archive"],
                     "create_error": "TopicAuthorizationException",
                     "txn_error": "TransactionalIdAuthorizationException"}, alice
    assert consumed == ["order-0", "order-1", "order-2", "order-3", "order-4", "java"][:len(consumed)], consumed
    assert "orders-java" not in secured.admin().list_topics(timeout=TIMEOUT).topics
    secured.grant([txn_id_binding("billing-java")])
    alice = probe(java, secured, "alice", "SASL_SSL", "billing-java")
    assert alice["txn"] == "committed" and alice["produce"] == 6, alice
    # The group goes on from the offset the first probe committed.
    assert alice["consume"] == ["order-0", "order-1", "order-2", "order-3", "order-4", "java", "java"][
        len(consumed):len(consumed) + len(alice["consume"])], alice


def test_acls_made_by_kafka_acls_over_sasl_are_enforced(java, kavka_broker_factory, tmp_path):  # noqa: F811
    secured = secured_broker(kavka_broker_factory, tmp_path, acls=False)
    config = tmp_path / "admin.properties"
    config.write_text("security.protocol=SASL_SSL\nsasl.mechanism=SCRAM-SHA-512\n"
                      "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                      'username="admin" password="admin-secret";\n'
                      f"ssl.truststore.type=PEM\nssl.truststore.location={secured.ca}\n")

    def kafka_acls(*args: str) -> str:
        return tool(java, "AclCommand", "--bootstrap-server", secured.bootstrap("SASL_SSL"),
                    "--command-config", str(config), *args)

    alice, bob = secured.conf("alice"), secured.conf("bob")
    refused = ck_produce(alice, "orders", [b"early"])
    assert refused[0] is not None and refused[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, refused
    kafka_acls("--add", "--allow-principal", "User:alice", "--producer", "--topic", "orders")
    kafka_acls("--add", "--allow-principal", "User:alice", "--consumer", "--topic", "orders", "--group", "billing")
    kafka_acls("--add", "--deny-principal", "User:bob", "--operation", "All", "--topic", "orders")
    listed = kafka_acls("--list", "--topic", "orders")
    assert "User:alice" in listed and "User:bob" in listed and "DENY" in listed
    assert ck_produce(alice, "orders") == [None] * 5
    assert ck_consume(alice, "orders", "billing", 5)[0][:1] == [b"order-0"]
    assert user_topics(Producer(alice).list_topics(timeout=TIMEOUT).topics) == ["orders"]
    before = secured.digest()
    denied = ck_produce(bob, "orders", [b"bob"])
    assert denied[0] is not None and denied[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, denied
    got, errors = ck_consume(bob, "orders", "billing", 1)
    assert not got and KafkaError.GROUP_AUTHORIZATION_FAILED in errors, errors
    assert secured.digest() == before
    kafka_acls("--remove", "--force", "--allow-principal", "User:alice", "--operation", "Write", "--topic", "orders")
    refused = ck_produce(alice, "orders", [b"late"])
    assert refused[0] is not None and refused[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, refused
