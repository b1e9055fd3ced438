"""The transactional history check (txn_history.py) on a 3-broker cluster whose brokers are
killed, paused and cut off: the workload and checker of test_txn_history_kill9.py, unchanged.

Data topic of 4 partitions (RF=3, min ISR 2), ``__transaction_state`` with 3 partitions
(RF=3, min ISR 2); every broker behind TcpProxies (to etcd, and the listener the clients and
the other brokers use), so it can be cut off.  Twelve faults in turn on the transaction
coordinator of a random writer's id (FindCoordinator key type 1) or the leader of a random
data partition: kill -9 and a restart after 0.5-3 s (leadership moves when the etcd session
expired, or the broker is back before that), SIGSTOP for 1-4 s, a network partition (both
proxies cut) for 3-6 s; four times a writer is fenced by a second producer with its id.
Each fault waits for full ISRs first, so min ISR 2 holds through the next one.  The checker
must find no anomaly.
"""

from __future__ import annotations

import random
import time

import pytest

from cluster_faults import RotatingFaults, partition_leader, txn_coordinator
from cluster_process import process_cluster  # noqa: F401 (fixture)
from kavka.internal_topics import TRANSACTION_STATE_TOPIC
from txn_history import FAIL, OK
from txn_workload import Workload, inject_faults

pytestmark = pytest.mark.slow   # a 3-process cluster, twelve kills, pauses and partitions (~90 s)

TOPIC = "txn-history-cluster"
PARTITIONS = 4
TXN_PARTITIONS = 3
FAULTS = 12
FENCED_AT = {2, 5, 8, 11}


def full_isrs(cluster) -> None:
    for p in range(PARTITIONS):
        cluster.wait_isr(TOPIC, p, size=3, timeout=40)
    for p in range(TXN_PARTITIONS):
        cluster.wait_isr(TRANSACTION_STATE_TOPIC, p, size=3, timeout=40)


@pytest.mark.timeout(420)
def test_cluster_history_under_kills_pauses_and_partitions(process_cluster):  # noqa: F811
    cluster = process_cluster(3, proxies=True, overrides={"transaction.state.log.num.partitions": TXN_PARTITIONS})
    cluster.create_topic(TOPIC, PARTITIONS, 3, {"min.insync.replicas": "2"})
    rng = random.Random(3)
    bootstrap = cluster.advertised_bootstrap
    workload = Workload(bootstrap, TOPIC, PARTITIONS, seed=3).start()
    workload.wait_for_commits(20, timeout=60)
    fault = RotatingFaults(cluster, rng, [txn_coordinator(cluster, workload.tids, rng),
                                          partition_leader(cluster, [TOPIC], PARTITIONS, rng)])

    def ready() -> None:
        full_isrs(cluster)
        workload.wait_for_commits(3, timeout=60)

    started = time.monotonic()
    faults, fences = inject_faults(fault, bootstrap, workload.tids, rng, FAULTS, FENCED_AT, pause=(0.2, 1.5),
                                   ready=ready)
    full_isrs(cluster)
    workload.wait_for_commits(10, timeout=60)
    counts = workload.finish_and_check(stable_timeout=90)
    print(f"{faults} faults ({'; '.join(fault.done)}) and {fences} fencings in {time.monotonic() - started:.1f}s; "
          f"history {counts}; producers replaced {workload.replaced}, client errors {workload.client_errors}")
    assert faults >= 10
    assert counts[OK] >= 40 and counts.get(FAIL, 0) >= 10, counts
