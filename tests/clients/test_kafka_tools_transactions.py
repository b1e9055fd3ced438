"""Kafka's own ``kafka-transactions`` tool (``org.apache.kafka.tools.TransactionsCommand``) against
a real kavka broker: ``list`` and ``describe`` show a hanging transaction of a confluent-kafka
transactional producer, and ``abort`` (WriteTxnMarkers to the partition's leader) ends it in
the partition: the last stable offset moves past its records, which a read_committed consumer
then never sees.  ``describe-producers`` shows the partition's producers (DescribeProducers);
``find-hanging`` (DescribeProducers, ListTransactions, DescribeTransactions) finds a transaction
the partition holds open but no coordinator knows of, and ``abort --start-offset`` ends it.

The JVM, the Java test client's build and a fresh broker per test come from test_kafka_tools.py's
``kafka`` fixture.
"""

from __future__ import annotations

import shutil
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from test_kafka_tools import TOOLS, java, kafka, tool  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

TOPIC = "tool-txn"


def rows(output: str) -> list[dict[str, str]]:
    """A tool's whitespace-separated table (header line first) as dicts."""
    lines = [line.split() for line in output.strip().splitlines() if line.strip()]
    return [dict(zip(lines[0], line)) for line in lines[1:]]


def lso(bootstrap: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "lso", "isolation.level": "read_committed"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10, cached=False)[1]
    finally:
        consumer.close()


def test_list_describe_and_abort_a_hanging_transaction(kafka):  # noqa: F811 (the fixture)
    kafka("TopicCommand", *kafka.args, "--create", "--topic", TOPIC, "--partitions", "1")
    producer = Producer({"bootstrap.servers": kafka.bootstrap, "transactional.id": "tool-tx",
                         "transaction.timeout.ms": 60_000})
    producer.init_transactions(10)
    producer.begin_transaction()
    for n in range(3):
        producer.produce(TOPIC, key=b"k", value=b"v%d" % n, partition=0)
    producer.flush(10)
    assert lso(kafka.bootstrap) == 0, "the open transaction holds the last stable offset back"

    [listed] = [row for row in rows(kafka("TransactionsCommand", *kafka.args, "list"))
                if row["TransactionalId"] == "tool-tx"]
    assert listed["TransactionState"] == "Ongoing"
    described = rows(kafka("TransactionsCommand", *kafka.args, "describe", "--transactional-id", "tool-tx"))[0]
    assert described["TransactionState"] == "Ongoing" and described["ProducerId"] == listed["ProducerId"]
    assert f"{TOPIC}-0" in described["TopicPartitions"]

    out = kafka("TransactionsCommand", *kafka.args, "abort", "--topic", TOPIC, "--partition", "0",
                "--producer-id", described["ProducerId"], "--producer-epoch", described["ProducerEpoch"],
                "--coordinator-epoch", "0")
    assert "error" not in out.lower()
    assert lso(kafka.bootstrap) == 4, "records and the abort marker are now below the LSO"

    reader = Consumer({"bootstrap.servers": kafka.bootstrap, "group.id": "reader", "auto.offset.reset": "earliest",
                       "isolation.level": "read_committed", "enable.auto.commit": False})
    try:
        reader.subscribe([TOPIC])
        seen, deadline = [], time.monotonic() + 5
        while time.monotonic() < deadline:
            message = reader.poll(0.2)
            if message is not None and message.error() is None:
                seen.append(message.value())
        assert seen == []
    finally:
        reader.close()


def open_transaction(bootstrap: str, transactional_id: str, records: int) -> Producer:
    """A confluent-kafka producer left inside a transaction of ``records`` records to partition 0."""
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id,
                         "transaction.timeout.ms": 60_000})
    producer.init_transactions(10)
    producer.begin_transaction()
    for n in range(records):
        producer.produce(TOPIC, key=b"k", value=b"v%d" % n, partition=0)
    assert producer.flush(10) == 0
    return producer


def test_find_hanging_and_abort_by_start_offset_after_the_coordinator_lost_the_transaction(
        java, kavka_broker_factory, tmp_path):  # noqa: F811 (the fixture)
    """A transaction the partition holds open but no coordinator knows of is what find-hanging
    looks for: here the broker restarts without its ``__transaction_state`` partitions.  While
    the coordinator still has the partition in the transaction, find-hanging lists nothing."""
    data = tmp_path / "data"
    broker = kavka_broker_factory(data_dir=data)
    args = ("--bootstrap-server", broker.bootstrap_servers)
    tool(java, TOOLS + "TopicCommand", *args, "--create", "--topic", TOPIC, "--partitions", "1")
    committed = Producer({"bootstrap.servers": broker.bootstrap_servers, "enable.idempotence": True})
    committed.produce(TOPIC, value=b"before", partition=0)
    assert committed.flush(10) == 0
    producer = open_transaction(broker.bootstrap_servers, "lost-tx", 3)

    [idempotent, txn] = sorted(rows(tool(java, TOOLS + "TransactionsCommand", *args, "describe-producers",
                                         "--topic", TOPIC, "--partition", "0")),
                               key=lambda row: row["CurrentTransactionStartOffset"] != "None")
    assert idempotent["CurrentTransactionStartOffset"] == "None" and idempotent["LastSequence"] == "0"
    assert (txn["CurrentTransactionStartOffset"], txn["LastSequence"], txn["ProducerEpoch"]) == ("1", "2", "0")
    hanging = ("find-hanging", "--topic", TOPIC, "--max-transaction-timeout", "0")
    assert rows(tool(java, TOOLS + "TransactionsCommand", *args, *hanging)) == [], \
        "the coordinator will still write this transaction's marker"

    broker.stop()
    for journal in data.glob("__transaction_state-*"):
        shutil.rmtree(journal)
    broker = kavka_broker_factory(data_dir=data, port=broker.port)
    assert lso(broker.bootstrap_servers) == 1, "the open transaction still holds the LSO back after the restart"
    [found] = rows(tool(java, TOOLS + "TransactionsCommand", *args, *hanging))
    assert (found["Topic"], found["Partition"], found["ProducerId"], found["StartOffset"]) == (
        TOPIC, "0", txn["ProducerId"], "1")

    out = tool(java, TOOLS + "TransactionsCommand", *args, "abort", "--topic", TOPIC, "--partition", "0",
               "--start-offset", "1")
    assert "error" not in out.lower()
    assert lso(broker.bootstrap_servers) == 5, "the transaction's records and its abort marker are below the LSO"
    assert rows(tool(java, TOOLS + "TransactionsCommand", *args, *hanging)) == []
    [after] = [row for row in rows(tool(java, TOOLS + "TransactionsCommand", *args, "describe-producers",
                                        "--topic", TOPIC, "--partition", "0"))
               if row["ProducerId"] == txn["ProducerId"]]
    assert after["CurrentTransactionStartOffset"] == "None"
    producer.purge()
