"""Exactly-once consume-transform-produce (eos_pipeline.py) on a 3-broker cluster (RF=3, min
ISR 2 for SOURCE, SINK, ``__consumer_offsets`` and ``__transaction_state``) while the
transaction coordinators of the workers, the group coordinator and partition leaders are
killed, paused and cut off (the faults of test_cluster_txn_history_faults.py), twelve
faults, twice a worker fenced by a producer with its transactional id.  At the end SINK
holds every input exactly once under read_committed, per key in order, and no aborted write.
"""

from __future__ import annotations

import random
import time

import pytest

from cluster_faults import RotatingFaults, group_coordinator, partition_leader, txn_coordinator
from cluster_process import process_cluster  # noqa: F401 (fixture)
from eos_pipeline import GROUP, PARTITIONS, SINK, SOURCE, Pipeline
from kavka.internal_topics import OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC
from txn_workload import inject_faults

pytestmark = pytest.mark.slow   # a 3-process cluster, twelve kills, pauses and partitions (~100 s)

FAULTS = 12
FENCED_AT = {4, 8}
INTERNAL_PARTITIONS = 3


def full_isrs(cluster) -> None:
    for topic, partitions in ((SOURCE, PARTITIONS), (SINK, PARTITIONS), (TRANSACTION_STATE_TOPIC, INTERNAL_PARTITIONS),
                              (OFFSETS_TOPIC, INTERNAL_PARTITIONS)):
        for p in range(partitions):
            cluster.wait_isr(topic, p, size=3, timeout=40)


@pytest.mark.timeout(480)
def test_cluster_exactly_once_pipeline_under_faults(process_cluster):  # noqa: F811
    cluster = process_cluster(3, proxies=True, overrides={"transaction.state.log.num.partitions": INTERNAL_PARTITIONS})
    for topic in (SOURCE, SINK):
        cluster.create_topic(topic, PARTITIONS, 3, {"min.insync.replicas": "2"})
    rng = random.Random(448)
    bootstrap = cluster.advertised_bootstrap
    pipeline = Pipeline(bootstrap).start()
    fault = RotatingFaults(cluster, rng, [txn_coordinator(cluster, pipeline.tids, rng),
                                          group_coordinator(cluster, GROUP),
                                          partition_leader(cluster, [SOURCE, SINK], PARTITIONS, rng)])

    started = time.monotonic()
    faults, fences = inject_faults(fault, bootstrap, pipeline.tids, rng, FAULTS, FENCED_AT, pause=(1.0, 3.0),
                                   ready=lambda: full_isrs(cluster))
    full_isrs(cluster)
    figures = pipeline.finish_and_check(timeout=120)
    print(f"{faults} faults ({'; '.join(fault.done)}) and {fences} fencings in {time.monotonic() - started:.1f}s; {figures}")
    assert faults >= 10 and figures["inputs"] >= 1000
    assert sum(figures["committed"]) >= 30 and sum(figures["aborted"]) >= 2, figures
