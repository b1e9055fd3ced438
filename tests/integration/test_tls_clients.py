"""SSL listeners with real clients: server authentication and mTLS (the certificate's subject
as principal, through ssl.principal.mapping.rules), and what a TLS port does with bad input."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import subprocess
import time

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from secure_clients import EXPECTED, aio_roundtrip, roundtrip
from tls_certs import make_ca, make_pki

LISTENERS = "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0"


@pytest.fixture
def pki(tmp_path):
    return make_pki(tmp_path / "pki", key_password="keypass")


def _tls_broker(factory, pki, **extra):
    settings = {"ssl.keystore.location": str(pki.server), "ssl.key.password": "keypass",
                "ssl.truststore.location": str(pki.ca), **extra}
    return factory(settings, listeners=LISTENERS)




def test_confluent_kafka_over_ssl_with_server_authentication(kavka_broker_factory, pki):
    broker = _tls_broker(kavka_broker_factory, pki)
    ssl_conf = {"security.protocol": "SSL", "ssl.ca.location": str(pki.ca)}
    assert roundtrip({"bootstrap.servers": broker.bootstrap("SSL"), **ssl_conf}, "tls-ck") == EXPECTED
    # A client that does not trust the broker's CA is refused by its own check.
    other_ca = pki.dir / "other-ca.crt"
    from cryptography.hazmat.primitives import serialization
    other_ca.write_bytes(make_ca("another CA")[0].public_bytes(serialization.Encoding.PEM))
    admin = AdminClient({"bootstrap.servers": broker.bootstrap("SSL"), "security.protocol": "SSL",
                         "ssl.ca.location": str(other_ca)})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=3)


def test_large_fetches_over_ssl_arrive_intact(kavka_broker_factory, pki):
    """Responses over 64 KiB of log data: sendfile cannot be used under TLS, the regions are read
    and written through the SSL transport in chunks."""
    broker = _tls_broker(kavka_broker_factory, pki)
    ssl_conf = {"security.protocol": "SSL", "ssl.ca.location": str(pki.ca)}
    values = [bytes([i % 251]) * 20000 for i in range(150)]   # 3 MB
    conf = {"bootstrap.servers": broker.bootstrap("SSL"), **ssl_conf}
    assert roundtrip(conf, "tls-big", values, {"fetch.min.bytes": 1000000}, timeout=30) == values


def test_kafka_python_and_aiokafka_over_ssl(kavka_broker_factory, pki):
    from kafka import KafkaConsumer, KafkaProducer
    broker = _tls_broker(kavka_broker_factory, pki)
    bootstrap = broker.bootstrap("SSL")
    producer = KafkaProducer(bootstrap_servers=bootstrap, security_protocol="SSL", ssl_cafile=str(pki.ca),
                             ssl_check_hostname=True)
    for i in range(5):
        producer.send("tls-kp", f"m{i}".encode())
    producer.flush(15)
    producer.close()
    consumer = KafkaConsumer("tls-kp", bootstrap_servers=bootstrap, security_protocol="SSL",
                             ssl_cafile=str(pki.ca), auto_offset_reset="earliest", consumer_timeout_ms=8000)
    assert [m.value for m in consumer] == EXPECTED
    consumer.close()

    from aiokafka.helpers import create_ssl_context
    context = create_ssl_context(cafile=str(pki.ca))
    got = asyncio.run(aio_roundtrip("tls-aio", bootstrap_servers=bootstrap, security_protocol="SSL", ssl_context=context))
    assert got == EXPECTED


def test_kcat_over_ssl(kavka_broker_factory, pki):
    broker = _tls_broker(kavka_broker_factory, pki)
    args = ["kcat", "-b", broker.bootstrap("SSL"), "-X", "security.protocol=SSL", "-X", f"ssl.ca.location={pki.ca}"]
    subprocess.run([*args, "-P", "-t", "tls-kcat"], input=b"a\nb\nc\n", check=True, timeout=30)
    out = subprocess.run([*args, "-C", "-t", "tls-kcat", "-e", "-o", "beginning"], capture_output=True,
                         check=True, timeout=30).stdout
    assert out.split() == [b"a", b"b", b"c"]


def test_mtls_principal_is_the_mapped_subject(kavka_broker_factory, pki, caplog):
    rules = "RULE:^CN=([a-z]+),O=Example$/$1/U,DEFAULT"
    broker = _tls_broker(kavka_broker_factory, pki, **{"ssl.client.auth": "required",
                                                        "ssl.principal.mapping.rules": rules})
    alice_crt, alice_key = pki.client("alice", {"O": "Example", "CN": "alice"})
    bob_crt, bob_key = pki.client("bob", {"O": "Other", "CN": "bob"})
    caplog.set_level(logging.INFO, logger="kavka.server")
    for crt, key, topic in ((alice_crt, alice_key, "mtls-a"), (bob_crt, bob_key, "mtls-b")):
        conf = {"security.protocol": "SSL", "ssl.ca.location": str(pki.ca),
                "ssl.certificate.location": str(crt), "ssl.key.location": str(key)}
        assert roundtrip({"bootstrap.servers": broker.bootstrap("SSL"), **conf}, topic) == EXPECTED
    principals = {r.getMessage().rsplit(" as ", 1)[1] for r in caplog.records if "TLS client certificate" in r.getMessage()}
    assert principals == {"User:ALICE", "User:CN=bob,O=Other"}
    # Without a certificate the handshake fails: required means required.
    admin = AdminClient({"bootstrap.servers": broker.bootstrap("SSL"), "security.protocol": "SSL",
                         "ssl.ca.location": str(pki.ca)})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=3)
    # A certificate from a CA the broker does not trust is refused too.
    stranger = pki.client("eve", {"CN": "eve"}, ca=make_ca("rogue CA"))
    admin = AdminClient({"bootstrap.servers": broker.bootstrap("SSL"), "security.protocol": "SSL",
                         "ssl.ca.location": str(pki.ca), "ssl.certificate.location": str(stranger[0]),
                         "ssl.key.location": str(stranger[1])})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=3)
    assert any("TLS handshake failed" in r.getMessage() for r in caplog.records)


def test_inline_pem_keystore_and_tls_versions(kavka_broker_factory, pki):
    broker = kavka_broker_factory({"ssl.keystore.certificate.chain": pki.server_cert.read_text(),
                                   "ssl.keystore.key": pki.server_key.read_text(), "ssl.key.password": "keypass",
                                   "ssl.enabled.protocols": "TLSv1.3"}, listeners=LISTENERS)
    host, port = broker.bootstrap("SSL").split(":")
    context = ssl.create_default_context(cafile=str(pki.ca))
    with socket.create_connection((host, int(port))) as raw, context.wrap_socket(raw, server_hostname="localhost") as s:
        assert s.version() == "TLSv1.3"
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection((host, int(port))) as raw, pytest.raises(ssl.SSLError):
        context.wrap_socket(raw, server_hostname="localhost")


def test_bad_input_on_the_tls_port_leaves_others_served(kavka_broker_factory, pki, caplog):
    broker = _tls_broker(kavka_broker_factory, pki, **{"kavka.ssl.handshake.timeout.ms": "500"})
    caplog.set_level(logging.INFO, logger="kavka.server")
    host, port = broker.bootstrap("SSL").split(":")
    stalled = socket.create_connection((host, int(port)))     # never starts the handshake
    with socket.create_connection((host, int(port))) as plain:   # speaks Kafka in plaintext
        plain.sendall(bytes.fromhex("0000001a00120003000000010006636c69656e74000000000000000000"))
        plain.settimeout(5)
        assert plain.recv(100) == b""     # closed, no answer
    ssl_conf = {"security.protocol": "SSL", "ssl.ca.location": str(pki.ca)}
    assert roundtrip({"bootstrap.servers": broker.bootstrap("SSL"), **ssl_conf}, "tls-after") == EXPECTED
    stalled.settimeout(5)
    started = time.monotonic()
    assert stalled.recv(100) == b""       # closed by the handshake timeout
    assert time.monotonic() - started < 5
    stalled.close()
    messages = [r.getMessage() for r in caplog.records]
    assert any("TLS handshake failed" in m for m in messages)
    assert any("TLS handshake not done within 500 ms" in m for m in messages)
