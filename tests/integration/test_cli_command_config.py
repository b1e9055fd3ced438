"""The CLI's own secured connections (``--command-config``, Kafka's client properties) and
``kavka users``, against an in-process broker with SASL_PLAINTEXT, SASL_SSL and SSL (mTLS)
listeners: the broker's log says who authenticated, so a command that silently fell back to
PLAINTEXT (or a wrong principal) fails the test; SCRAM users made by the CLI are checked
with confluent-kafka."""

from __future__ import annotations

import base64
import json
import logging
import time

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from tls_certs import make_pki
from test_cli_tools import failed, kavka, ok

pytestmark = pytest.mark.timeout(180)

LISTENERS = "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0,SSL://127.0.0.1:0"
JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'user_alice="alice-secret";')


@pytest.fixture
def broker(kavka_broker_factory, tmp_path):
    pki = make_pki(tmp_path / "pki", key_password="keypass")
    b = kavka_broker_factory({
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
        "ssl.keystore.location": str(pki.server),
        "ssl.key.password": "keypass", "ssl.truststore.location": str(pki.ca),
        "listener.name.ssl.ssl.client.auth": "required",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": JAAS,
        "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS,
        "connection.failed.authentication.delay.ms": "100"}, listeners=LISTENERS)
    b.pki = pki
    b.dir = tmp_path
    admin = AdminClient({"bootstrap.servers": b.bootstrap("PLAINTEXT")})
    for future in admin.create_topics([NewTopic("secured-topic", 1, 1)]).values():
        future.result(10)
    return b


def properties(broker, name: str, **props: str) -> str:
    path = broker.dir / f"{name}.properties"
    path.write_text("# written by the test\n" + "".join(f"{k}={v}\n" for k, v in props.items()))
    return str(path)


def cli(broker, listener: str, config: str, *args: str):
    return kavka(broker, *args, "--bootstrap-server", broker.bootstrap(listener), "--command-config", config)


def authenticated(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "authenticated as" in r.getMessage()]


def test_plain_over_sasl_ssl_with_jaas_config(broker, caplog):
    caplog.set_level(logging.INFO, logger="kavka.security")
    config = properties(broker, "plain", **{
        "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN", "ssl.truststore.location": broker.pki.ca,
        "sasl.jaas.config": JAAS.replace('user_alice="alice-secret"', 'username="alice" password="alice-secret"')})
    assert "secured-topic" in ok(cli(broker, "SASL_SSL", config, "topics", "list")).split()
    assert any("User:alice on listener SASL_SSL" in m for m in authenticated(caplog))


def test_scram_sha_512_over_sasl_plaintext_and_a_wrong_password(broker, caplog):
    caplog.set_level(logging.INFO, logger="kavka.security")
    ok(kavka(broker, "users", "add", "carol", "--mechanism", "SCRAM-SHA-512", "--iterations", "8192",
             "--password", "carol-secret"))
    config = properties(broker, "scram", **{"security.protocol": "SASL_PLAINTEXT",
                                            "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "carol",
                                            "sasl.password": "carol-secret"})
    assert "secured-topic" in ok(cli(broker, "SASL_PLAINTEXT", config, "topics", "list")).split()
    assert any("User:carol on listener SASL_PLAINTEXT" in m for m in authenticated(caplog))
    # produce and consume too (their partition requests go to the leader's connection)
    ok(kavka(broker, "produce", "secured-topic", "--bootstrap-server", broker.bootstrap("SASL_PLAINTEXT"),
             "--command-config", config, input="one\ntwo\n"))
    out = ok(cli(broker, "SASL_PLAINTEXT", config, "consume", "secured-topic", "--from-beginning", "--timeout", "1"))
    assert out.split() == ["one", "two"]

    wrong = properties(broker, "wrong", **{"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
                                           "sasl.username": "carol", "sasl.password": "nope"})
    line = failed(cli(broker, "SASL_PLAINTEXT", wrong, "topics", "list"))
    assert "SASL_AUTHENTICATION_FAILED" in line and "authentication with" in line, line
    line = failed(cli(broker, "SASL_PLAINTEXT", properties(broker, "wrong-plain", **{
        "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.username": "alice",
        "sasl.password": "nope"}), "topics", "list"))
    assert "SASL_AUTHENTICATION_FAILED" in line, line


