"""`kavka transactions list|describe|describe-producers|find-hanging|abort` as a user runs them:
subprocesses against an in-process broker, with transactions driven by confluent-kafka
(librdkafka) producers.  What ``abort`` did is read back independently: the last stable offset
a read_committed confluent-kafka consumer sees.  ``kavka groups describe --isolation
read_committed`` measures lag to that offset."""

from __future__ import annotations

import shutil

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from test_cli_tools import failed, kavka, ok

pytestmark = pytest.mark.timeout(120)

TOPIC = "cli-txn"


def table(output: str) -> list[dict[str, str]]:
    """A table the command printed (header line first) as dicts; empty cells are absent."""
    lines = [line.split() for line in output.strip().splitlines() if line.strip()]
    return [dict(zip(lines[0], line)) for line in lines[1:]]


def last_stable_offset(bootstrap: str) -> int:
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "lso", "isolation.level": "read_committed"})
    try:
        return reader.get_watermark_offsets(TopicPartition(TOPIC, 0), timeout=10, cached=False)[1]
    finally:
        reader.close()


def transactional(bootstrap: str, transactional_id: str) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id,
                         "transaction.timeout.ms": 60_000})
    producer.init_transactions(10)
    return producer


def write(producer: Producer, values: list[bytes]) -> None:
    producer.begin_transaction()
    for value in values:
        producer.produce(TOPIC, value=value, partition=0)
    assert producer.flush(10) == 0


@pytest.fixture
def transactions(kavka_broker_factory, tmp_path):
    """A broker with an idempotent record at offset 0, a committed transaction (1-2, marker 3),
    an id with no transaction yet and an open transaction from offset 4 (4-6)."""
    broker = kavka_broker_factory({"transaction.state.log.num.partitions": 3}, data_dir=tmp_path / "data")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result(10)
    plain = Producer({"bootstrap.servers": broker.bootstrap_servers, "enable.idempotence": True})
    plain.produce(TOPIC, value=b"plain", partition=0)
    assert plain.flush(10) == 0
    done = transactional(broker.bootstrap_servers, "done-tx")
    write(done, [b"c1", b"c2"])
    done.commit_transaction(10)
    idle = transactional(broker.bootstrap_servers, "idle-tx")
    hanging = transactional(broker.bootstrap_servers, "open-tx")
    write(hanging, [b"o1", b"o2", b"o3"])
    yield broker, tmp_path / "data"
    for producer in (hanging, idle, done):
        producer.purge()


def test_list_and_describe_show_every_state_and_a_missing_id_is_one_line(transactions):
    broker, _ = transactions
    listed = {row["TransactionalId"]: row for row in table(ok(kavka(broker, "transactions", "list")))}
    assert {tid: (row["Coordinator"], row["TransactionState"]) for tid, row in listed.items()} == {
        "done-tx": ("0", "CompleteCommit"), "idle-tx": ("0", "Empty"), "open-tx": ("0", "Ongoing")}
    assert table(ok(kavka(broker, "transactions", "list", "--duration-filter", "3600000"))) == []

    [ongoing] = table(ok(kavka(broker, "transactions", "describe", "--transactional-id", "open-tx")))
    assert (ongoing["CoordinatorId"], ongoing["ProducerId"], ongoing["ProducerEpoch"]) == (
        "0", listed["open-tx"]["ProducerId"], "0")
    assert (ongoing["TransactionState"], ongoing["TransactionTimeoutMs"], ongoing["TopicPartitions"]) == (
        "Ongoing", "60000", f"{TOPIC}-0")
    assert int(ongoing["CurrentTransactionStartTimeMs"]) > 0 and int(ongoing["TransactionDurationMs"]) >= 0

    [idle] = table(ok(kavka(broker, "transactions", "describe", "--transactional-id", "idle-tx")))
    assert (idle["TransactionState"], idle["CurrentTransactionStartTimeMs"], idle["TransactionDurationMs"]) == (
        "Empty", "None", "None"), "a start time of -1 (kio refuses it as a timestamp) reads as none"
    assert "TopicPartitions" not in idle

    assert failed(kavka(broker, "transactions", "describe", "--transactional-id", "nope")) == (
        "kavka transactions: TRANSACTIONAL_ID_NOT_FOUND: transactional id 'nope' does not exist")


