"""Authorization as real clients meet it with real SASL principals (authz_broker.py's broker:
StandardAuthorizer, SCRAM-SHA-512 users alice and bob, super user admin): confluent-kafka,
kafka-python and aiokafka.  alice produces and consumes in group ``billing``; bob's produce is
refused with TOPIC_AUTHORIZATION_FAILED, his consume in ``billing`` with
GROUP_AUTHORIZATION_FAILED, his metadata lists no topic; alice may not create topics; her
transactional producer needs an ACL on its transactional id.  Every refusal leaves the data
directory as it was (issue 13: "nothing changes on disk when refused")."""

from __future__ import annotations

import asyncio
import time

import pytest
from authz_broker import TIMEOUT, secured_broker
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

pytestmark = pytest.mark.timeout(120)

VALUES = [f"order-{i}".encode() for i in range(5)]


@pytest.fixture
def secured(kavka_broker_factory, tmp_path):
    return secured_broker(kavka_broker_factory, tmp_path)


def user_topics(topics) -> list[str]:
    return sorted(t for t in topics if not t.startswith("__"))


# -- confluent-kafka -----------------------------------------------------------------------

def ck_produce(conf: dict, topic: str, values=VALUES) -> list:
    """The delivery report's error of each value (None: stored)."""
    errors = []
    producer = Producer({**conf, "message.timeout.ms": 8000})
    for value in values:
        producer.produce(topic, value, on_delivery=lambda err, msg: errors.append(err))
    producer.flush(TIMEOUT)
    return errors


