"""SCRAM credentials in a cluster of three brokers: made through one broker
(AlterUserScramCredentials from confluent-kafka, ``kavka users``, Kafka's ``kafka-configs``),
they are kept in etcd (salted, never the password) and every broker's watch brings them to its
SASL logins and DescribeUserScramCredentials; deleted through another broker, logins fail
everywhere; a restarted broker has them again from etcd.  While etcd does not answer, logins
go on with the last view and alterations fail with REQUEST_TIMED_OUT (retriable)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialDeletion,
                                   UserScramCredentialUpsertion)

from admin_targets import start_cluster, wait_until
from cluster_helpers import connect, run
from kavka.cluster.keys import KeyLayout

pytestmark = pytest.mark.timeout(120)

LISTENERS = "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0"   # the first: inter-broker and admin
SETTINGS = {"sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
            "connection.failed.authentication.delay.ms": "50"}
SHA256, SHA512 = ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512
NAMES = {SHA256: "SCRAM-SHA-256", SHA512: "SCRAM-SHA-512"}
WAIT = 10


@pytest.fixture(scope="module")
def cluster(etcd, tmp_path_factory):
    target = start_cluster(etcd.endpoint, tmp_path_factory.mktemp("scram"), extra=SETTINGS, listeners=LISTENERS)
    target.etcd = etcd
    try:
        yield target
    finally:
        target.stop()


def admin(broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap("PLAINTEXT")})


def login(broker, mechanism, user: str, password: str, timeout: float = 5.0) -> str | None:
    """None when confluent-kafka authenticated to ``broker``'s SASL listener (a Metadata answer
    came back); else librdkafka's authentication error."""
    errors: list[KafkaError] = []
    client = AdminClient({"bootstrap.servers": broker.bootstrap("SASL_PLAINTEXT"), "security.protocol": "SASL_PLAINTEXT",
                          "sasl.mechanism": NAMES[mechanism], "sasl.username": user, "sasl.password": password,
                          "error_cb": errors.append})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.list_topics(timeout=0.3)
            return None
        except KafkaException:
            client.poll(0)
        refused = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
        if refused:
            return refused[0].str()
    raise AssertionError(f"{user}: neither authenticated nor refused within {timeout}s ({errors})")


def eventually_logs_in(broker, mechanism, user: str, password: str) -> None:
    """The alteration was answered once the broker asked had it; another broker's watch may be a
    moment behind."""
    deadline = time.monotonic() + WAIT
    while (error := login(broker, mechanism, user, password)) is not None:
        assert time.monotonic() < deadline, f"{user} still refused by broker {broker.config.get('broker.id')}: {error}"
        time.sleep(0.05)


def described(broker, users=None) -> dict[str, set[tuple[ScramMechanism, int]]]:
    client = admin(broker)   # kept until the futures are done: a collected client cancels them
    futures = client.describe_user_scram_credentials(users)
    if users is None:
        answer = futures.result(10)
    else:
        answer = {u: f.result(10) for u, f in futures.items()}
    return {u: {(i.mechanism, i.iterations) for i in d.scram_credential_infos} for u, d in answer.items()}


def alter(broker, changes) -> dict[str, KafkaException | None]:
    out, client = {}, admin(broker)
    for user, future in client.alter_user_scram_credentials(changes).items():
        try:
            future.result(15)
            out[user] = None
        except KafkaException as exc:
            out[user] = exc
    return out


def stored_in_etcd(cluster) -> dict[bytes, bytes]:
    async def read():
        etcd = await connect(cluster.etcd)
        try:
            layout = KeyLayout(cluster.brokers[1].node.settings.cluster_id)
            result = await etcd.get_prefix(layout.scram_credentials_prefix())
            return {kv.key: kv.value for kv in result.kvs}
        finally:
            await etcd.close()
    return run(read(), 10)


