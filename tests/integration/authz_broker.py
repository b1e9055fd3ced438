"""A broker secured as a Kafka deployment is: the StandardAuthorizer, ``super.users=User:admin``,
SASL_PLAINTEXT and SASL_SSL listeners (no PLAINTEXT one), SCRAM-SHA-512 users made over SASL by
the admin, and ACLs for two users:

* ``alice`` may WRITE and READ the topic ``orders``, READ the group ``billing`` and DESCRIBE
  every topic whose name starts with ``orders`` (PREFIXED);
* ``bob`` has one binding, a DENY of ALL on ``orders``: nothing is allowed to him.

The admin authenticates with PLAIN (its password in the listeners' JAAS config), which is how
the first SCRAM credentials get made; everyone else uses SCRAM-SHA-512.  The topics are
``orders``, ``orders-archive`` (describable by alice through the prefix) and ``payments``
(not).  Shared by the integration tests of every Python client and by the Java ones
(tests/clients).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)
from tls_certs import make_pki

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
LISTENERS = "SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0"
TOPICS = ("orders", "orders-archive", "payments")
PASSWORDS = {"admin": "admin-secret", "alice": "alice-secret", "bob": "bob-secret"}
ADMIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'user_admin="admin-secret";')
TIMEOUT = 15


def alice_bindings() -> list[AclBinding]:
    def allow(kind, name, op, pattern=ResourcePatternType.LITERAL):
        return AclBinding(kind, name, pattern, "User:alice", "*", op, AclPermissionType.ALLOW)
    return [allow(ResourceType.TOPIC, "orders", AclOperation.WRITE),
            allow(ResourceType.TOPIC, "orders", AclOperation.READ),
            allow(ResourceType.GROUP, "billing", AclOperation.READ),
            allow(ResourceType.TOPIC, "orders", AclOperation.DESCRIBE, ResourcePatternType.PREFIXED)]


def bob_bindings() -> list[AclBinding]:
    return [AclBinding(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL, "User:bob", "*",
                       AclOperation.ALL, AclPermissionType.DENY)]


def tree_digest(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with a hash of its bytes: "nothing changed on disk" compares two."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@dataclass
class Secured:
    broker: object
    ca: Path

    def bootstrap(self, listener: str = "SASL_PLAINTEXT") -> str:
        return self.broker.bootstrap(listener)

    def conf(self, user: str, listener: str = "SASL_PLAINTEXT") -> dict:
        """confluent-kafka (librdkafka) settings for ``user``."""
        conf = {"bootstrap.servers": self.bootstrap(listener), "security.protocol": listener,
                "sasl.mechanism": "PLAIN" if user == "admin" else "SCRAM-SHA-512",
                "sasl.username": user, "sasl.password": PASSWORDS[user]}
        if listener == "SASL_SSL":
            conf["ssl.ca.location"] = str(self.ca)
        return conf

    def kwargs(self, user: str, listener: str = "SASL_PLAINTEXT") -> dict:
        """kafka-python / aiokafka keyword arguments for ``user`` (SCRAM-SHA-512)."""
        kw = dict(bootstrap_servers=self.bootstrap(listener), security_protocol=listener,
                  sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=user, sasl_plain_password=PASSWORDS[user])
        return kw

    def java_settings(self, user: str, listener: str = "SASL_PLAINTEXT") -> list[str]:
        """The Java client's (and Kafka's tools') properties for ``user``, as ``name=value``."""
        settings = [f"security.protocol={listener}", "sasl.mechanism=SCRAM-SHA-512",
                    "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                    f'username="{user}" password="{PASSWORDS[user]}";']
        if listener == "SASL_SSL":
            settings += ["ssl.truststore.type=PEM", f"ssl.truststore.location={self.ca}"]
        return settings

    def admin(self) -> AdminClient:
        return AdminClient(self.conf("admin"))

    def grant(self, bindings: list[AclBinding]) -> None:
        admin = self.admin()    # held until its futures are done
        for future in admin.create_acls(bindings).values():
            future.result(TIMEOUT)

    def digest(self) -> dict[str, str]:
        return tree_digest(self.broker.data_dir)


def secured_broker(factory, tmp_path: Path, acls: bool = True) -> Secured:
    """The broker of this module's docstring; ``acls=False`` leaves out alice's and bob's bindings
    (for tests that make them with another tool)."""
    pki = make_pki(tmp_path / "pki")
    jaas = {f"listener.name.{name}.plain.sasl.jaas.config": ADMIN_JAAS for name in ("sasl_plaintext", "sasl_ssl")}
    broker = factory({"authorizer.class.name": AUTHORIZER, "super.users": "User:admin",
                      "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512", "ssl.keystore.location": str(pki.server),
                      "num.partitions": 1, "group.initial.rebalance.delay.ms": 0, **jaas}, listeners=LISTENERS)
    secured = Secured(broker, pki.ca)
    admin = secured.admin()
    upserts = [UserScramCredentialUpsertion(user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096),
                                            password.encode()) for user, password in PASSWORDS.items()]
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result(TIMEOUT)
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in TOPICS]).values():
        future.result(TIMEOUT)
    if acls:
        secured.grant(alice_bindings() + bob_bindings())
    return secured
