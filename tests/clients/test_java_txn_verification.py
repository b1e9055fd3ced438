"""Apache Kafka's Java producer (kafka-clients 4.x) in transactions against a lone kavka broker, at
``transaction.version`` 1 (the classic protocol) and 2 (KIP-890's transactions V2, kavka's default
as Kafka 4's).

The Java client picks V2 when the finalized ``transaction.version`` it reads from ApiVersions is
2 or more: it then sends no AddPartitionsToTxn (its Produce v12 makes the partition leader add the
partition) and gets a new epoch from every EndTxn v5.  The tests check both from the outside: the
epochs of the stored batches and of the coordinator's state, and the client's own debug log of
the transactional requests it queued.  A zombie, a producer whose transaction the coordinator
aborted at its ``transaction.timeout.ms``, keeps writing, to the partition it had written and to a
new one: nothing of it is stored, a read_committed consumer (confluent-kafka) sees nothing, and
no partition's last stable offset is held back.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

import test_java_client
from kavka.metadata.features import TRANSACTION_VERSION, FeatureUpdate, UpgradeType
from test_java_client import STEP_TIMEOUT, command, create_topic, stored_batches

pytestmark = pytest.mark.timeout(120)

java = test_java_client.java   # the fixture: the built Java client
# The producer's TransactionManager logs at debug level each transactional request it queues and
# which protocol it chose ("Updating isTV2 enabled to true with FinalizedFeaturesEpoch 0").
TXN_DEBUG = "-Dorg.slf4j.simpleLogger.log.org.apache.kafka.clients.producer.internals.TransactionManager=debug"
QUEUED = re.compile(r"Enqueuing transactional request (\w+)RequestData\(")
TV2 = re.compile(r"Updating isTV2 enabled to (true|false)")
SETTINGS = {"num.partitions": 2, "transaction.abort.timed.out.transaction.cleanup.interval.ms": 100}


def run_java(build, step: str, bootstrap: str, *args: str) -> tuple[list[dict], list[str]]:
    """One step's JSON lines, and what its producer logged: "TV2=true|false" when it chose the
    protocol, then the transactional requests it queued, in order."""
    cmd = command(build, step, bootstrap, *args)
    result = subprocess.run([cmd[0], TXN_DEBUG, *cmd[1:]], capture_output=True, text=True, timeout=STEP_TIMEOUT)
    assert result.returncode == 0, f"{step} exited {result.returncode}:\n{result.stdout}\n{result.stderr[-4000:]}"
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    seen = [f"TV2={m.group(1)}" if m.re is TV2 else m.group(1)
            for line in result.stderr.splitlines() for m in (TV2.search(line) or QUEUED.search(line),) if m]
    return lines, seen


def at_level(kavka_broker_factory, level: int):
    broker = kavka_broker_factory(SETTINGS)
    if level != 2:
        result = broker.call(lambda: broker.context.admin.update_features(
            [FeatureUpdate(TRANSACTION_VERSION, level, UpgradeType.SAFE_DOWNGRADE)], False))
        assert result.ok, result
    return broker


def values(bootstrap: str, topic: str, isolation: str, timeout: float = 20, partitions=(0, 1)) -> list[str]:
    """Every value of the topic's ``partitions`` a confluent-kafka consumer reads up to the end it
    is allowed to see (the high watermark, or the LSO for read_committed), sorted."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"java-{isolation}", "enable.auto.commit": False,
                         "isolation.level": isolation, "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    got, at_end, deadline = [], set(), time.monotonic() + timeout
    try:
        while len(at_end) < len(partitions):
            assert time.monotonic() < deadline, f"{isolation}: {got}, at the end of {at_end}"
            for m in consumer.consume(100, 0.2):
                if m.error() is None:
                    got.append(m.value().decode())
                else:
                    assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                    at_end.add(m.partition())
    finally:
        consumer.close()
    return sorted(got)


def offsets(broker, topic: str) -> list[tuple[int, int]]:
    """(log end offset, last stable offset) of partitions 0 and 1."""
    return broker.call(lambda: [(p.log.log_end_offset, p.last_stable_offset)
                                for p in (broker.logs.partition(topic, i) for i in (0, 1))])


def epoch_of(broker, transactional_id: str) -> int:
    return broker.call(lambda: broker.transactions.query(lambda c: c.describe(transactional_id)))[1].producer_epoch


@pytest.mark.parametrize("level", [1, 2])
def test_commit_abort_commit_at_each_transaction_version(java, kavka_broker_factory, level):
    broker = at_level(kavka_broker_factory, level)
    bootstrap = broker.bootstrap_servers
    create_topic(bootstrap, "jtx", partitions=2)
    lines, queued = run_java(java, "txn-plan", bootstrap, "jtx", "jtx-id", "commit:0/1,abort:0,commit:1")
    assert [line["ended"] for line in lines] == ["commit", "abort", "commit"]

    data_epochs = [[h.producer_epoch for h in stored_batches(broker, "jtx", p) if not h.is_control] for p in (0, 1)]
    assert queued.count("EndTxn") == 3, queued
    if level == 2:   # transactions V2: the leader added each partition; every end bumped the epoch
        assert "TV2=true" in queued and "AddPartitionsToTxn" not in queued, queued
        assert data_epochs == [[0, 1], [0, 2]] and epoch_of(broker, "jtx-id") == 3
    else:
        assert "TV2=true" not in queued and queued.count("AddPartitionsToTxn") >= 3, queued   # one or more each
        assert data_epochs == [[0, 0], [0, 0]] and epoch_of(broker, "jtx-id") == 0

    assert offsets(broker, "jtx") == [(4, 4), (4, 4)], "two records and two markers each; nothing open"
    assert values(bootstrap, "jtx", "read_committed") == ["0", "1", "3"]
    assert values(bootstrap, "jtx", "read_uncommitted") == ["0", "1", "2", "3"]


@pytest.mark.slow   # waits out a transaction timeout
@pytest.mark.parametrize("level", [1, 2])
def test_a_producer_aborted_by_its_timeout_keeps_writing_and_nothing_lands(java, kavka_broker_factory, level):
    broker = at_level(kavka_broker_factory, level)
    bootstrap = broker.bootstrap_servers
    create_topic(bootstrap, "jz", partitions=2)
    lines, queued = run_java(java, "txn-zombie", bootstrap, "jz", "jz-id", "4000", "1,0", "transaction.timeout.ms=2000")
    assert lines[0] == {"sent": "before", "offset": 0}
    zombie = {line["zombie"]: line for line in lines if "zombie" in line}
    assert set(zombie) == {0, 1} and all("error" in line for line in zombie.values()), lines
    assert lines[-1]["commit"] == "error", lines
    if level == 2:   # the new partition was never asked for: its leader's add was refused (fenced)
        assert "TV2=true" in queued and "AddPartitionsToTxn" not in queued, queued
    else:
        assert "AddPartitionsToTxn" in queued, queued

    assert epoch_of(broker, "jz-id") == 1, "the timeout's abort fenced epoch 0"
    assert offsets(broker, "jz") == [(2, 2), (0, 0)], "partition 0: the record and the abort marker"
    assert values(bootstrap, "jz", "read_committed") == []
    assert values(bootstrap, "jz", "read_uncommitted") == ["before"]
