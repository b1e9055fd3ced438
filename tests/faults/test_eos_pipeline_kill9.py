"""Exactly-once consume-transform-produce (eos_pipeline.py) on a lone broker process that is
kill -9ed and restarted twelve times, and twice a producer with a worker's transactional id
fences the worker (whose open transaction is aborted and whose batch must be processed
again).  At the end SINK holds every input exactly once under read_committed, per key in
order, and no aborted write.

The test needs TxnOffsetCommit; it is skipped when the broker does not advertise it
(ApiVersions, asked at run time).
"""

from __future__ import annotations

import random
import time

import pytest

from broker_process import create_topic
from eos_pipeline import PARTITIONS, SINK, SOURCE, TXN_OFFSET_COMMIT, Pipeline, advertised_api_keys
from txn_workload import inject_faults, kill9_restart

pytestmark = pytest.mark.slow   # 12 kill -9s under an exactly-once pipeline (~50 s)

FAULTS = 12
FENCED_AT = {4, 8}    # faults after which a producer with a worker's transactional id fences it


def test_exactly_once_pipeline_while_the_broker_is_killed(broker_process):
    bootstrap = broker_process.bootstrap_servers
    if TXN_OFFSET_COMMIT not in advertised_api_keys(bootstrap):
        pytest.skip("the broker does not advertise TxnOffsetCommit (api key 28)")
    create_topic(bootstrap, SOURCE, PARTITIONS)
    create_topic(bootstrap, SINK, PARTITIONS)
    rng = random.Random(447)
    pipeline = Pipeline(bootstrap).start()
    started = time.monotonic()
    faults, fences = inject_faults(lambda: kill9_restart(broker_process, rng), bootstrap, pipeline.tids, rng,
                                   FAULTS, FENCED_AT, pause=(1.0, 3.0))
    figures = pipeline.finish_and_check()
    print(f"{faults} kill -9s and {fences} fencings in {time.monotonic() - started:.1f}s; {figures}")
    assert faults >= 10 and figures["inputs"] >= 1000
    assert sum(figures["committed"]) >= 50 and sum(figures["aborted"]) >= 3, figures
    assert sum(figures["replaced"]) >= 1, "no worker was fenced"
