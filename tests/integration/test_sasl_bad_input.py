"""Issue 13's bad-input list over the wire, against one broker with SASL_PLAINTEXT and SASL_SSL
listeners, while a well-behaved client stays connected: wrong passwords (PLAIN, SCRAM), a
truncated SaslAuthenticate frame, a SCRAM exchange with a forged nonce and one with a forged
proof, Produce sent with no SaslHandshake, a TLS handshake that never completes and plaintext
bytes to the TLS port.  Each bad connection is closed and its reason is logged with the client's
address (127.0.0.1:<its port>); the bystander, authenticated before any of it, is answered
after each one, and confluent-kafka still produces and consumes at the end."""

from __future__ import annotations

import base64
import logging
import socket
import struct
import time

import pytest
from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion
from kio.schema.metadata.v4.request import MetadataRequest
from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest
from secure_clients import EXPECTED, roundtrip
from tls_certs import make_pki

from kavka.client import Client, ClientError
from kavka.client_security import ClientSecurity
from kavka.protocol import messages
from kavka.security.sasl.scram import ScramClient

pytestmark = pytest.mark.timeout(90)

JAAS = 'org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";'
METADATA = MetadataRequest(topics=None, allow_auto_topic_creation=False)


@pytest.fixture
def broker(kavka_broker_factory, tmp_path):
    pki = make_pki(tmp_path / "pki")
    b = kavka_broker_factory({
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256", "ssl.keystore.location": str(pki.server),
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS,
        "connection.failed.authentication.delay.ms": "100", "kavka.ssl.handshake.timeout.ms": "500"},
        listeners="PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0")
    b.pki = pki
    admin = AdminClient({"bootstrap.servers": b.bootstrap("PLAINTEXT")})
    upsert = UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096),
                                          b"carol-secret")
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(10)
    return b