def test_describe_producers_then_abort_by_producer_id(transactions):
    broker, _ = transactions
    rows = table(ok(kavka(broker, "transactions", "describe-producers", "--topic", TOPIC, "--partition", "0")))
    assert sorted(row["CurrentTransactionStartOffset"] for row in rows) == ["4", "None", "None"]
    [opened] = [row for row in rows if row["CurrentTransactionStartOffset"] == "4"]
    assert (opened["ProducerEpoch"], opened["LastSequence"], opened["LatestCoordinatorEpoch"]) == ("0", "2", "-1")
    assert last_stable_offset(broker.bootstrap_servers) == 4

    assert failed(kavka(broker, "transactions", "abort", "--topic", TOPIC, "--partition", "0")) == (
        "kavka transactions: name the transaction to abort with --start-offset, or with --producer-id, "
        "--producer-epoch and --coordinator-epoch")
    assert failed(kavka(broker, "transactions", "abort", "--topic", TOPIC, "--partition", "0", "--start-offset",
                        "5")) == f"kavka transactions: no open transaction starts at offset 5 in {TOPIC}-0"
    out = ok(kavka(broker, "transactions", "abort", "--topic", TOPIC, "--partition", "0", "--producer-id",
                   opened["ProducerId"], "--producer-epoch", "0", "--coordinator-epoch", "-1"))
    assert out == f"Aborted the transaction of producer {opened['ProducerId']} (epoch 0) in {TOPIC}-0.\n"
    assert last_stable_offset(broker.bootstrap_servers) == 8, "records 4-6 and the marker at 7 are stable"
    failure = failed(kavka(broker, "transactions", "describe-producers", "--topic", TOPIC, "--partition", "9"))
    assert failure == f"kavka transactions: UNKNOWN_TOPIC_OR_PARTITION: topic '{TOPIC}' has no partition 9"


def test_find_hanging_then_abort_by_start_offset_after_the_coordinator_lost_the_transaction(
        transactions, kavka_broker_factory):
    broker, data = transactions
    search = ("transactions", "find-hanging", "--topic", TOPIC, "--max-transaction-timeout", "0")
    assert table(ok(kavka(broker, *search))) == [], "the coordinator still has the partition in the transaction"
    assert failed(kavka(broker, "transactions", "find-hanging")) == (
        "kavka transactions: find-hanging needs --topic or --broker-id to limit the search")

    broker.stop()
    for journal in data.glob("__transaction_state-*"):
        shutil.rmtree(journal)
    broker = kavka_broker_factory(data_dir=data, port=broker.port)
    for scope in (("--topic", TOPIC, "--partition", "0"), ("--broker-id", "0")):
        [found] = table(ok(kavka(broker, "transactions", "find-hanging", *scope, "--max-transaction-timeout", "0")))
        assert (found["Topic"], found["Partition"], found["StartOffset"], found["Duration(min)"]) == (
            TOPIC, "0", "4", "0")
    assert table(ok(kavka(broker, "transactions", "find-hanging", "--topic", TOPIC))) == [], \
        "not idle for the default 15 minutes"

    ok(kavka(broker, "transactions", "abort", "--topic", TOPIC, "--partition", "0", "--start-offset", "4"))
    assert last_stable_offset(broker.bootstrap_servers) == 8
    assert table(ok(kavka(broker, *search))) == []


def test_group_lag_is_measured_to_the_log_end_or_with_read_committed_to_the_last_stable_offset(transactions):
    broker, _ = transactions
    outsider = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": "lagging",
                         "enable.auto.commit": False})
    try:
        outsider.commit(offsets=[TopicPartition(TOPIC, 0, 1)], asynchronous=False)
    finally:
        outsider.close()
    [row] = table(ok(kavka(broker, "groups", "describe", "lagging")).split("\n", 1)[1])
    assert (row["COMMITTED"], row["LOG-END"], row["LAG"]) == ("1", "7", "6"), "Kafka's lag: to the high watermark"
    [row] = table(ok(kavka(broker, "groups", "describe", "lagging", "--isolation", "read_committed")).split("\n", 1)[1])
    assert (row["COMMITTED"], row["LAST-STABLE"], row["LAG"]) == ("1", "4", "3"), \
        "a read_committed group cannot read the open transaction's records 4-6"
