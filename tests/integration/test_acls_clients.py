"""ACLs as real clients meet them: confluent-kafka (librdkafka) against a broker with the
StandardAuthorizer, as User:ANONYMOUS (every PLAINTEXT connection's principal).  The ACLs
are made while User:ANONYMOUS is a super user, and kept in the data directory: the broker
is then restarted on the same directory without super users, so what the clients are
allowed afterwards is what the stored bindings say."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, AdminClient, NewTopic
from confluent_kafka.admin import ResourcePatternType, ResourceType

pytestmark = pytest.mark.timeout(120)

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
TIMEOUT = 15
ANON = "User:ANONYMOUS"


def binding(kind, name, op, pattern=ResourcePatternType.LITERAL, permission=AclPermissionType.ALLOW):
    return AclBinding(kind, name, pattern, ANON, "*", op, permission)


def produce_error(bootstrap: str, topic: str):
    outcome = []
    producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 8_000})
    producer.produce(topic, b"v", on_delivery=lambda err, msg: outcome.append(err))
    producer.flush(TIMEOUT)
    return outcome[0] if outcome else "no answer"


def consume_one(bootstrap: str, topic: str, group: str):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        message = consumer.poll(TIMEOUT)
        if message is None:
            return "nothing"
        if message.error():
            return message.error()
        error = commit(consumer, message)
        return error if error is not None else message.value()
    except KafkaException as exc:
        return exc.args[0]
    finally:
        consumer.close()


def commit(consumer, message, attempts: int = 5):
    """A synchronous commit's error, or None.  librdkafka answers _WAIT_COORD while its
    FindCoordinator is still unanswered (a refused group's answer can come after the commit's
    own timeout, and librdkafka may report it as a consumer error): the commit is tried again,
    a bounded number of times, with a poll between tries."""
    error = None
    for _ in range(attempts):
        try:
            consumer.commit(message, asynchronous=False)
            return None
        except KafkaException as exc:
            error = exc.args[0]
            if error.code() != KafkaError._WAIT_COORD:
                return error
        event = consumer.poll(1)   # the coordinator's refusal may come as a consumer error instead
        if event is not None and event.error() is not None:
            return event.error()
    return error


@pytest.fixture
def restarted(kavka_broker_factory, tmp_path):
    """A broker whose ACLs were made by a super user, restarted without one."""
    data = tmp_path / "acl-broker"
    first = kavka_broker_factory({"authorizer.class.name": AUTHORIZER, "super.users": ANON}, data_dir=data)
    admin = AdminClient({"bootstrap.servers": first.bootstrap_servers})
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in ("open-a", "open-b", "closed")]).values():
        future.result(TIMEOUT)
    bindings = [binding(ResourceType.TOPIC, "open-", AclOperation.ALL, ResourcePatternType.PREFIXED),
                binding(ResourceType.TOPIC, "open-b", AclOperation.READ, permission=AclPermissionType.DENY),
                binding(ResourceType.GROUP, "readers", AclOperation.READ),
                binding(ResourceType.BROKER, "kafka-cluster", AclOperation.IDEMPOTENT_WRITE)]
    for future in admin.create_acls(bindings).values():
        future.result(TIMEOUT)
    first.stop()
    return kavka_broker_factory({"authorizer.class.name": AUTHORIZER}, data_dir=data)


def test_stored_acls_decide_after_a_restart(restarted):
    bootstrap = restarted.bootstrap_servers
    assert produce_error(bootstrap, "open-a") is None
    assert produce_error(bootstrap, "open-b") is None
    error = produce_error(bootstrap, "closed")
    assert isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error
    assert consume_one(bootstrap, "open-a", "readers") == b"v"
    denied = consume_one(bootstrap, "open-b", "readers")
    assert isinstance(denied, KafkaError) and denied.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, denied
    refused_group = consume_one(bootstrap, "open-a", "others")
    assert isinstance(refused_group, KafkaError) and \
        refused_group.code() == KafkaError.GROUP_AUTHORIZATION_FAILED, refused_group


def test_metadata_shows_only_described_topics(restarted):
    topics = AdminClient({"bootstrap.servers": restarted.bootstrap_servers}).list_topics(timeout=TIMEOUT).topics
    assert sorted(name for name in topics if not name.startswith("__")) == ["open-a", "open-b"]


def test_acl_changes_need_alter_on_the_cluster(restarted):
    admin = AdminClient({"bootstrap.servers": restarted.bootstrap_servers})
    (future,) = admin.create_acls([binding(ResourceType.TOPIC, "closed", AclOperation.WRITE)]).values()
    with pytest.raises(KafkaException) as refused:
        future.result(TIMEOUT)
    assert refused.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    error = produce_error(restarted.bootstrap_servers, "closed")
    assert isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_allow_everyone_if_no_acl_found(kavka_broker_factory):
    b = kavka_broker_factory({"authorizer.class.name": AUTHORIZER, "allow.everyone.if.no.acl.found": "true"})
    admin = AdminClient({"bootstrap.servers": b.bootstrap_servers})
    for future in admin.create_topics([NewTopic("free", 1, 1), NewTopic("held", 1, 1)]).values():
        future.result(TIMEOUT)
    (future,) = admin.create_acls([AclBinding(ResourceType.TOPIC, "held", ResourcePatternType.LITERAL,
                                              "User:bob", "*", AclOperation.WRITE, AclPermissionType.ALLOW)]).values()
    future.result(TIMEOUT)
    assert produce_error(b.bootstrap_servers, "free") is None
    error = produce_error(b.bootstrap_servers, "held")
    assert isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error
