"""Apache Kafka's Java client 4.x in transactions V2 against three kavka brokers on etcd.

A cluster finalizes ``transaction.version`` 2 as a lone broker does, so the Java producer picks
V2: it sends no AddPartitionsToTxn, and each partition's leader adds the partition through the
id's coordinator, another broker for at least two of the three partitions (one led by each
broker), over AddPartitionsToTxn v5 (kavka.cluster.txn_verifier).  The steps and their checks are
test_java_txn_verification.py's (the client's debug log, the stored epochs, what read_committed
sees; a zombie producer whose transaction timed out lands nothing), and Kafka Streams' exactly_once_v2 word count (test_java_transactions.py) counts exactly
with its TxnOffsetCommit v5 going to group coordinators that are not its ids' coordinators.
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

import test_java_client
from kavka.cluster.etcd_server import EtcdServer
from kavka.internal_topics import TRANSACTION_STATE_TOPIC, coordinator_partition
from test_java_client import produce_lines, random_lines, stored_batches
from test_java_transactions import count_to_the_end, group_offsets, words
from test_java_txn_verification import run_java
from test_java_txn_verification import values as committed_values

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cluster"))  # the cluster tests' helpers
from admin_targets import start_cluster, wait_until  # noqa: E402

pytestmark = pytest.mark.timeout(240)

java = test_java_client.java   # the fixture: the built Java client
PARTITIONS = 3
TXN_PARTITIONS = 3


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    directory = tmp_path_factory.mktemp("java-txn-cluster")
    with EtcdServer(directory / "etcd") as etcd:
        target = start_cluster(etcd.endpoint, directory, 3, {
            "transaction.state.log.num.partitions": str(TXN_PARTITIONS), "auto.leader.rebalance.enable": "false",
            "group.min.session.timeout.ms": "1000", "transaction.abort.timed.out.transaction.cleanup.interval.ms": "100"})
        try:
            yield target
        finally:
            target.stop()


def create_topic(target, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": target.bootstrap()})
    admin.create_topics([NewTopic(name, PARTITIONS, 3, config={"min.insync.replicas": "2"})])[name].result(10)
    wait_until(lambda: all(b.node.metadata.partition(name, p) is not None for b in target.brokers.values()
                           for p in range(PARTITIONS)), 10, f"{name} on every broker")


def leader_id(target, topic: str, partition: int) -> int:
    return target.brokers[1].node.metadata.partition(topic, partition).leader


def leader_of(target, topic: str, partition: int):
    return target.brokers[leader_id(target, topic, partition)]


def values(target, topic: str, isolation: str) -> list[str]:
    return committed_values(target.bootstrap(), topic, isolation, partitions=tuple(range(PARTITIONS)))


def test_java_v2_commit_abort_commit_across_brokers(java, cluster):
    target = cluster
    create_topic(target, "jtxc")
    plan = "commit:0/1/2,abort:0/1/2,commit:1"
    lines, queued = run_java(java, "txn-plan", target.bootstrap(), "jtxc", "jtxc-id", plan)
    assert [line["ended"] for line in lines] == ["commit", "abort", "commit"]
    assert "TV2=true" in queued and "AddPartitionsToTxn" not in queued, queued
    assert queued.count("EndTxn") == 3, queued

    coordinator = target.brokers[1].node.metadata.transaction_coordinator("jtxc-id").broker_id
    index = coordinator_partition("jtxc-id", TXN_PARTITIONS)
    assert target.brokers[1].node.metadata.partition(TRANSACTION_STATE_TOPIC, index).leader == coordinator
    remote = [p for p in range(PARTITIONS) if leader_id(target, "jtxc", p) != coordinator]
    assert len(remote) == 2
    for p in remote:   # those leaders asked the coordinator's broker
        leader = leader_of(target, "jtxc", p)
        assert leader.call(lambda: coordinator in leader.node.txn_verifier._channels)

    epochs = {p: [h.producer_epoch for h in stored_batches(leader_of(target, "jtxc", p), "jtxc", p)
                  if not h.is_control] for p in range(PARTITIONS)}
    assert epochs == {0: [0, 1], 1: [0, 1, 2], 2: [0, 1]}, "every end bumped the epoch (transactions V2)"
    for p in range(PARTITIONS):
        leader = leader_of(target, "jtxc", p)
        partition = leader.logs.partition("jtxc", p)
        wait_until(lambda: leader.call(lambda: partition.last_stable_offset == partition.log.log_end_offset), 10,
                   f"jtxc-{p} stable to its end")
    assert values(target, "jtxc", "read_committed") == ["0", "1", "2", "6"]
    assert values(target, "jtxc", "read_uncommitted") == ["0", "1", "2", "3", "4", "5", "6"]


@pytest.mark.slow   # waits out a transaction timeout
def test_a_java_zombie_aborted_by_its_timeout_lands_nothing_on_any_broker(java, cluster):
    """test_java_txn_verification's zombie, in V2 on a cluster: after the coordinator aborted its
    transaction (transaction.timeout.ms), the producer writes to its partition and to two new ones."""
    target = cluster
    create_topic(target, "jzc")
    lines, queued = run_java(java, "txn-zombie", target.bootstrap(), "jzc", "jzc-id", "4000", "1,2,0",
                             "transaction.timeout.ms=2000")
    assert lines[0] == {"sent": "before", "offset": 0}
    zombie = {line["zombie"]: line for line in lines if "zombie" in line}
    assert set(zombie) == {0, 1, 2} and all("error" in line for line in zombie.values()), lines
    assert lines[-1]["commit"] == "error", lines
    assert "TV2=true" in queued and "AddPartitionsToTxn" not in queued, queued

    coordinator = target.brokers[leader_id(target, TRANSACTION_STATE_TOPIC,
                                           coordinator_partition("jzc-id", TXN_PARTITIONS))]
    described = coordinator.call(lambda: coordinator.transactions.query(lambda c: c.describe("jzc-id")))[1]
    assert described.producer_epoch == 1, "the timeout's abort fenced epoch 0"

    def ends(p: int) -> tuple[int, int]:
        leader = leader_of(target, "jzc", p)
        partition = leader.logs.partition("jzc", p)
        return leader.call(lambda: (partition.log.log_end_offset, partition.last_stable_offset))
    wait_until(lambda: ends(0) == (2, 2), 10, "jzc-0: the record and the abort marker, stable")
    assert [ends(p) for p in (1, 2)] == [(0, 0), (0, 0)]
    assert values(target, "jzc", "read_committed") == []
    assert values(target, "jzc", "read_uncommitted") == ["before"]


def test_streams_exactly_once_v2_word_count_on_a_cluster(java, cluster, tmp_path):
    target = cluster
    bootstrap, app = target.bootstrap(), "java-eos-cluster"
    create_topic(target, "lines")
    create_topic(target, "counts")
    lines = random_lines(random.Random(7), 300)
    produce_lines(bootstrap, "lines", lines)
    want = Counter(words(lines))
    count_to_the_end(java, bootstrap, app, tmp_path / "state", tmp_path / "streams.log", want)
    assert group_offsets(bootstrap, app) == dict.fromkeys(range(PARTITIONS), 100), \
        "the input offsets were committed in the transactions (TxnOffsetCommit)"
