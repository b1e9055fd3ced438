"""Transactions with Apache Kafka's Java client and Kafka Streams exactly-once (issue 12).

The Java program's ``transactions`` step commits a transaction over 3 partitions, aborts the next
(its records acknowledged first, so the abort has data to hide) and commits a third; its
``read-to-end`` step reads every partition up to ``endOffsets``: under read_committed only the
committed records, and the end is the last stable offset.  The ``fence`` step shows a second
producer with the same ``transactional.id`` fencing the first (ProducerFencedException).  Kafka
Streams' word count runs with ``processing.guarantee=exactly_once_v2``, which needs TxnOffsetCommit
(``sendOffsetsToTransaction``): its counts (read back under read_committed) are exact after a clean
restart and after a SIGKILL while one of its transactions had output in the log, which the restarted
app's producer (same transactional id) aborts; the input offsets it committed are those of the
transactions (the group's committed offsets reach the end of the input).
"""

from __future__ import annotations

import random
import re
import signal
import threading
import time
from collections import Counter

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from test_java_client import (Running, create_topic, java, latest_counts, produce_lines,  # noqa: F401
                              random_lines, run_step, stop_streams, stored_batches, wait_for)

from kavka.client import Client

pytestmark = pytest.mark.timeout(180)

PARTITIONS = 3
PER_PARTITION = 20
TXN_SETTINGS = {"num.partitions": PARTITIONS, "transaction.state.log.num.partitions": 5}
STREAMS_SETTINGS = TXN_SETTINGS | {"group.initial.rebalance.delay.ms": 0, "group.min.session.timeout.ms": 1000}
TXN_OFFSET_COMMIT = 28
TRICKLE_S = 3           # seconds over which the lines of a killed run are produced
KILL_ATTEMPTS = 3


def values_by_partition(lines: list[dict]) -> dict[int, list[str]]:
    """What read-to-end printed: each partition's values in offset order."""
    out: dict[int, list[str]] = {p: [] for p in range(PARTITIONS)}
    for line in lines:
        if "offset" in line:
            out[line["partition"]].append(line["value"])
    return out


def read_to_end(build, bootstrap: str, topic: str, isolation: str, partitions: int = PARTITIONS) -> list[dict]:
    return run_step(build, "read-to-end", bootstrap, topic, str(partitions), f"isolation.level={isolation}")


def test_commit_abort_commit_over_three_partitions(java, kavka_broker_factory):  # noqa: F811 (the fixture)
    broker = kavka_broker_factory(TXN_SETTINGS)
    bootstrap, topic = broker.bootstrap_servers, "java-txn"
    create_topic(bootstrap, topic, PARTITIONS)
    lines = run_step(java, "transactions", bootstrap, topic, str(PARTITIONS), str(PER_PARTITION))
    assert [line["ended"] for line in lines if "ended" in line] == ["commit", "abort", "commit"]

    # Each transaction's records follow the previous one's marker, which takes an offset of its own.
    block = PER_PARTITION + 1
    for n, txn in enumerate(["commit-1", "abort", "commit-2"]):
        acked = sorted((line["partition"], line["offset"]) for line in lines if line.get("txn") == txn)
        assert acked == [(p, n * block + i) for p in range(PARTITIONS) for i in range(PER_PARTITION)], txn

    def sent(txn: str, p: int) -> list[str]:
        return [f"{txn}-{p}-{i}" for i in range(PER_PARTITION)]

    end = 3 * block
    committed = read_to_end(java, bootstrap, topic, "read_committed")
    assert values_by_partition(committed) == {p: sent("commit-1", p) + sent("commit-2", p) for p in range(PARTITIONS)}
    assert committed[-1] == {"end_offsets": [end] * PARTITIONS, "positions": [end] * PARTITIONS}
    uncommitted = read_to_end(java, bootstrap, topic, "read_uncommitted")
    assert values_by_partition(uncommitted) == {
        p: sent("commit-1", p) + sent("abort", p) + sent("commit-2", p) for p in range(PARTITIONS)}

    for p in range(PARTITIONS):
        batches = stored_batches(broker, topic, p)
        assert [h.base_offset for h in batches if h.is_control] == [block - 1, 2 * block - 1, end - 1]
        assert all(h.is_transactional for h in batches)
        assert len({h.producer_id for h in batches}) == 1


