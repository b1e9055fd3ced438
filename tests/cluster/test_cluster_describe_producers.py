"""DescribeProducers on three brokers: a partition replicated on brokers 1 (leader) and 2 is
answered by both from their own producer tables, which agree on a confluent-kafka idempotent
producer's id, epoch and last sequence; broker 3, without a replica, answers
NOT_LEADER_OR_FOLLOWER, and an unknown topic is UNKNOWN_TOPIC_OR_PARTITION.
``kavka transactions describe-producers --broker-id 2`` shows the follower's table, and
``kavka transactions list|describe|find-hanging``, asked through broker 3, find a
confluent-kafka transaction left open at its coordinator, whichever broker that is."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
from confluent_kafka import Producer
from kio.schema.describe_producers.v0 import request as q

from admin_targets import start_cluster
from kavka.api.responses import make
from kavka.client import Client
from test_cluster_partition_cap import create_topic

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

LEADER, FOLLOWER, OUTSIDER = 1, 2, 3
RECORDS = 5
NONE, UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER = 0, 3, 6


@pytest.fixture(scope="module")
def written(etcd, tmp_path_factory):
    """(the cluster, the topic): RECORDS records of one idempotent producer in partition 0,
    replicated on brokers 1 and 2, then one record of a transaction left open."""
    target = start_cluster(etcd.endpoint, tmp_path_factory.mktemp("producers"))
    try:
        name = "producers-" + uuid.uuid4().hex[:8]
        assert create_topic(target.brokers[LEADER], name, assignment=[[LEADER, FOLLOWER]])[0] == 0
        producer = Producer({"bootstrap.servers": target.bootstrap(), "enable.idempotence": True})
        for i in range(RECORDS):
            producer.produce(name, value=b"v%d" % i, partition=0)
        assert producer.flush(20) == 0
        transactional = Producer({"bootstrap.servers": target.bootstrap(), "transactional.id": "cluster-tx"})
        transactional.init_transactions(30)
        transactional.begin_transaction()
        transactional.produce(name, value=b"open", partition=0)
        assert transactional.flush(20) == 0
        follower = target.brokers[FOLLOWER]
        deadline = time.monotonic() + 20
        while follower.logs.partition(name, 0).log.log_end_offset < RECORDS + 1:
            assert time.monotonic() < deadline, "the follower did not catch up"
            time.sleep(0.05)
        yield target, name
        transactional.purge()
    finally:
        target.stop()


def describe(broker, topic: str) -> tuple[int, list]:
    body = make(q.DescribeProducersRequest, topics=(make(q.TopicRequest, name=topic, partition_indexes=(0,)),))
    with Client(broker.bootstrap_servers) as client:
        [answer] = client.request(body).topics
    [partition] = answer.partitions
    return partition.error_code, [(p.producer_id, p.producer_epoch, p.last_sequence, p.current_txn_start_offset)
                                  for p in partition.active_producers]


def test_each_replica_answers_from_its_own_producer_table(written):
    target, topic = written
    leader_error, on_leader = describe(target.brokers[LEADER], topic)
    follower_error, on_follower = describe(target.brokers[FOLLOWER], topic)
    assert leader_error == follower_error == NONE
    [(producer_id, epoch, last_sequence, txn_start), opened] = sorted(on_leader, key=lambda p: p[3])
    assert producer_id >= 0 and (epoch, last_sequence, txn_start) == (0, RECORDS - 1, -1)
    assert (opened[2], opened[3]) == (0, RECORDS)
    assert sorted(on_follower) == sorted(on_leader)
    assert describe(target.brokers[OUTSIDER], topic) == (NOT_LEADER_OR_FOLLOWER, [])
    assert describe(target.brokers[OUTSIDER], "no-such-topic") == (UNKNOWN_TOPIC_OR_PARTITION, [])


def transactions(target, *args: str) -> list[dict[str, str]]:
    """``kavka transactions ARGS`` through broker 3: the table it printed, as dicts."""
    result = subprocess.run([sys.executable, "-m", "kavka", "transactions", *args, "-b", target.bootstrap(OUTSIDER)],
                            capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    header, *rows = (line.split() for line in result.stdout.splitlines())
    return [dict(zip(header, row)) for row in rows]


def test_the_cli_asks_the_replica_it_is_told_to(written):
    target, topic = written
    rows = transactions(target, "describe-producers", "--topic", topic, "--partition", "0",
                        "--broker-id", str(FOLLOWER))
    on_follower = describe(target.brokers[FOLLOWER], topic)[1]
    assert sorted((int(r["ProducerId"]), int(r["LastSequence"])) for r in rows) == sorted(
        (p[0], p[2]) for p in on_follower)


def test_the_cli_finds_a_transaction_at_its_coordinator(written):
    target, topic = written
    [listed] = [row for row in transactions(target, "list") if row["TransactionalId"] == "cluster-tx"]
    assert listed["TransactionState"] == "Ongoing" and int(listed["Coordinator"]) in target.broker_ids
    [described] = transactions(target, "describe", "--transactional-id", "cluster-tx")
    assert (described["CoordinatorId"], described["ProducerId"], described["TopicPartitions"]) == (
        listed["Coordinator"], listed["ProducerId"], f"{topic}-0")
    assert transactions(target, "find-hanging", "--topic", topic, "--max-transaction-timeout", "0") == []