def test_credentials_made_on_one_broker_log_in_on_every_broker(cluster):
    b1, b2, b3 = (cluster.brokers[i] for i in (1, 2, 3))
    alice, bob, carol = ("alice-" + uuid.uuid4().hex[:4], "bob-" + uuid.uuid4().hex[:4],
                         "carol-" + uuid.uuid4().hex[:4])
    assert alter(b1, [UserScramCredentialUpsertion(alice, ScramCredentialInfo(SHA256, 8192), b"alice-secret"),
                      UserScramCredentialUpsertion(bob, ScramCredentialInfo(SHA512, 4096), b"bob-secret")]) == {
        alice: None, bob: None}
    cli = subprocess.run([sys.executable, "-m", "kavka", "users", "add", carol, "--mechanism", "SCRAM-SHA-512",
                          "--password", "carol-secret", "--bootstrap-server", b1.bootstrap("PLAINTEXT")],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    for broker in (b2, b3):
        eventually_logs_in(broker, SHA256, alice, "alice-secret")
        eventually_logs_in(broker, SHA512, bob, "bob-secret")
        eventually_logs_in(broker, SHA512, carol, "carol-secret")
        assert "Invalid user credentials" in login(broker, SHA256, alice, "wrong")
        assert "Invalid user credentials" in login(broker, SHA256, bob, "bob-secret")   # bob has SHA-512 only
        assert described(broker, [alice, bob, carol]) == {
            alice: {(SHA256, 8192)}, bob: {(SHA512, 4096)}, carol: {(SHA512, 4096)}}
    values = stored_in_etcd(cluster)
    mine = {k: v for k, v in values.items() if any(u.encode().hex().encode() in k for u in (alice, bob, carol))}
    assert len(mine) == 3 and not any(b"secret" in v for v in mine.values())   # salted keys only

    assert alter(b3, [UserScramCredentialDeletion(alice, SHA256)]) == {alice: None}
    deadline = time.monotonic() + WAIT
    while login(b1, SHA256, alice, "alice-secret") is None:
        assert time.monotonic() < deadline, "broker 1 still lets the deleted user in"
    assert login(b1, SHA512, bob, "bob-secret") is None
    client = admin(b2)
    with pytest.raises(KafkaException) as caught:
        client.describe_user_scram_credentials([alice])[alice].result(10)
    assert caught.value.args[0].code() == KafkaError.RESOURCE_NOT_FOUND

    cluster.brokers[2].stop()   # a restarted broker reads them from etcd again
    b2 = cluster.restart(2)
    wait_until(lambda: len(b2.node.view.brokers) == 3, WAIT, "broker 2 back")
    assert login(b2, SHA512, bob, "bob-secret") is None
    assert login(b2, SHA512, carol, "carol-secret") is None
    assert "Invalid user credentials" in login(b2, SHA256, alice, "alice-secret")
    assert {alice, bob, carol} & described(b2).keys() == {bob, carol}


def test_kafka_configs_alters_users_on_a_cluster_broker(cluster):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "clients"))
    import builds
    from test_kafka_tools import tool

    if builds.missing_toolchain("java") is not None:
        pytest.skip(f"kafka-configs needs the Java test client: {builds.missing_toolchain('java')}")
    java = builds.built("java")
    dave = "dave-" + uuid.uuid4().hex[:4]

    def configs(broker, *args):
        return tool(java, "kafka.admin.ConfigCommand", "--bootstrap-server", broker.bootstrap("PLAINTEXT"),
                    "--entity-type", "users", "--entity-name", dave, *args)

    out = configs(cluster.brokers[2], "--alter", "--add-config", "SCRAM-SHA-256=[iterations=8192,password=dave-pw]")
    assert f"Completed updating config for user {dave}." in out
    eventually_logs_in(cluster.brokers[3], SHA256, dave, "dave-pw")
    eventually_logs_in(cluster.brokers[1], SHA256, dave, "dave-pw")
    assert f"SCRAM credential configs for user-principal '{dave}' are SCRAM-SHA-256=iterations=8192" in configs(
        cluster.brokers[1], "--describe")


def test_while_etcd_does_not_answer_logins_use_the_last_view_and_alterations_time_out(private_etcd, tmp_path):
    target = start_cluster(private_etcd.endpoint, tmp_path, count=1, extra=SETTINGS, listeners=LISTENERS)
    try:
        broker = target.brokers[1]
        assert alter(broker, [UserScramCredentialUpsertion("erin", ScramCredentialInfo(SHA256, 4096),
                                                           b"erin-secret")]) == {"erin": None}
        private_etcd.pause()
        try:
            assert login(broker, SHA256, "erin", "erin-secret") is None
            assert described(broker, ["erin"]) == {"erin": {(SHA256, 4096)}}
            started = time.monotonic()
            refused = alter(broker, [UserScramCredentialUpsertion("frank", ScramCredentialInfo(SHA256, 4096),
                                                                  b"frank-secret")])
            # REQUEST_TIMED_OUT: retriable in Kafka's protocol (librdkafka does not flag a per-user error so)
            assert refused["frank"].args[0].code() == KafkaError.REQUEST_TIMED_OUT, refused
            assert "etcd did not answer" in refused["frank"].args[0].str()
            assert time.monotonic() - started < 12
            assert login(broker, SHA256, "erin", "erin-secret") is None
        finally:
            private_etcd.resume()
        assert alter(broker, [UserScramCredentialUpsertion("frank", ScramCredentialInfo(SHA256, 4096),
                                                           b"frank-secret")]) == {"frank": None}
        assert login(broker, SHA256, "frank", "frank-secret") is None
    finally:
        target.stop()