def test_a_second_producer_with_the_same_transactional_id_fences_the_first(java, kavka_broker_factory):  # noqa: F811
    broker = kavka_broker_factory(TXN_SETTINGS)
    bootstrap, topic = broker.bootstrap_servers, "java-fence"
    create_topic(bootstrap, topic, 1)
    lines = run_step(java, "fence", bootstrap, topic)
    said = {key: value for line in lines for key, value in line.items()}
    assert said["b_committed"] is True
    assert said.get("a_commit_error") == "org.apache.kafka.common.errors.ProducerFencedException", lines
    # The fenced producer's open transaction was aborted when the second one initialised.
    assert values_by_partition(read_to_end(java, bootstrap, topic, "read_committed", 1))[0] == ["live"]
    assert values_by_partition(read_to_end(java, bootstrap, topic, "read_uncommitted", 1))[0] == ["zombie", "live"]


# -- Kafka Streams, exactly_once_v2 -------------------------------------------------------

def advertised_api_keys(bootstrap: str) -> set[int]:
    with Client(bootstrap) as client:
        answer = client.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"))
    return {key.api_key for key in answer.api_keys}


def group_offsets(bootstrap: str, group: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        return {tp.partition: tp.offset for tp in
                consumer.committed([TopicPartition("lines", p) for p in range(PARTITIONS)], timeout=10)}
    finally:
        consumer.close()


def produce_slowly(bootstrap: str, lines: list[str], seconds: float) -> None:
    """Lines one at a time over about ``seconds`` (round robin over the partitions), each acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i, line in enumerate(lines):
        producer.produce("lines", value=line.encode(), partition=i % PARTITIONS)
        producer.poll(0)
        time.sleep(seconds / len(lines))
    assert producer.flush(10) == 0


def aborted_transactions(broker, topic: str) -> list:
    """(producer id, first offset) of the aborted transactions in the topic's partitions."""
    found = []
    for p in range(PARTITIONS):
        partition = broker.logs.partition(topic, p)
        end = broker.call(lambda: partition.log.log_end_offset)
        found += broker.call(lambda: partition.log.aborted_transactions(0, end))
    return found


def log_ends(broker, topic: str) -> dict[int, int]:
    def end(p: int) -> int:
        partition = broker.logs.partition(topic, p)
        return broker.call(lambda: partition.log.log_end_offset)
    return {p: end(p) for p in range(PARTITIONS)}


def open_partitions(broker, topic: str) -> list[int]:
    """The partitions of ``topic`` whose last stable offset is behind their end: a transaction is open."""
    def behind(p: int) -> bool:
        partition = broker.logs.partition(topic, p)
        return broker.call(lambda: partition.last_stable_offset < partition.log.log_end_offset)
    return [p for p in range(PARTITIONS) if behind(p)]


def kill_in_a_transaction(build, broker, app: str, state_dir, log, lines: list[str]) -> bool:
    """Run the app while ``lines`` trickle in, SIGKILL it once it has output in an open transaction;
    whether a transaction was still open after the kill."""
    streams = eos_word_count(build, broker.bootstrap_servers, app, state_dir, log)
    trickle = threading.Thread(target=produce_slowly, args=(broker.bootstrap_servers, lines, TRICKLE_S))
    try:
        wait_for(lambda: "RUNNING" in streams.values("state"), 60, "the Streams app running", [streams])
        trickle.start()
        wait_for(lambda: open_partitions(broker, "counts"), 30, "an open transaction with output", [streams])
    finally:
        killed = streams.stop(signal.SIGKILL)
        if trickle.ident is not None:
            trickle.join(TRICKLE_S + 10)
    assert killed == -signal.SIGKILL
    return bool(open_partitions(broker, "counts"))


def eos_word_count(build, bootstrap: str, app: str, state_dir, log) -> Running:
    """The word count of test_java_client.py with exactly_once_v2 (and its short session timeout)."""
    return Running(build, "wordcount", bootstrap, "lines", "counts", app, str(state_dir),
                   "processing.guarantee=exactly_once_v2", "repartition.purge.interval.ms=100",
                   "session.timeout.ms=3000", "heartbeat.interval.ms=500", log=log)


def words(lines: list[str]) -> Counter:
    return Counter(word.lower() for line in lines for word in re.findall(r"\w+", line))


def count_to_the_end(build, bootstrap: str, app: str, state_dir, log, want: Counter) -> None:
    """Run the app until its committed counts (read_committed) equal ``want``, then stop it."""
    streams = eos_word_count(build, bootstrap, app, state_dir, log)
    try:
        counts = latest_counts(bootstrap, "counts", dict(want), 60, isolation="read_committed")
        assert streams.values("error") == [], streams.describe()
        assert counts == dict(want), streams.describe()
    finally:
        stop_streams(streams)


@pytest.mark.slow   # SIGKILLs the app, up to 3 times
def test_streams_exactly_once_word_count_is_exact_across_a_restart_and_a_kill(java, kavka_broker_factory,  # noqa: F811
                                                                              tmp_path):
    broker = kavka_broker_factory(STREAMS_SETTINGS)
    bootstrap, app, log = broker.bootstrap_servers, "java-eos-wordcount", tmp_path / "streams.log"
    assert TXN_OFFSET_COMMIT in advertised_api_keys(bootstrap), \
        "the broker does not advertise TxnOffsetCommit (key 28): exactly_once_v2 needs sendOffsetsToTransaction"
    create_topic(bootstrap, "lines", PARTITIONS)
    create_topic(bootstrap, "counts", PARTITIONS)
    rng = random.Random(12)
    batches = [random_lines(rng, 300) for _ in range(3)]
    want = Counter()

    produce_lines(bootstrap, "lines", batches[0])
    want.update(words(batches[0]))
    count_to_the_end(java, bootstrap, app, tmp_path / "state-1", log, want)
    assert group_offsets(bootstrap, app) == dict.fromkeys(range(PARTITIONS), 100), \
        "the input offsets were committed in the transactions (TxnOffsetCommit)"

    # SIGKILL while a transaction with output is open (tried up to KILL_ATTEMPTS times, as the
    # transaction may commit between seeing it open and the kill): it is aborted when the app comes
    # back (same state dir, same process id, so the same transactional ids).
    slices = [batches[1][i::KILL_ATTEMPTS] for i in range(KILL_ATTEMPTS)]
    for attempt, lines in enumerate(slices):
        if kill_in_a_transaction(java, broker, app, tmp_path / "state-2", log, lines):
            break
        assert attempt < KILL_ATTEMPTS - 1, "no kill left an open transaction behind"
    produce_lines(bootstrap, "lines", [line for rest in slices[attempt + 1:] for line in rest])
    want.update(words(batches[1]))
    produce_lines(bootstrap, "lines", batches[2])
    want.update(words(batches[2]))
    count_to_the_end(java, bootstrap, app, tmp_path / "state-2", log, want)
    assert group_offsets(bootstrap, app) == log_ends(broker, "lines")
    output = [h for p in range(PARTITIONS) for h in stored_batches(broker, "counts", p)]
    assert output and all(h.is_transactional for h in output)
    assert any(h.is_control for h in output)
    assert aborted_transactions(broker, "counts"), "the open transaction the kill left was aborted"
    assert open_partitions(broker, "counts") == []

