"""A transaction whose markers are written but whose CompleteCommit cannot be, at first, on
three in-process brokers.

The coordinator's ``__transaction_state`` partition refuses writes for a while right after
the markers went out (its ISR below ``min.insync.replicas``, as when the other replicas are
killed or paused in tests/faults/test_cluster_eos_pipeline_faults.py).  Kafka's coordinator
retries that append (TransactionMarkerChannelManager, COORDINATOR_NOT_AVAILABLE); so must
kavka's, else the id stays in PrepareCommit and every later AddPartitionsToTxn /
AddOffsetsToTxn of the producer is CONCURRENT_TRANSACTIONS until the client gives up.
"""

from __future__ import annotations

import asyncio

import pytest

from admin_targets import wait_until
from test_cluster_transactions import cluster, find_coordinator, producer, read_all, send  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(120)

REFUSED_S = 1.5


def test_the_completion_is_written_once_the_state_partition_takes_writes_again(cluster):  # noqa: F811
    brokers = cluster
    tid = "tx-completion-retried"
    p = producer(brokers, tid)
    coordinator = brokers[find_coordinator(brokers, tid)]
    runner = coordinator.transactions
    journal = runner.coordinator.journal
    write_markers = runner.write_markers
    refusing = {"on": False}

    async def markers_then_refuse(job):
        answers = await write_markers(job)
        refusing["on"] = True     # the ISR shrinks just after the markers: the completion is refused ...
        asyncio.get_running_loop().call_later(REFUSED_S, refusing.update, {"on": False})   # ... for a while
        return answers

    writable = journal._writable
    coordinator.call(lambda: setattr(journal, "_writable", lambda index: not refusing["on"] and writable(index)))
    coordinator.call(lambda: setattr(runner, "write_markers", markers_then_refuse))
    p.begin_transaction()
    first = send(p, "first", 9)
    p.commit_transaction(30)
    coordinator.call(lambda: setattr(runner, "write_markers", write_markers))

    def state():
        return coordinator.call(lambda: runner.query(lambda c: c.describe(tid)))[1].state.kafka_name

    wait_until(lambda: state() == "CompleteCommit", 20, "the transaction completed")
    p.begin_transaction()          # the next transaction is not CONCURRENT_TRANSACTIONS for ever
    second = send(p, "second", 6)
    p.commit_transaction(30)
    assert sorted(read_all(brokers, "read_committed", 15)) == sorted(first + second)
    wait_until(lambda: coordinator.call(lambda: runner.pending_markers) == 0, 10, "no marker job left")
