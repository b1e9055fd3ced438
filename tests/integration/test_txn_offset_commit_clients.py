"""send_offsets_to_transaction (TxnOffsetCommit) end to end on a lone broker.

Each client runs a consume-transform-produce loop over a few hundred input records: every
batch of input becomes output records and the input's offsets in one transaction; one
transaction in the middle is aborted and its batch read again from the committed offsets.
A read_committed consumer of the output then sees every input exactly once, and the group's
committed offsets equal the input's end offsets.  librdkafka (confluent-kafka) and
kafka-python consume as members of a subscribed group (TxnOffsetCommit v3+ names the member
and generation), aiokafka with assign() and the bare group id.  A restart of the broker
between TxnOffsetCommit and EndTxn keeps the offsets pending, and the EndTxn sent after it
commits or drops them; a commit prepared before a restart (no marker written yet) shows once
the restarted transaction coordinator has sent its markers again.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from test_confluent import create_topic, produce

IN, OUT = "ctp-in", "ctp-out"
PARTITIONS = 3
RECORDS = 300
TIMEOUT_S = 30
ABORT_AT = 2     # the batch (counted from 0) whose transaction is aborted and redone
SETTINGS = {"num.partitions": PARTITIONS, "group.initial.rebalance.delay.ms": 0}


@pytest.fixture
def ctp_broker(kavka_broker_factory):
    broker = kavka_broker_factory(SETTINGS)
    seed(broker.bootstrap_servers, RECORDS)
    return broker


def seed(bootstrap: str, count: int) -> None:
    create_topic(bootstrap, IN, partitions=PARTITIONS)
    create_topic(bootstrap, OUT, partitions=PARTITIONS)
    acked = produce(bootstrap, IN, [(n % PARTITIONS, None, b"i-%d" % n, None, 0) for n in range(count)])
    assert len(acked) == count


def transformed(value: bytes) -> bytes:
    return b"o" + value[1:]


def read_committed_output(bootstrap: str, expected: int) -> list[bytes]:
    """Every committed record of OUT, read until ``expected`` arrived and 1 s more."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "verify", "enable.auto.commit": False,
                         "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(OUT, p, 0) for p in range(PARTITIONS)])
    values: list[bytes] = []
    deadline, settle = time.monotonic() + TIMEOUT_S, None
    try:
        while time.monotonic() < (settle or deadline):
            for msg in consumer.consume(num_messages=500, timeout=0.2):
                if msg.error():
                    raise AssertionError(msg.error())
                values.append(msg.value())
            if settle is None and len(values) >= expected:
                settle = time.monotonic() + 1.0
        return values
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str) -> dict[int, int]:
    """The group's committed offsets of IN as OffsetFetch answers librdkafka (require_stable)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        found = consumer.committed([TopicPartition(IN, p) for p in range(PARTITIONS)], timeout=TIMEOUT_S)
        return {tp.partition: tp.offset for tp in found}
    finally:
        consumer.close()


def input_end_offsets(broker) -> dict[int, int]:
    return {p: broker.call(lambda p=p: broker.logs.partition(IN, p).log.log_end_offset) for p in range(PARTITIONS)}


def assert_exactly_once(broker, group: str) -> None:
    outputs = read_committed_output(broker.bootstrap_servers, RECORDS)
    assert sorted(outputs) == sorted(b"o-%d" % n for n in range(RECORDS)), "each input once, none twice"
    assert committed_offsets(broker.bootstrap_servers, group) == input_end_offsets(broker)


def pending(broker, group: str) -> bool:
    return broker.call(lambda: broker.groups.coordinator.offsets.has_pending(group))


# -- confluent-kafka ---------------------------------------------------------------------------

def confluent_pair(bootstrap: str, group: str, transactional_id: str, subscribe: bool = True):
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "linger.ms": 5})
    producer.init_transactions(TIMEOUT_S)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    if subscribe:
        consumer.subscribe([IN])
    else:
        consumer.assign([TopicPartition(IN, p, 0) for p in range(PARTITIONS)])
    return producer, consumer


def confluent_batch(consumer: Consumer, wanted: int = 40) -> list:
    return [m for m in consumer.consume(num_messages=wanted, timeout=1.0) if not m.error()]


def confluent_transaction(producer: Producer, consumer: Consumer, messages: list, commit: bool) -> None:
    producer.begin_transaction()
    for msg in messages:
        producer.produce(OUT, value=transformed(msg.value()), partition=msg.partition())
    positions = consumer.position(consumer.assignment())
    producer.send_offsets_to_transaction(positions, consumer.consumer_group_metadata(), TIMEOUT_S)
    if commit:
        producer.commit_transaction(TIMEOUT_S)
    else:
        producer.abort_transaction(TIMEOUT_S)


def confluent_rewind(consumer: Consumer) -> None:
    """Back to the committed offsets (the start where nothing is committed yet)."""
    for tp in consumer.committed(consumer.assignment(), timeout=TIMEOUT_S):
        consumer.seek(TopicPartition(IN, tp.partition, tp.offset if tp.offset >= 0 else 0))


def test_confluent_commit_shows_the_offsets_and_abort_does_not(ctp_broker):
    bootstrap = ctp_broker.bootstrap_servers
    producer, consumer = confluent_pair(bootstrap, "cf-simple", "cf-simple-tx", subscribe=False)
    try:
        first = _consume_until(consumer, 30)
        confluent_transaction(producer, consumer, first, commit=True)
        after_commit = committed_offsets(bootstrap, "cf-simple")
        second = _consume_until(consumer, 30)
        confluent_transaction(producer, consumer, second, commit=False)
        after_abort = committed_offsets(bootstrap, "cf-simple")
    finally:
        consumer.close()
    expected = {p: max(m.offset() for m in first if m.partition() == p) + 1 for p in {m.partition() for m in first}}
    assert after_commit == {p: expected.get(p, -1001) for p in range(PARTITIONS)}
    assert after_abort == after_commit, "an aborted transaction commits no offsets"
    assert not pending(ctp_broker, "cf-simple")
    assert sorted(read_committed_output(bootstrap, len(first))) == sorted(transformed(m.value()) for m in first)


def _consume_until(consumer: Consumer, count: int) -> list:
    messages: list = []
    deadline = time.monotonic() + TIMEOUT_S
    while len(messages) < count and time.monotonic() < deadline:
        messages += confluent_batch(consumer, count - len(messages))
    assert len(messages) == count
    return messages


def test_confluent_consume_transform_produce_is_exactly_once(ctp_broker):
    bootstrap = ctp_broker.bootstrap_servers
    producer, consumer = confluent_pair(bootstrap, "cf-ctp", "cf-ctp-tx")
    done, batches, deadline = 0, 0, time.monotonic() + 2 * TIMEOUT_S
    try:
        while done < RECORDS and time.monotonic() < deadline:
            messages = confluent_batch(consumer)
            if not messages:
                continue
            commit = batches != ABORT_AT
            confluent_transaction(producer, consumer, messages, commit)
            batches += 1
            if commit:
                done += len(messages)
            else:
                confluent_rewind(consumer)
    finally:
        consumer.close()
    assert done == RECORDS and batches > ABORT_AT
    assert_exactly_once(ctp_broker, "cf-ctp")


@pytest.mark.parametrize("commit", [True, False], ids=["commit", "abort"])
def test_a_restart_between_txn_offset_commit_and_end_txn_keeps_them_pending(kavka_broker_factory, tmp_path,
                                                                              commit):
    data_dir = tmp_path / "data"
    broker = kavka_broker_factory(SETTINGS, data_dir=data_dir)
    seed(broker.bootstrap_servers, 30)
    producer, consumer = confluent_pair(broker.bootstrap_servers, "cf-restart", "cf-restart-tx", subscribe=False)
    messages = _consume_until(consumer, 30)
    consumer.close()
    producer.begin_transaction()
    for msg in messages:
        producer.produce(OUT, value=transformed(msg.value()), partition=msg.partition())
    offsets = [TopicPartition(IN, p, 10) for p in range(PARTITIONS)]
    metadata = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "cf-restart"})
    producer.send_offsets_to_transaction(offsets, metadata.consumer_group_metadata(), TIMEOUT_S)
    metadata.close()
    assert pending(broker, "cf-restart")
    port = broker.port
    broker.stop()

    broker = kavka_broker_factory(SETTINGS, data_dir=data_dir, port=port)
    assert pending(broker, "cf-restart"), "replayed from __consumer_offsets: still pending"
    if commit:
        producer.commit_transaction(TIMEOUT_S)
    else:
        producer.abort_transaction(TIMEOUT_S)
    wanted = {p: 10 if commit else -1001 for p in range(PARTITIONS)}
    assert committed_offsets(broker.bootstrap_servers, "cf-restart") == wanted
    assert not pending(broker, "cf-restart")
    outputs = read_committed_output(broker.bootstrap_servers, 30 if commit else 0)
    assert len(outputs) == (30 if commit else 0)


# -- kafka-python ------------------------------------------------------------------------------

def test_kafka_python_consume_transform_produce_is_exactly_once(ctp_broker):
    kafka = pytest.importorskip("kafka")
    bootstrap = ctp_broker.bootstrap_servers
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, transactional_id="kp-ctp-tx", linger_ms=5)
    consumer = kafka.KafkaConsumer(IN, bootstrap_servers=bootstrap, group_id="kp-ctp", enable_auto_commit=False,
                                   auto_offset_reset="earliest", isolation_level="read_committed")
    producer.init_transactions()
    done, batches, deadline = 0, 0, time.monotonic() + 2 * TIMEOUT_S
    try:
        while done < RECORDS and time.monotonic() < deadline:
            messages = [m for batch in consumer.poll(timeout_ms=500, max_records=40).values() for m in batch]
            if not messages:
                continue
            commit = batches != ABORT_AT
            producer.begin_transaction()
            for msg in messages:
                producer.send(OUT, value=transformed(msg.value), partition=msg.partition)
            offsets = {tp: kafka.OffsetAndMetadata(consumer.position(tp), "", -1) for tp in consumer.assignment()}
            producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
            batches += 1
            if commit:
                producer.commit_transaction()
                done += len(messages)
                continue
            producer.abort_transaction()
            for tp in consumer.assignment():
                consumer.seek(tp, consumer.committed(tp) or 0)
    finally:
        consumer.close()
        producer.close()
    assert done == RECORDS and batches > ABORT_AT
    assert_exactly_once(ctp_broker, "kp-ctp")


# -- aiokafka ----------------------------------------------------------------------------------

def test_aiokafka_consume_transform_produce_is_exactly_once(ctp_broker):
    aiokafka = pytest.importorskip("aiokafka")
    bootstrap = ctp_broker.bootstrap_servers
    partitions = [aiokafka.TopicPartition(IN, p) for p in range(PARTITIONS)]

    async def run() -> tuple[int, int]:
        producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="ak-ctp-tx")
        consumer = aiokafka.AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="ak-ctp",
                                             enable_auto_commit=False, isolation_level="read_committed")
        await producer.start()
        await consumer.start()
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        done, batches, deadline = 0, 0, time.monotonic() + 2 * TIMEOUT_S
        try:
            while done < RECORDS and time.monotonic() < deadline:
                found = await consumer.getmany(timeout_ms=500, max_records=40)
                messages = [m for batch in found.values() for m in batch]
                if not messages:
                    continue
                commit = batches != ABORT_AT
                await producer.begin_transaction()
                for msg in messages:
                    await producer.send(OUT, value=transformed(msg.value), partition=msg.partition)
                offsets = {tp: await consumer.position(tp) for tp in partitions}
                await producer.send_offsets_to_transaction(offsets, "ak-ctp")
                batches += 1
                if commit:
                    await producer.commit_transaction()
                    done += len(messages)
                    continue
                await producer.abort_transaction()
                for tp in partitions:
                    consumer.seek(tp, await consumer.committed(tp) or 0)
            return done, batches
        finally:
            await consumer.stop()
            await producer.stop()

    done, batches = asyncio.run(run())
    assert done == RECORDS and batches > ABORT_AT
    assert_exactly_once(ctp_broker, "ak-ctp")



def test_offsets_of_a_prepared_commit_show_after_a_restart_resends_its_markers(kavka_broker_factory, tmp_path):
    """EndTxn is answered once PrepareCommit is written; the broker stops before any marker
    is: the replayed transaction's markers, sent again at load, commit the pending offsets."""
    data_dir = tmp_path / "data"
    broker = kavka_broker_factory(SETTINGS, data_dir=data_dir)
    seed(broker.bootstrap_servers, 3)
    producer, consumer = confluent_pair(broker.bootstrap_servers, "cf-prepared", "cf-prepared-tx", subscribe=False)
    metadata = consumer.consumer_group_metadata()
    consumer.close()
    producer.begin_transaction()
    producer.produce(OUT, value=b"o-0", partition=0)
    producer.send_offsets_to_transaction([TopicPartition(IN, 0, 1)], metadata, TIMEOUT_S)

    async def never(_job):
        await asyncio.Event().wait()
    broker.call(lambda: setattr(broker.transactions, "write_markers", never))
    producer.commit_transaction(TIMEOUT_S)
    state = broker.call(lambda: broker.transactions.coordinator.ids["cf-prepared-tx"].state.name)
    assert state == "PREPARE_COMMIT" and pending(broker, "cf-prepared")
    port = broker.port
    broker.stop()

    broker = kavka_broker_factory(SETTINGS, data_dir=data_dir, port=port)
    assert committed_offsets(broker.bootstrap_servers, "cf-prepared")[0] == 1
    assert not pending(broker, "cf-prepared")
    assert read_committed_output(broker.bootstrap_servers, 1) == [b"o-0"]
