"""Crash safety of the commit path: the broker SIGKILLs itself at each step of ending a
3-partition transaction, is restarted normally, and the transaction completes.

The crash points (txn_crash_launcher.py wraps kavka's functions; production code has no
hook): right after PrepareCommit/PrepareAbort is in ``__transaction_state`` and before any
marker; after the first and after the second of the three markers; after every marker and
before CompleteCommit/CompleteAbort.  Each point is checked for a commit and for an abort.

After the restart the producer's commit_transaction/abort_transaction returns (retried while
retriable, as an application does), and: DescribeTransactions shows CompleteCommit
(CompleteAbort); every partition holds a COMMIT (ABORT) marker of the producer after its
records, and none of the other kind; no transaction is open (the last stable offset is the
high watermark); a read_committed consumer sees every record of a committed transaction and
none of an aborted one, a read_uncommitted consumer sees them all.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaException, Producer
from kio.schema.describe_transactions.v0.request import DescribeTransactionsRequest

from broker_process import BrokerProcess, create_topic
from kavka.client import Client
from kavka.protocol import records as rb
from kavka.protocol.control_records import read_marker
from txn_workload import read_to_end, wait_stable

TOPIC = "crash-txn"
PARTITIONS = 3
PER_PARTITION = 4
TID = "crash-tx"
LAUNCHER = Path(__file__).with_name("txn_crash_launcher.py")
POINTS = {"prepare": 0, "marker:1": 1, "marker:2": 2, "complete": 3}   # markers in the log at the crash


class CrashingBroker(BrokerProcess):
    """A broker whose next start runs through the launcher with ``crash_point`` armed."""

    crash_point: str | None = None

    def command(self) -> list[str]:
        args = super().command()
        if self.crash_point is None:
            return args
        assert args[1:4] == ["-m", "kavka", "serve"], args
        return [sys.executable, str(LAUNCHER), self.crash_point, TID, *args[3:]]


@pytest.fixture
def crashing_broker(tmp_path):
    broker = CrashingBroker(tmp_path / "kavka", log_dir=tmp_path / "logs")
    yield broker
    broker.cleanup()


def describe(bootstrap: str):
    with Client(bootstrap) as client:
        response = client.request(DescribeTransactionsRequest(transactional_ids=(TID,)))
    (state,) = response.transaction_states
    return state


def markers(data_dir: Path, partition: int) -> list[tuple[int, int, bool]]:
    """(offset, producer id, commit) of every marker in the partition's segment files."""
    found = []
    for segment in sorted((data_dir / f"{TOPIC}-{partition}").glob("*.log")):
        data = segment.read_bytes()
        for pos, header in rb.iter_batches(data):
            if header.is_control:
                marker = read_marker(data[pos:pos + header.size])
                found.append((header.base_offset, header.producer_id, marker.commit))
    return found


def end_with_retries(call, results: list) -> None:
    """commit/abort_transaction again while it fails with a retriable error (bounded)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            call(10)
            results.append(None)
            return
        except KafkaException as exc:
            if not exc.args[0].retriable() or time.monotonic() > deadline:
                results.append(exc.args[0])
                return


def wait_state(bootstrap: str, wanted: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while (state := describe(bootstrap)).transaction_state != wanted:
        assert time.monotonic() < deadline, f"{TID} is {state.transaction_state}, not {wanted}"
        time.sleep(0.1)
    return state


@pytest.mark.parametrize("commit", [True, False], ids=["commit", "abort"])
@pytest.mark.parametrize("point", POINTS)
def test_the_transaction_completes_after_a_crash(crashing_broker, point, commit):
    broker = crashing_broker
    broker.crash_point = point
    broker.start()
    bootstrap = broker.bootstrap_servers
    create_topic(bootstrap, TOPIC, PARTITIONS)
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": TID, "linger.ms": 5,
                         "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 250})
    producer.init_transactions(15)
    values = {p: [f"{p}-{n}".encode() for n in range(PER_PARTITION)] for p in range(PARTITIONS)}
    producer.begin_transaction()
    for p, vs in values.items():
        for v in vs:
            producer.produce(TOPIC, value=v, partition=p)
    assert producer.flush(15) == 0

    results: list = []
    ender = threading.Thread(target=end_with_retries, daemon=True,
                             args=(producer.commit_transaction if commit else producer.abort_transaction, results))
    ender.start()
    assert broker.proc.wait(20) == -9, f"the broker did not crash at {point}:\n{broker.log_text()[-3000:]}"
    broker.kill9()                      # reaps it
    marked = [p for p in range(PARTITIONS) if markers(broker.data_dir, p)]
    assert len(marked) == POINTS[point], f"crashed at {point} with markers in partitions {marked}"
    broker.crash_point = None
    broker.restart()
    ender.join(70)
    assert results == [None], f"{'commit' if commit else 'abort'}_transaction failed: {results}"

    state = wait_state(bootstrap, "CompleteCommit" if commit else "CompleteAbort")
    ends = wait_stable(bootstrap, TOPIC, PARTITIONS, timeout=20)
    for p in range(PARTITIONS):
        found = markers(broker.data_dir, p)
        assert found, f"partition {p} has no marker"
        assert {c for _o, pid, c in found if pid == state.producer_id} == {commit}, found
        assert min(o for o, _pid, _c in found) == PER_PARTITION, f"partition {p}: marker before the records"
    committed = read_to_end(bootstrap, TOPIC, PARTITIONS, "read_committed", ends)
    uncommitted = read_to_end(bootstrap, TOPIC, PARTITIONS, "read_uncommitted", ends)
    by_partition = {p: [v for q, _o, v in uncommitted if q == p] for p in range(PARTITIONS)}
    assert by_partition == values
    assert sorted(v for _p, _o, v in committed) == (sorted(v for vs in values.values() for v in vs) if commit else [])
