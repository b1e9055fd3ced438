"""SASL listeners with real clients: PLAIN, SCRAM-SHA-256/512 (credentials created with
AlterUserScramCredentials) and OAUTHBEARER (librdkafka's unsecured tokens), over
SASL_PLAINTEXT and SASL_SSL; and what a SASL listener does with clients that misbehave."""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
import subprocess
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)
from secure_clients import EXPECTED, aio_roundtrip, roundtrip
from tls_certs import make_pki

from kavka.client import Client, ClientError
from kavka.protocol import messages

LISTENERS = "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0"
MECHANISMS = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER"
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'user_alice="alice-secret" user_bob="bob-secret";')


@pytest.fixture
def broker(kavka_broker_factory, tmp_path):
    pki = make_pki(tmp_path / "pki")
    b = kavka_broker_factory({
        "sasl.enabled.mechanisms": MECHANISMS, "ssl.keystore.location": str(pki.server),
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS,
        "connection.failed.authentication.delay.ms": "300"}, listeners=LISTENERS)
    b.pki = pki
    admin = AdminClient({"bootstrap.servers": b.bootstrap("PLAINTEXT")})
    upserts = [UserScramCredentialUpsertion("carol", ScramCredentialInfo(m, 8192), b"carol-secret")
               for m in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512)]
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result(10)
    return b


def _conf(broker, listener: str, mechanism: str, user: str = "", password: str = "") -> dict:
    conf = {"bootstrap.servers": broker.bootstrap(listener), "security.protocol": listener,
            "sasl.mechanism": mechanism}
    if mechanism == "OAUTHBEARER":
        conf["sasl.oauthbearer.config"] = f"principal={user} scope=kafka"
        conf["enable.sasl.oauthbearer.unsecure.jwt"] = True
    else:
        conf.update({"sasl.username": user, "sasl.password": password})
    if listener == "SASL_SSL":
        conf["ssl.ca.location"] = str(broker.pki.ca)
    return conf


@pytest.mark.parametrize("listener", ["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize("mechanism, user, password", [
    ("PLAIN", "alice", "alice-secret"), ("SCRAM-SHA-256", "carol", "carol-secret"),
    ("SCRAM-SHA-512", "carol", "carol-secret"), ("OAUTHBEARER", "dave", "")])