def test_mtls_with_a_pem_keystore_and_with_certificate_files(broker, caplog):
    caplog.set_level(logging.INFO, logger="kavka.server")
    crt, key = broker.pki.client("ops", {"O": "Example", "CN": "ops"})
    keystore = broker.dir / "ops.pem"
    keystore.write_bytes(key.read_bytes() + crt.read_bytes())
    by_keystore = properties(broker, "mtls-keystore", **{
        "security.protocol": "SSL", "ssl.truststore.location": broker.pki.ca, "ssl.keystore.location": keystore})
    by_files = properties(broker, "mtls-files", **{
        "security.protocol": "SSL", "ssl.ca.location": broker.pki.ca, "ssl.certificate.location": crt,
        "ssl.key.location": key})
    for config in (by_keystore, by_files):
        assert "secured-topic" in ok(cli(broker, "SSL", config, "topics", "list")).split()
    principals = [r.getMessage() for r in caplog.records if "TLS client certificate" in r.getMessage()]
    assert len(principals) >= 2 and all(p.endswith("as User:CN=ops,O=Example") for p in principals), principals
    # required means required: without a certificate the broker ends the handshake
    no_cert = properties(broker, "no-cert", **{"security.protocol": "SSL", "ssl.ca.location": broker.pki.ca})
    assert "client certificate" in failed(cli(broker, "SSL", no_cert, "topics", "list"))


def test_bad_config_names_the_key(broker, tmp_path):
    cases = {
        "security.protocol": {"security.protocol": "SASL_TLS"},
        "sasl.mechanism": {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "GSSAPI"},
        "sasl.jaas.config": {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                             "sasl.jaas.config": "PlainLoginModule required username=\"a\" password=\"b\""},
        "ssl.truststore.location": {"security.protocol": "SSL", "ssl.truststore.location": tmp_path / "absent.pem"},
        "ssl.keystore.type": {"security.protocol": "SSL", "ssl.keystore.type": "JKS"},
        "sasl.oauthbearer.token.endpoint.url": {"security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER",
                                                "sasl.oauthbearer.token.endpoint.url": "https://idp.example/token"},
    }
    for key, props in cases.items():
        line = failed(cli(broker, "SSL", properties(broker, key, **props), "topics", "list"))
        assert key in line, (key, line)
    assert "absent.properties" in failed(cli(broker, "SSL", str(tmp_path / "absent.properties"), "topics", "list"))
    # a client that does not trust the broker's CA refuses it
    line = failed(cli(broker, "SSL", properties(broker, "untrusted", **{"security.protocol": "SSL"}),
                      "topics", "list"))
    assert "TLS handshake" in line and "CERTIFICATE_VERIFY_FAILED" in line, line


OAUTH_MODULE = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required"


def _unsecured_jwt(claims: dict) -> str:
    def part(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'none'})}.{part(claims)}."