def closed(sock: socket.socket, timeout: float = 5) -> bool:
    """Whether the broker closes ``sock`` within ``timeout`` (whatever it sent first is read and dropped)."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False
    return False


def logged_for(caplog, port: int, *phrases: str) -> list[str]:
    """The log lines naming the client at 127.0.0.1:``port`` that hold every phrase."""
    return [m for m in (r.getMessage() for r in caplog.records)
            if f"127.0.0.1:{port}" in m and all(p in m for p in phrases)]


def wait_logged(caplog, port: int, *phrases: str, timeout: float = 5) -> list[str]:
    deadline = time.monotonic() + timeout
    while not (found := logged_for(caplog, port, *phrases)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def scram_until_final(client: Client) -> tuple[ScramClient, bytes]:
    """SaslHandshake + the client-first message as carol; (the SCRAM client, its honest client-final)."""
    assert client.request(SaslHandshakeRequest(mechanism="SCRAM-SHA-256")).error_code == 0
    scram = ScramClient("SCRAM-SHA-256", "carol", "carol-secret")
    server_first = client.request(SaslAuthenticateRequest(auth_bytes=scram.first()))
    assert server_first.error_code == 0
    return scram, scram.final(server_first.auth_bytes)


def forge_nonce(final: bytes) -> bytes:
    attrs = dict(item.split("=", 1) for item in final.decode().split(","))
    attrs["r"] = attrs["r"][:-1] + ("x" if attrs["r"][-1] != "x" else "y")
    return ",".join(f"{k}={v}" for k, v in attrs.items()).encode()


def forge_proof(final: bytes) -> bytes:
    without_proof, _, proof = final.decode().rpartition(",p=")
    forged = bytearray(base64.b64decode(proof))
    forged[0] ^= 0x01
    return f"{without_proof},p={base64.b64encode(bytes(forged)).decode()}".encode()


def refused_exchange(broker, final_of) -> tuple[int, int]:
    """A SCRAM exchange whose client-final is ``final_of(honest final)``: (its answer's error code, port)."""
    with Client(broker.bootstrap("SASL_PLAINTEXT")) as c:
        port = c.sock.getsockname()[1]
        _scram, final = scram_until_final(c)
        answer = c.request(SaslAuthenticateRequest(auth_bytes=final_of(final)))
        assert closed(c.sock)
    return answer.error_code, port


def test_bad_input_is_closed_logged_with_the_address_and_others_served(broker, caplog):
    caplog.set_level(logging.INFO)
    ssl_props = {"security.protocol": "SASL_SSL", "ssl.ca.location": str(broker.pki.ca),
                 "sasl.mechanism": "SCRAM-SHA-256", "sasl.username": "carol", "sasl.password": "carol-secret"}
    bystander = Client(broker.bootstrap("SASL_SSL"), security=ClientSecurity.from_properties(ssl_props))

    def bystander_served() -> None:
        assert len(bystander.request(METADATA).brokers) == 1

    bystander_served()
    sasl_host, sasl_port = broker.bootstrap("SASL_PLAINTEXT").split(":")
    tls_host, tls_port = broker.bootstrap("SASL_SSL").split(":")

    # Wrong passwords, PLAIN and SCRAM: SASL_AUTHENTICATION_FAILED (58), then closed.
    for mechanism, token in (("PLAIN", b"\0alice\0wrong"), ("SCRAM-SHA-256", None)):
        with Client(broker.bootstrap("SASL_PLAINTEXT")) as c:
            port = c.sock.getsockname()[1]
            assert c.request(SaslHandshakeRequest(mechanism=mechanism)).error_code == 0
            if token is None:
                scram = ScramClient("SCRAM-SHA-256", "carol", "wrong")
                first = c.request(SaslAuthenticateRequest(auth_bytes=scram.first()))
                token = scram.final(first.auth_bytes)
            assert c.request(SaslAuthenticateRequest(auth_bytes=token)).error_code == 58
            assert closed(c.sock)
        assert wait_logged(caplog, port, "failed authentication from", "SASL_PLAINTEXT"), mechanism
        bystander_served()

    # A forged nonce and a forged proof in SCRAM's client-final.
    code, port = refused_exchange(broker, forge_nonce)
    assert code == 58 and wait_logged(caplog, port, "failed authentication from", "nonce")
    bystander_served()
    code, port = refused_exchange(broker, forge_proof)
    assert code == 58 and wait_logged(caplog, port, "failed authentication from", "Invalid user credentials")
    bystander_served()

    # A truncated SaslAuthenticate frame: the token's length says more than the frame holds.
    with socket.create_connection((sasl_host, int(sasl_port))) as s:
        port = s.getsockname()[1]
        s.sendall(messages.encode_request_frame(SaslHandshakeRequest(mechanism="PLAIN"), 1, "bad"))
        whole = messages.encode_request_frame(SaslAuthenticateRequest(auth_bytes=b"\0alice\0alice-secret"), 2, "bad")
        cut = whole[4:-6]
        s.sendall(struct.pack(">i", len(cut)) + cut)
        assert closed(s)
    assert wait_logged(caplog, port, "closing connection from", "malformed SaslAuthenticate")
    bystander_served()

    # Produce with no SaslHandshake first, on the SASL listener.
    with socket.create_connection((sasl_host, int(sasl_port))) as s:
        port = s.getsockname()[1]
        s.sendall(struct.pack(">ihhi", 10, 0, 9, 7) + b"\0\0")
        assert closed(s)
    assert wait_logged(caplog, port, "closing connection from", "unexpected Kafka request of API key 0")
    bystander_served()

    # On the SASL_SSL port: plaintext Kafka bytes, and a client that never starts the handshake
    # (timed out after kavka.ssl.handshake.timeout.ms while the bystander is served).
    with socket.create_connection((tls_host, int(tls_port))) as plain:
        port = plain.getsockname()[1]
        plain.sendall(messages.encode_request_frame(SaslHandshakeRequest(mechanism="PLAIN"), 1, "plain"))
        assert closed(plain)
    assert wait_logged(caplog, port, "closing connection from", "TLS handshake failed")
    stalled = socket.create_connection((tls_host, int(tls_port)))
    port = stalled.getsockname()[1]
    started = time.monotonic()
    bystander_served()
    assert closed(stalled) and time.monotonic() - started < 4
    stalled.close()
    assert wait_logged(caplog, port, "closing connection from", "TLS handshake not done within 500 ms")
    bystander_served()

    with pytest.raises((ClientError, ConnectionError)):   # a refused client's Client says so
        Client(broker.bootstrap("SASL_PLAINTEXT"), security=ClientSecurity.from_properties(
            {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.username": "alice",
             "sasl.password": "nope"})).request(METADATA)
    bystander.close()
    conf = {"bootstrap.servers": broker.bootstrap("SASL_SSL"), "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(broker.pki.ca), "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": "carol", "sasl.password": "carol-secret"}
    assert roundtrip(conf, "after-bad-input") == EXPECTED