def test_confluent_kafka_authenticates(broker, caplog, listener, mechanism, user, password):
    caplog.set_level(logging.INFO, logger="kavka.security")
    topic = f"sasl-{listener}-{mechanism}".lower()
    assert roundtrip(_conf(broker, listener, mechanism, user, password), topic) == EXPECTED
    assert any(f"authenticated as User:{user} on listener {listener}" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("mechanism, user", [("PLAIN", "alice"), ("SCRAM-SHA-256", "carol"), ("SCRAM-SHA-512", "carol")])
def test_a_wrong_password_is_refused_logged_and_delayed(broker, caplog, mechanism, user):
    caplog.set_level(logging.INFO)
    admin = AdminClient(_conf(broker, "SASL_PLAINTEXT", mechanism, user, "wrong"))
    started = time.monotonic()
    with pytest.raises(KafkaException) as caught:
        admin.list_topics(timeout=5)
    assert caught.value.args[0].code() in (KafkaError._AUTHENTICATION, KafkaError._TRANSPORT)
    assert time.monotonic() - started >= 0.3
    failed = [r.getMessage() for r in caplog.records if "failed authentication from 127.0.0.1:" in r.getMessage()]
    assert failed and "SASL_PLAINTEXT" in failed[0]
    assert roundtrip(_conf(broker, "SASL_PLAINTEXT", "PLAIN", "bob", "bob-secret"), "after-wrong") == EXPECTED


def test_kafka_python_aiokafka_and_kcat(broker):
    from kafka import KafkaConsumer, KafkaProducer
    for mechanism, user, password in (("PLAIN", "alice", "alice-secret"), ("SCRAM-SHA-256", "carol", "carol-secret"),
                                      ("SCRAM-SHA-512", "carol", "carol-secret")):
        common = dict(bootstrap_servers=broker.bootstrap("SASL_SSL"), security_protocol="SASL_SSL",
                      ssl_cafile=str(broker.pki.ca), sasl_mechanism=mechanism,
                      sasl_plain_username=user, sasl_plain_password=password)
        topic = f"kp-{mechanism}".lower()
        producer = KafkaProducer(**common)
        for i in range(5):
            producer.send(topic, f"m{i}".encode())
        producer.flush(15)
        producer.close()
        consumer = KafkaConsumer(topic, auto_offset_reset="earliest", consumer_timeout_ms=8000, **common)
        assert [m.value for m in consumer] == EXPECTED, mechanism
        consumer.close()

    for mechanism, user, password in (("PLAIN", "bob", "bob-secret"), ("SCRAM-SHA-256", "carol", "carol-secret"),
                                      ("SCRAM-SHA-512", "carol", "carol-secret")):
        got = asyncio.run(aio_roundtrip(
            f"aio-{mechanism}".lower(), bootstrap_servers=broker.bootstrap("SASL_PLAINTEXT"),
            security_protocol="SASL_PLAINTEXT", sasl_mechanism=mechanism, sasl_plain_username=user,
            sasl_plain_password=password))
        assert got == EXPECTED, mechanism

    # PLAIN only: the librdkafka 2.0.2 kcat links sends the client nonce twice in its SCRAM
    # client-final message (a Kafka broker refuses it the same way); the bundled 2.x above passes.
    kcat = ["kcat", "-b", broker.bootstrap("SASL_SSL"), "-X", "security.protocol=SASL_SSL", "-X",
            f"ssl.ca.location={broker.pki.ca}", "-X", "sasl.mechanism=PLAIN",
            "-X", "sasl.username=alice", "-X", "sasl.password=alice-secret"]
    subprocess.run([*kcat, "-P", "-t", "kcat-sasl"], input=b"a\nb\n", check=True, timeout=30)
    out = subprocess.run([*kcat, "-C", "-t", "kcat-sasl", "-e", "-o", "beginning"], capture_output=True,
                         check=True, timeout=30).stdout
    assert out.split() == [b"a", b"b"]


def test_scram_credentials_are_described_deleted_and_survive_a_restart(kavka_broker_factory, broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap("PLAINTEXT")})
    described = admin.describe_user_scram_credentials(["carol"])["carol"].result(10)
    assert sorted((i.mechanism, i.iterations) for i in described.scram_credential_infos) == [
        (ScramMechanism.SCRAM_SHA_256, 8192), (ScramMechanism.SCRAM_SHA_512, 8192)]
    with pytest.raises(KafkaException) as caught:
        admin.describe_user_scram_credentials(["nobody"])["nobody"].result(10)
    assert caught.value.args[0].code() == KafkaError.RESOURCE_NOT_FOUND
    bad = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
        "x", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 100), b"pw")])
    with pytest.raises(KafkaException) as caught:
        bad["x"].result(10)
    assert caught.value.args[0].code() == KafkaError.UNACCEPTABLE_CREDENTIAL
    for future in admin.alter_user_scram_credentials(
            [UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_512)]).values():
        future.result(10)
    data_dir = broker.data_dir
    broker.stop()
    again = kavka_broker_factory({"sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512"}, data_dir=data_dir,
                                 listeners="PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0")
    assert roundtrip(_conf(again, "SASL_PLAINTEXT", "SCRAM-SHA-256", "carol", "carol-secret"), "kept") == EXPECTED
    with pytest.raises(KafkaException):
        AdminClient(_conf(again, "SASL_PLAINTEXT", "SCRAM-SHA-512", "carol", "carol-secret")).list_topics(timeout=3)


def _frame(obj, correlation_id: int = 1) -> bytes:
    return messages.encode_request_frame(obj, correlation_id, "raw-test")


def _closed(sock: socket.socket) -> bool:
    sock.settimeout(5)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True