def test_oauthbearer_unsecured_login_and_a_static_token(broker, caplog):
    caplog.set_level(logging.INFO, logger="kavka.security")
    tls = {"security.protocol": "SASL_SSL", "ssl.truststore.location": broker.pki.ca, "sasl.mechanism": "OAUTHBEARER"}
    unsecured = properties(broker, "oauth-unsecured", **tls, **{
        "sasl.jaas.config": f'{OAUTH_MODULE} unsecuredLoginStringClaim_sub="alice" '
                            'unsecuredLoginListClaim_scope=",kafka,admin";'})
    assert "secured-topic" in ok(cli(broker, "SASL_SSL", unsecured, "topics", "list")).split()
    assert any("User:alice on listener SASL_SSL" in m for m in authenticated(caplog))

    now = int(time.time())
    token = broker.dir / "token.jwt"
    token.write_text(_unsecured_jwt({"sub": "erin", "iat": now, "exp": now + 300}) + "\n")
    static = properties(broker, "oauth-static", **tls, **{
        "sasl.login.callback.handler.class": "org.apache.kafka.common.security.oauthbearer."
                                             "OAuthBearerLoginCallbackHandler",
        "sasl.oauthbearer.token.endpoint.url": token.as_uri(), "sasl.jaas.config": f"{OAUTH_MODULE} ;"})
    assert "secured-topic" in ok(cli(broker, "SASL_SSL", static, "topics", "list")).split()
    assert any("User:erin on listener SASL_SSL" in m for m in authenticated(caplog))

    token.write_text(_unsecured_jwt({"sub": "erin", "iat": now - 600, "exp": now - 300}))
    line = failed(cli(broker, "SASL_SSL", static, "topics", "list"))
    assert "SASL_AUTHENTICATION_FAILED" in line and "expired" in line, line
    no_sub = properties(broker, "oauth-no-sub", **tls, **{
        "sasl.jaas.config": f'{OAUTH_MODULE} unsecuredLoginStringClaim_name="alice";'})
    line = failed(cli(broker, "SASL_SSL", no_sub, "topics", "list"))
    assert "sasl.jaas.config" in line and "unsecuredLoginStringClaim_sub" in line, line


def _scram_conf(broker, user: str, password: str) -> dict:
    return {"bootstrap.servers": broker.bootstrap("SASL_SSL"), "security.protocol": "SASL_SSL",
            "ssl.ca.location": str(broker.pki.ca), "sasl.mechanism": "SCRAM-SHA-256",
            "sasl.username": user, "sasl.password": password}


def test_users_add_list_remove_with_confluent_kafka(broker):
    admin_config = properties(broker, "admin", **{
        "security.protocol": "SASL_SSL", "ssl.ca.location": broker.pki.ca, "sasl.mechanism": "PLAIN",
        "sasl.username": "alice", "sasl.password": "alice-secret"})
    out = ok(cli(broker, "SASL_SSL", admin_config, "users", "add", "dave", "--mechanism", "scram-sha-256",
                 "--mechanism", "SCRAM-SHA-512", "--password", "dave-secret"))
    assert "dave" in out
    assert ok(cli(broker, "SASL_SSL", admin_config, "users", "list")).split() == [
        "USER", "MECHANISM", "ITERATIONS", "dave", "SCRAM-SHA-256", "4096", "dave", "SCRAM-SHA-512", "4096"]
    topics = AdminClient(_scram_conf(broker, "dave", "dave-secret")).list_topics(timeout=10).topics
    assert "secured-topic" in topics
    with pytest.raises(KafkaException):
        AdminClient(_scram_conf(broker, "dave", "not-it")).list_topics(timeout=3)

    ok(cli(broker, "SASL_SSL", admin_config, "users", "remove", "dave", "--mechanism", "SCRAM-SHA-512"))
    assert ok(kavka(broker, "users", "list", "dave")).split()[3:] == ["dave", "SCRAM-SHA-256", "4096"]
    ok(kavka(broker, "users", "remove", "dave"))
    with pytest.raises(KafkaException):
        AdminClient(_scram_conf(broker, "dave", "dave-secret")).list_topics(timeout=3)
    assert "RESOURCE_NOT_FOUND" in failed(kavka(broker, "users", "list", "dave"))
    assert "RESOURCE_NOT_FOUND" in failed(kavka(broker, "users", "remove", "dave", "--mechanism", "SCRAM-SHA-256"))
    assert "--iterations" in failed(kavka(broker, "users", "add", "eve", "--iterations", "100", "--password", "x"))
    assert "--mechanism" in failed(kavka(broker, "users", "add", "eve", "--mechanism", "MD5", "--password", "x"))