def ck_consume(conf: dict, topic: str, group: str, want: int, seconds: float = 10) -> tuple[list[bytes], set[int]]:
    """(values read in ``group``, the error codes the consumer reported), ending at ``want``
    values or the first error."""
    consumer = Consumer({**conf, "group.id": group, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got, errors = [], set()
    deadline = time.monotonic() + seconds
    try:
        while len(got) < want and not errors and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                errors.add(msg.error().code())
            else:
                got.append(msg.value())
        if got:
            consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return got, errors


@pytest.mark.parametrize("listener", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_confluent_kafka_alice_is_served_bob_refused(secured, listener):
    alice, bob = secured.conf("alice", listener), secured.conf("bob", listener)
    empty = secured.digest()
    assert ck_produce(alice, "orders") == [None] * len(VALUES)
    assert ck_consume(alice, "orders", "billing", len(VALUES)) == (VALUES, set())
    before = secured.digest()
    assert before != empty      # what alice was allowed is on disk: the digest sees writes
    errors = ck_produce(bob, "orders")
    assert errors and all(e is not None and e.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED for e in errors), errors
    got, errors = ck_consume(bob, "orders", "billing", 1)
    assert not got and KafkaError.GROUP_AUTHORIZATION_FAILED in errors, errors
    assert user_topics(secured.admin().list_topics(timeout=TIMEOUT).topics) == ["orders", "orders-archive", "payments"]
    from confluent_kafka.admin import AdminClient
    assert user_topics(AdminClient(bob).list_topics(timeout=TIMEOUT).topics) == []
    assert user_topics(AdminClient(alice).list_topics(timeout=TIMEOUT).topics) == ["orders", "orders-archive"]
    assert secured.digest() == before


def test_confluent_kafka_alice_cannot_create_topics(secured):
    from confluent_kafka.admin import AdminClient
    before = secured.digest()
    admin = AdminClient(secured.conf("alice"))
    futures = admin.create_topics([NewTopic("orders-new", 1, 1), NewTopic("other", 1, 1)])
    for name, future in futures.items():
        with pytest.raises(KafkaException) as refused:
            future.result(TIMEOUT)
        assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, (name, refused.value)
    assert secured.digest() == before
    assert "orders-new" not in secured.admin().list_topics(timeout=TIMEOUT).topics


def txn_id_binding(transactional_id: str) -> AclBinding:
    return AclBinding(ResourceType.TRANSACTIONAL_ID, transactional_id, ResourcePatternType.LITERAL, "User:alice", "*",
                      AclOperation.WRITE, AclPermissionType.ALLOW)


def test_confluent_kafka_transactions_need_the_transactional_id_acl(secured):
    conf = {**secured.conf("alice"), "transactional.id": "billing-tx", "transaction.timeout.ms": 10000}
    before = secured.digest()
    producer = Producer(conf)
    with pytest.raises(KafkaException) as refused:
        producer.init_transactions(TIMEOUT)
    assert refused.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, refused.value
    del producer
    assert secured.digest() == before
    secured.grant([txn_id_binding("billing-tx")])
    producer = Producer(conf)
    producer.init_transactions(TIMEOUT)
    producer.begin_transaction()
    for value in VALUES:
        producer.produce("orders", value)
    producer.commit_transaction(TIMEOUT)
    got, errors = ck_consume({**secured.conf("alice"), "isolation.level": "read_committed"}, "orders", "billing",
                             len(VALUES))
    assert (got, errors) == (VALUES, set())


# -- kafka-python --------------------------------------------------------------------------

def test_kafka_python_alice_is_served_bob_refused(secured):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic as KpNewTopic
    from kafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError
    alice, bob = secured.kwargs("alice", "SASL_SSL"), secured.kwargs("bob", "SASL_SSL")
    for kw in (alice, bob):
        kw["ssl_cafile"] = str(secured.ca)
    producer = KafkaProducer(**alice)
    for value in VALUES:
        producer.send("orders", value).get(TIMEOUT)
    producer.close()
    consumer = KafkaConsumer("orders", group_id="billing", auto_offset_reset="earliest", **alice)
    got, deadline = [], time.monotonic() + TIMEOUT
    while len(got) < len(VALUES) and time.monotonic() < deadline:
        got += [m.value for records in consumer.poll(500).values() for m in records]
    consumer.commit()
    consumer.close()
    assert got == VALUES

    before = secured.digest()
    producer = KafkaProducer(max_block_ms=5000, **bob)
    with pytest.raises(TopicAuthorizationFailedError):
        producer.send("orders", b"bob").get(TIMEOUT)
    producer.close(timeout=5)
    consumer = KafkaConsumer("orders", group_id="billing", auto_offset_reset="earliest", **bob)
    with pytest.raises(GroupAuthorizationFailedError):
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            assert not consumer.poll(500)
    consumer.close()
    consumer = KafkaConsumer(**bob)
    assert user_topics(consumer.topics()) == []
    consumer.close()
    admin = KafkaAdminClient(**alice)
    response = admin.create_topics([KpNewTopic("orders-kp", 1, 1)], raise_errors=False)
    assert [(t["name"], t["error_code"]) for t in response["topics"]] == [
        ("orders-kp", KafkaError.TOPIC_AUTHORIZATION_FAILED)], response
    admin.close()
    assert secured.digest() == before


def test_kafka_python_transactions_need_the_transactional_id_acl(secured):
    from kafka import KafkaProducer
    from kafka.errors import TransactionalIdAuthorizationFailedError
    kw = {**secured.kwargs("alice"), "transactional_id": "billing-kp", "max_block_ms": 10000}
    before = secured.digest()
    producer = KafkaProducer(**kw)
    with pytest.raises(TransactionalIdAuthorizationFailedError):
        producer.init_transactions()
    producer.close(timeout=5)
    assert secured.digest() == before
    secured.grant([txn_id_binding("billing-kp")])
    producer = KafkaProducer(**kw)
    producer.init_transactions()
    producer.begin_transaction()
    futures = [producer.send("orders", value) for value in VALUES]
    producer.commit_transaction()
    assert [f.get(TIMEOUT).offset for f in futures] == list(range(len(VALUES)))
    producer.close()


# -- aiokafka ------------------------------------------------------------------------------

async def aio_scenario(secured) -> None:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError
    alice, bob = secured.kwargs("alice"), secured.kwargs("bob")
    producer = AIOKafkaProducer(**alice)
    await producer.start()
    try:
        for value in VALUES:
            await producer.send_and_wait("orders", value)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer("orders", group_id="billing", auto_offset_reset="earliest", **alice)
    await consumer.start()
    try:
        got = []
        while len(got) < len(VALUES):
            got.append((await asyncio.wait_for(consumer.getone(), TIMEOUT)).value)
        assert got == VALUES
        await consumer.commit()
    finally:
        await consumer.stop()

    before = secured.digest()
    producer = AIOKafkaProducer(request_timeout_ms=5000, **bob)
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait("orders", b"bob")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(group_id="billing", auto_offset_reset="earliest", **bob)
    await consumer.start()
    try:
        consumer.subscribe(["orders"])
        with pytest.raises(GroupAuthorizationFailedError):
            await asyncio.wait_for(consumer.getone(), TIMEOUT)
        assert user_topics(await consumer.topics()) == []
    finally:
        await consumer.stop()
    assert secured.digest() == before


def test_aiokafka_alice_is_served_bob_refused(secured):
    asyncio.run(aio_scenario(secured))
