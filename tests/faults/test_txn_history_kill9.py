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
from txn_history import FAIL, OK
from txn_workload import Workload, inject_faults, kill9_restart

TOPIC = "txn-history"
PARTITIONS = 4
FAULTS = 12
FENCED_AT = {3, 6, 9}    # faults after which a zombie-fencing producer also takes a writer's id


def test_history_without_faults(broker_process):
    create_topic(broker_process.bootstrap_servers, TOPIC, PARTITIONS)
    workload = Workload(broker_process.bootstrap_servers, TOPIC, PARTITIONS, seed=1).start()
    workload.wait_for_commits(40, timeout=30)
    counts = workload.finish_and_check()
    assert counts[OK] >= 40 and counts.get(FAIL, 0) >= 5, counts
    assert workload.replaced == 0


@pytest.mark.slow   # 12 kill -9s and 3 fencings under a transactional load (~50 s)
def test_history_while_the_broker_is_killed(broker_process):
    rng = random.Random(12)
    bootstrap = broker_process.bootstrap_servers
    create_topic(bootstrap, TOPIC, PARTITIONS)
    workload = Workload(bootstrap, TOPIC, PARTITIONS, seed=12).start()
    started = time.monotonic()
    faults, fences = inject_faults(lambda: kill9_restart(broker_process, rng), bootstrap, workload.tids, rng,
                                   FAULTS, FENCED_AT, pause=(0.2, 2.0),
                                   ready=lambda: workload.wait_for_commits(3, timeout=30))
    workload.wait_for_commits(10, timeout=30)
    counts = workload.finish_and_check()
    print(f"{faults} kill -9s and {fences} fencings in {time.monotonic() - started:.1f}s; history {counts}; "
          f"producers replaced {workload.replaced}, client errors retried or recovered {workload.client_errors}")
    assert faults >= 10
    assert workload.replaced >= 1, "no writer was fenced"
    assert counts[OK] >= 40 and counts.get(FAIL, 0) >= 10, counts
