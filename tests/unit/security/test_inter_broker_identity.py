"""Who is another broker (kavka.api.inter_broker.from_broker), and the broker's own client side
of the inter-broker listener (ClientSecurity.inter_broker): a client cannot become a broker by
naming itself ``kavka-broker-N``, on an authenticated inter-broker listener its principal decides;
and a SASL inter-broker listener without usable credentials is refused before anything opens."""

from __future__ import annotations

import asyncio
import datetime
import sys
from pathlib import Path

import pytest

from acl_harness import ADMIN, AUTHORIZER, Q, acl
from kavka.api.inter_broker import InterBrokerIdentity, from_broker
from kavka.api.registry import REGISTRY, Request
from kavka.client_security import ClientSecurity
from kavka.config import BrokerConfig, ConfigError
from kavka.protocol.errors import ErrorCode
from kavka.security.acl import AclOperation, PatternType, ResourceType
from kavka.security.principal import ANONYMOUS, KafkaPrincipal

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration"))
from tls_certs import make_pki  # noqa: E402

BROKER = KafkaPrincipal("User", "broker")
MALLORY = KafkaPrincipal("User", "mallory")
CREATE_TOPICS = 19
JAAS = 'org.apache.kafka.common.security.plain.PlainLoginModule required username="broker" password="s3cret";'
SASL = {"sasl.enabled.mechanisms": "PLAIN", "sasl.mechanism.inter.broker.protocol": "PLAIN",
        "listener.name.internal.plain.sasl.jaas.config": JAAS}


def request(b, principal, client_id: str, listener: str = "INTERNAL", body=None) -> Request:
    return Request(CREATE_TOPICS, 5, 1, client_id, body, b.context, "127.0.0.1:40000", principal, listener)


def sasl_identity() -> InterBrokerIdentity:
    config = BrokerConfig.from_strings(SASL)
    return InterBrokerIdentity.of(config, "INTERNAL", "SASL_SSL",
                                  ClientSecurity.inter_broker(config, "INTERNAL", "SASL_PLAINTEXT"))


def test_on_an_authenticated_listener_the_principal_decides_not_the_client_id(broker_at):
    b = broker_at()
    b.context.inter_broker = sasl_identity()
    assert b.context.inter_broker.principal == BROKER
    assert from_broker(request(b, BROKER, "anything"))
    for client_id in ("kavka-broker-1", "kavka-replica-2"):
        assert not from_broker(request(b, MALLORY, client_id))
        assert not from_broker(request(b, ANONYMOUS, client_id))
    assert not from_broker(request(b, BROKER, "kavka-broker-1", listener="EXTERNAL")), \
        "brokers connect only to the inter-broker listener"


def test_on_a_plaintext_inter_broker_listener_only_the_client_id_names_a_broker(broker_at):
    b = broker_at()
    assert not from_broker(request(b, ANONYMOUS, "kavka-broker-1", listener="PLAINTEXT")), "a lone broker"
    b.context.inter_broker = InterBrokerIdentity("PLAINTEXT", authenticated=False)
    assert from_broker(request(b, ANONYMOUS, "kavka-broker-1", listener="PLAINTEXT"))
    assert not from_broker(request(b, ANONYMOUS, "app", listener="PLAINTEXT"))
    assert not from_broker(request(b, ANONYMOUS, "kavka-broker-1", listener="EXTERNAL"))


def test_with_an_authorizer_cluster_action_makes_a_broker(broker_at):
    b = broker_at({"authorizer.class.name": AUTHORIZER, "super.users": "User:admin"})
    b.context.inter_broker = sasl_identity()
    other = KafkaPrincipal("User", "broker-2")   # a broker with credentials of its own
    assert not from_broker(request(b, other, "kavka-broker-2"))
    b.grant(acl(ResourceType.CLUSTER, "kafka-cluster", AclOperation.CLUSTER_ACTION, other))
    assert from_broker(request(b, other, "kavka-broker-2"))
    assert from_broker(request(b, ADMIN, "x")), "a super user may do every cluster action"
    assert not from_broker(request(b, MALLORY, "kavka-broker-2"))


def create_reserved(b, principal, client_id: str) -> int:
    q = Q(CREATE_TOPICS, 5)
    body = q.CreateTopicsRequest(topics=(q.CreatableTopic(name="__cluster_metadata", num_partitions=1,
                                                          replication_factor=1, assignments=(), configs=()),),
                                 timeout=datetime.timedelta(seconds=5), validate_only=True)
    answer = asyncio.run(REGISTRY[CREATE_TOPICS].handler(request(b, principal, client_id, body=body)))
    return answer.topics[0].error_code


