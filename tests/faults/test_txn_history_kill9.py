"""The transactional history check (txn_history.py) on a lone broker process, without faults
and while the broker is kill -9ed and restarted again and again (12 times; after three of
the restarts a zombie-fencing producer also takes a writer's transactional id, so the writer
fails fatally, possibly mid-commit, and replaces its producer).

Four transactional producers (txn_workload.TxnWriter) write unique values to four partitions,
committing about 70% of their transactions and aborting the rest; a read_committed and a
read_uncommitted reader consume during the run, and two more read every partition to its end
once no transaction is open.  The checker must find no anomaly in the whole history: no
aborted or uncommitted read, no lost committed write, no partial transaction, no duplicate,
offsets consistent with the delivery reports and increasing, each producer's values in order.
"""

from __future__ import annotations

import random
import time

import pytest

from broker_process import create_topic
from txn_history import FAIL, OK, READ_COMMITTED, READ_UNCOMMITTED, History, check
from txn_workload import TailReader, TxnWriter, inject_faults, kill9_restart, read_to_end, wait_stable

TOPIC = "txn-history"
PARTITIONS = 4
WRITERS = 4
FAULTS = 12
FENCED_AT = {3, 6, 9}    # faults after which a zombie-fencing producer also takes a writer's id


def start_workload(bootstrap: str, history: History, seed: int):
    create_topic(bootstrap, TOPIC, PARTITIONS)
    writers = [TxnWriter(bootstrap, TOPIC, PARTITIONS, f"txn-writer-{n}", history, seed=seed * 100 + n)
               for n in range(WRITERS)]
    readers = [TailReader(bootstrap, TOPIC, PARTITIONS, isolation, history, f"tail-{isolation}")
               for isolation in (READ_COMMITTED, READ_UNCOMMITTED)]
    for thread in writers + readers:
        thread.start()
    return writers, readers


def finish_and_check(bootstrap: str, history: History, writers, readers) -> dict:
    for writer in writers:
        writer.finish()
    for reader in readers:
        reader.finish()
    ends = wait_stable(bootstrap, TOPIC, PARTITIONS)
    for isolation in (READ_COMMITTED, READ_UNCOMMITTED):
        history.poll(f"final-{isolation}", isolation, read_to_end(bootstrap, TOPIC, PARTITIONS, isolation, ends),
                     final=True)
    report = check(history.ops)
    assert report.valid, report.summary()
    return report.counts


def committed_so_far(history: History) -> int:
    return sum(1 for op in list(history.ops) if op.f == "txn" and op.type == OK)


def wait_for_commits(history: History, more: int, timeout: float) -> None:
    target = committed_so_far(history) + more
    deadline = time.monotonic() + timeout
    while committed_so_far(history) < target:
        assert time.monotonic() < deadline, f"fewer than {more} commits in {timeout}s"
        time.sleep(0.05)


def test_history_without_faults(broker_process):
    history = History()
    writers, readers = start_workload(broker_process.bootstrap_servers, history, seed=1)
    wait_for_commits(history, 40, timeout=30)
    counts = finish_and_check(broker_process.bootstrap_servers, history, writers, readers)
    assert counts[OK] >= 40 and counts.get(FAIL, 0) >= 5, counts
    assert sum(w.client.replaced for w in writers) == 0


@pytest.mark.slow   # 12 kill -9s and 3 fencings under a transactional load (~50 s)
def test_history_while_the_broker_is_killed(broker_process):
    rng = random.Random(12)
    history = History()
    bootstrap = broker_process.bootstrap_servers
    writers, readers = start_workload(bootstrap, history, seed=12)
    started = time.monotonic()
    faults, fences = inject_faults(lambda: kill9_restart(broker_process, rng), bootstrap,
                                   [w.tid for w in writers], rng, FAULTS, FENCED_AT, pause=(0.2, 2.0),
                                   ready=lambda: wait_for_commits(history, 3, timeout=30))
    wait_for_commits(history, 10, timeout=30)
    counts = finish_and_check(bootstrap, history, writers, readers)
    replaced = sum(w.client.replaced for w in writers)
    print(f"{faults} kill -9s and {fences} fencings in {time.monotonic() - started:.1f}s; history {counts}; "
          f"producers replaced {replaced}, "
          f"client errors retried or recovered {sum(len(w.client.errors) for w in writers)}")
    assert faults >= 10
    assert replaced >= 1, "no writer was fenced"
    assert counts[OK] >= 40 and counts.get(FAIL, 0) >= 10, counts
