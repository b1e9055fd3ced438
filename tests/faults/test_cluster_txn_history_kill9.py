"""The transactional history check (txn_history.py) on a 3-broker cluster whose brokers are
SIGKILLed and restarted: the workload and checker of test_txn_history_kill9.py, unchanged.

Data topic of 4 partitions (RF=3, min ISR 2), ``__transaction_state`` with 3 partitions
(RF=3, min ISR 2).  Ten faults, alternately the transaction coordinator of a random writer's
id (FindCoordinator key type 1) and the leader of a random data partition, each killed with
kill -9 and restarted after 0.5-3 s (so leadership moves when the etcd session expired, or
the broker is back before that); twice a writer is fenced by a second producer with its id.
Each fault waits for full ISRs first, so min ISR 2 holds through the next kill.  The checker
must find no anomaly.
"""

from __future__ import annotations

import random
import time

import pytest

from cluster_process import find_coordinator, process_cluster, wait_for  # noqa: F401 (fixture)
from kavka.internal_topics import TRANSACTION_STATE_TOPIC
from txn_history import FAIL, OK
from txn_workload import Workload, inject_faults

pytestmark = pytest.mark.slow   # a 3-process cluster, ten broker kill -9s under transactions (~90 s)

TOPIC = "txn-history-cluster"
PARTITIONS = 4
TXN_PARTITIONS = 3
FAULTS = 10
FENCED_AT = {3, 7}


def full_isrs(cluster) -> None:
    for p in range(PARTITIONS):
        cluster.wait_isr(TOPIC, p, size=3, timeout=40)
    for p in range(TXN_PARTITIONS):
        cluster.wait_isr(TRANSACTION_STATE_TOPIC, p, size=3, timeout=40)


@pytest.mark.timeout(420)
def test_cluster_history_while_brokers_are_killed(process_cluster):  # noqa: F811
    cluster = process_cluster(3, overrides={"transaction.state.log.num.partitions": TXN_PARTITIONS})
    cluster.create_topic(TOPIC, PARTITIONS, 3, {"min.insync.replicas": "2"})
    rng = random.Random(3)
    workload = Workload(cluster.bootstrap, TOPIC, PARTITIONS, seed=3).start()
    workload.wait_for_commits(20, timeout=60)
    victims: list[str] = []

    def ready() -> None:
        full_isrs(cluster)
        workload.wait_for_commits(3, timeout=60)

    def fault() -> None:
        if len(victims) % 2 == 0:
            tid = rng.choice(workload.tids)
            victim = wait_for(lambda: find_coordinator(cluster, tid, 1), 30, f"the coordinator of {tid}")
            victims.append(f"{victim} (coordinator of {tid})")
        else:
            partition = rng.randrange(PARTITIONS)
            victim = wait_for(lambda: cluster.leader_of(TOPIC, partition), 30, f"the leader of {TOPIC}-{partition}")
            victims.append(f"{victim} (leader of {TOPIC}-{partition})")
        broker = cluster.brokers[victim]
        broker.kill9()
        time.sleep(rng.uniform(0.5, 3.0))
        broker.restart()

    started = time.monotonic()
    faults, fences = inject_faults(fault, cluster.bootstrap, workload.tids, rng, FAULTS, FENCED_AT,
                                   pause=(0.2, 1.5), ready=ready)
    full_isrs(cluster)
    workload.wait_for_commits(10, timeout=60)
    counts = workload.finish_and_check(stable_timeout=90)
    print(f"{faults} kill -9s ({', '.join(victims)}) and {fences} fencings in {time.monotonic() - started:.1f}s; "
          f"history {counts}; producers replaced {workload.replaced}, client errors {workload.client_errors}")
    assert faults >= 10
    assert counts[OK] >= 40 and counts.get(FAIL, 0) >= 10, counts