def test_misbehaving_clients_are_closed_and_others_served(broker, caplog):
    from kio.schema.metadata.v4.request import MetadataRequest
    from kio.schema.sasl_authenticate.v1.request import SaslAuthenticateRequest
    from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest
    caplog.set_level(logging.INFO)
    host, port = broker.bootstrap("SASL_PLAINTEXT").split(":")
    address = (host, int(port))
    # A request before authenticating (Metadata) closes the connection.
    with socket.create_connection(address) as s:
        s.sendall(_frame(MetadataRequest(topics=None, allow_auto_topic_creation=False)))
        assert _closed(s)
    # A produce-shaped frame too.
    with socket.create_connection(address) as s:
        s.sendall(struct.pack(">ihhi", 10, 0, 3, 7) + b"\0\0")
        assert _closed(s)
    # A truncated SaslAuthenticate frame (the token's length says more than the frame holds).
    with socket.create_connection(address) as s:
        s.sendall(_frame(SaslHandshakeRequest(mechanism="PLAIN")))
        s.settimeout(5)
        assert s.recv(4)
        whole = _frame(SaslAuthenticateRequest(auth_bytes=b"\0alice\0alice-secret"), 2)
        cut = whole[4:-6]
        s.sendall(struct.pack(">i", len(cut)) + cut)
        assert _closed(s)
    # SaslAuthenticate without a handshake: ILLEGAL_SASL_STATE, then closed.
    with Client(broker.bootstrap("SASL_PLAINTEXT")) as c:
        answer = c.request(SaslAuthenticateRequest(auth_bytes=b"\0alice\0alice-secret"))
        assert answer.error_code == 34
        with pytest.raises((ClientError, ConnectionError)):
            c.request(SaslHandshakeRequest(mechanism="PLAIN"))
    # An unknown mechanism: UNSUPPORTED_SASL_MECHANISM with the enabled ones.
    with Client(broker.bootstrap("SASL_PLAINTEXT")) as c:
        answer = c.request(SaslHandshakeRequest(mechanism="GSSAPI"))
        assert answer.error_code == 33 and list(answer.mechanisms) == MECHANISMS.split(",")
    # The KIP-152 exchange done by hand, then requests are served.
    with Client(broker.bootstrap("SASL_PLAINTEXT")) as c:
        assert c.request(SaslHandshakeRequest(mechanism="PLAIN")).error_code == 0
        assert c.request(SaslAuthenticateRequest(auth_bytes=b"\0alice\0alice-secret")).error_code == 0
        assert c.request(MetadataRequest(topics=None, allow_auto_topic_creation=False)).brokers
    reasons = [r.getMessage() for r in caplog.records if "closing connection" in r.getMessage()]
    assert sum("unexpected Kafka request" in m for m in reasons) == 2
    assert any("malformed SaslAuthenticate" in m for m in reasons)
    assert roundtrip(_conf(broker, "SASL_PLAINTEXT", "PLAIN", "alice", "alice-secret"), "still") == EXPECTED


def test_sasl_handshake_v0_then_bare_tokens(broker, caplog):
    """Before KIP-152 the tokens follow SaslHandshake v0 as bare size-prefixed frames."""
    from kio.schema.metadata.v4.request import MetadataRequest
    from kio.schema.sasl_handshake.v0.request import SaslHandshakeRequest
    caplog.set_level(logging.INFO)
    with Client(broker.bootstrap("SASL_PLAINTEXT")) as c:
        assert c.request(SaslHandshakeRequest(mechanism="PLAIN")).error_code == 0
        token = b"\0alice\0alice-secret"
        c.send_raw(struct.pack(">i", len(token)) + token)
        assert c.recv_frame() == b""              # PLAIN's empty server reply
        assert c.request(MetadataRequest(topics=None, allow_auto_topic_creation=False)).brokers
    with Client(broker.bootstrap("SASL_PLAINTEXT")) as c:
        assert c.request(SaslHandshakeRequest(mechanism="PLAIN")).error_code == 0
        token = b"\0alice\0wrong"
        c.send_raw(struct.pack(">i", len(token)) + token)
        with pytest.raises((ClientError, ConnectionError)):
            c.recv_frame()
    assert any("failed authentication from 127.0.0.1:" in r.getMessage() for r in caplog.records)


def test_clients_reauthenticate_within_connections_max_reauth_ms(kavka_broker_factory, caplog):
    """KIP-368: SaslAuthenticate answers the session lifetime; librdkafka re-authenticates on
    the same connection before it ends, and a client that does not is closed on its next request."""
    from kio.schema.metadata.v4.request import MetadataRequest
    from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
    from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest
    b = kavka_broker_factory({"sasl.enabled.mechanisms": "PLAIN", "connections.max.reauth.ms": "1500",
                              "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS},
                             listeners="PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0")
    caplog.set_level(logging.INFO)
    conf = {"bootstrap.servers": b.bootstrap("SASL_PLAINTEXT"), "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN", "sasl.username": "alice", "sasl.password": "alice-secret"}
    producer = Producer(conf)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        producer.produce("reauth", b"v")
        producer.poll(0.1)
    assert producer.flush(10) == 0
    peers = [r.getMessage().split(" ")[0] for r in caplog.records if "authenticated as User:alice" in r.getMessage()]
    assert max(peers.count(p) for p in set(peers)) >= 3      # one connection authenticated again and again
    assert not any("expired without re-authentication" in r.getMessage() for r in caplog.records)
    with Client(b.bootstrap("SASL_PLAINTEXT")) as c:
        assert c.request(SaslHandshakeRequest(mechanism="PLAIN")).error_code == 0
        answer = c.request(SaslAuthenticateRequest(auth_bytes=b"\0alice\0alice-secret"))
        assert answer.error_code == 0 and 0 < answer.session_lifetime.total_seconds() * 1000 <= 1500
        time.sleep(1.6)
        with pytest.raises((ClientError, ConnectionError)):
            c.request(MetadataRequest(topics=None, allow_auto_topic_creation=False))
    assert any("expired without re-authentication" in r.getMessage() for r in caplog.records)