def test_a_spoofed_broker_client_id_creates_no_reserved_topic(broker_at):
    b = broker_at({"authorizer.class.name": AUTHORIZER, "super.users": "User:broker"})
    b.context.inter_broker = sasl_identity()
    b.grant(acl(ResourceType.TOPIC, "__", AclOperation.CREATE, MALLORY, pattern=PatternType.PREFIXED))
    assert create_reserved(b, MALLORY, "kavka-broker-1") == ErrorCode.invalid_topic_exception
    assert create_reserved(b, BROKER, "kavka-broker-1") == ErrorCode.none


def test_a_spoofed_broker_client_id_is_still_throttled(broker_at):
    from kavka.api.quotas import exempt
    b = broker_at()
    b.context.inter_broker = sasl_identity()
    assert not exempt(request(b, MALLORY, "kavka-broker-1"))
    assert exempt(request(b, BROKER, "mallory-lookalike"))


@pytest.mark.parametrize("settings, message", [
    ({"sasl.enabled.mechanisms": "PLAIN", "listener.name.internal.plain.sasl.jaas.config": JAAS},
     "GSSAPI is Kafka's default"),
    ({**SASL, "sasl.mechanism.inter.broker.protocol": "OAUTHBEARER"}, "not supported between kavka brokers"),
    ({**SASL, "sasl.enabled.mechanisms": "SCRAM-SHA-256"}, "must be one of the sasl.enabled.mechanisms"),
    ({**SASL, "listener.name.internal.plain.sasl.jaas.config":
        'org.apache.kafka.common.security.plain.PlainLoginModule required user_broker="s3cret";'},
     "listener.name.internal.plain.sasl.jaas.config: .* has no username"),
    ({"sasl.enabled.mechanisms": "SCRAM-SHA-512", "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-512"},
     "listener.name.internal.scram-sha-512.sasl.jaas.config"),
])
def test_a_sasl_inter_broker_listener_needs_a_mechanism_and_credentials_kavka_can_use(settings, message):
    with pytest.raises(ConfigError, match=message):
        ClientSecurity.inter_broker(BrokerConfig.from_strings(settings), "INTERNAL", "SASL_PLAINTEXT")


def test_the_credentials_come_from_the_listeners_jaas_config_for_the_mechanism():
    config = BrokerConfig.from_strings({
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256", "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-256",
        "listener.name.internal.plain.sasl.jaas.config": JAAS,
        "listener.name.internal.scram-sha-256.sasl.jaas.config":
            'org.apache.kafka.common.security.scram.ScramLoginModule required username="ib" password="pw";'})
    security = ClientSecurity.inter_broker(config, "INTERNAL", "SASL_PLAINTEXT")
    assert (security.mechanism, security.username, security.password, security.ssl_context) == \
        ("SCRAM-SHA-256", "ib", "pw", None)


def test_an_ssl_inter_broker_listener_trusts_its_truststore_and_presents_its_keystore(tmp_path):
    pki = make_pki(tmp_path / "pki", key_password="kp")
    config = BrokerConfig.from_strings({
        "ssl.keystore.location": str(pki.server), "ssl.key.password": "kp", "ssl.truststore.location": str(pki.ca),
        "listener.name.internal.ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=(.*)$/$1/U"})
    security = ClientSecurity.inter_broker(config, "INTERNAL", "SSL")
    assert security.ssl_context.check_hostname and security.mechanism is None
    assert InterBrokerIdentity.of(config, "INTERNAL", "SSL", security).principal == KafkaPrincipal("User", "LOCALHOST")
    loose = BrokerConfig.from_strings({"ssl.truststore.location": str(pki.ca),
                                       "listener.name.internal.ssl.endpoint.identification.algorithm": ""})
    assert not ClientSecurity.inter_broker(loose, "INTERNAL", "SSL").ssl_context.check_hostname
    assert not InterBrokerIdentity.of(loose, "INTERNAL", "SSL", None).authenticated   # ssl.client.auth=none
    with pytest.raises(ConfigError, match="cannot load the key store"):
        ClientSecurity.inter_broker(BrokerConfig.from_strings({"ssl.keystore.location": str(pki.server),
                                                               "ssl.key.password": "wrong"}), "INTERNAL", "SSL")
