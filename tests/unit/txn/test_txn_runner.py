"""The asyncio side: markers after durability, retried until written, then completion;
answers held until replication; timeouts fire from one timer."""

from __future__ import annotations

import asyncio

from kavka.protocol.errors import ErrorCode as E
from kavka.txn.coordinator import TxnConfig
from kavka.txn.model import TxnState
from kavka.txn.runner import TxnRunner

from txn_helpers import make_coordinator

TP, TP2 = ("orders", 0), ("orders", 1)


class Markers:
    """Records every write; ``failures[tp]`` answers that many times with an error first."""

    def __init__(self, failures=None, answer=E.not_leader_or_follower):
        self.writes = []
        self.failures = dict(failures or {})
        self.answer = answer

    async def __call__(self, job):
        self.writes.append((job.commit, job.producer_epoch, sorted(job.partitions)))
        results = {}
        for tp in job.partitions:
            if self.failures.get(tp, 0) > 0:
                self.failures[tp] -= 1
                results[tp] = self.answer
            else:
                results[tp] = E.none
        return results


async def settle(runner, rounds=50):
    for _ in range(rounds):
        if not runner.pending_markers:
            return
        await asyncio.sleep(0.005)


def begin(runner, tid="t1", partitions=(TP, TP2), timeout_ms=60_000):
    reply = runner.run(lambda c: c.init_producer_id(tid, timeout_ms))
    runner.run(lambda c: c.add_partitions(tid, reply.producer_id, reply.producer_epoch, partitions))
    return reply


def test_a_commit_writes_its_markers_retries_the_failed_partition_and_completes():
    coordinator, _, _ = make_coordinator()
    markers = Markers(failures={TP2: 2})

    async def scenario():
        runner = TxnRunner(coordinator, markers, retry_backoff_s=0.001)
        p = begin(runner)
        reply = runner.run(lambda c: c.end_txn("t1", p.producer_id, 0, commit=True))
        assert reply.error == E.none
        await settle(runner)
        assert coordinator.ids["t1"].state == TxnState.COMPLETE_COMMIT
        assert markers.writes == [(True, 0, [TP, TP2]), (True, 0, [TP2]), (True, 0, [TP2])]
        runner.close()

    asyncio.run(scenario())


def test_a_deleted_partition_needs_no_marker():
    coordinator, _, _ = make_coordinator()
    markers = Markers(failures={TP: 1}, answer=E.unknown_topic_or_partition)

    async def scenario():
        runner = TxnRunner(coordinator, markers, retry_backoff_s=0.001)
        p = begin(runner)
        runner.run(lambda c: c.end_txn("t1", p.producer_id, 0, commit=False))
        await settle(runner)
        assert coordinator.ids["t1"].state == TxnState.COMPLETE_ABORT and len(markers.writes) == 1
        runner.close()

    asyncio.run(scenario())


def test_in_a_cluster_answers_and_markers_wait_for_replication_and_a_failure_is_not_coordinator():
    coordinator, _, _ = make_coordinator()
    markers = Markers()
    gate = {"error": E.none}

    async def scenario():
        release = asyncio.Event()

        async def replicated(written):
            await release.wait()
            return gate["error"]

        runner = TxnRunner(coordinator, markers, replicated=replicated, retry_backoff_s=0.001)
        init = runner.run(lambda c: c.init_producer_id("t1", 60_000))
        assert isinstance(init, asyncio.Future) and not init.done()
        release.set()
        p = await init
        await runner.run(lambda c: c.add_partitions("t1", p.producer_id, 0, [TP]))
        release.clear()
        end = runner.run(lambda c: c.end_txn("t1", p.producer_id, 0, commit=True))
        await asyncio.sleep(0.01)
        assert markers.writes == [], "no marker before the Prepare record is replicated"
        gate["error"] = E.request_timed_out
        release.set()
        assert (await end).error == E.not_coordinator
        assert markers.writes == []
        runner.close()

    asyncio.run(scenario())


def test_a_write_that_does_not_replicate_is_undone_and_the_retry_succeeds():
    """As Kafka drops a pending transition whose append failed: after a commit whose
    PrepareCommit did not replicate the transaction is Ongoing again, so the client's
    retried EndTxn prepares it anew (rather than hearing CONCURRENT_TRANSACTIONS for ever)."""
    coordinator, _, _ = make_coordinator()
    markers = Markers()
    gate = {"error": E.none}

    async def scenario():
        async def replicated(written):
            return gate["error"]

        runner = TxnRunner(coordinator, markers, replicated=replicated, retry_backoff_s=0.001)
        p = await runner.run(lambda c: c.init_producer_id("t1", 60_000))
        await runner.run(lambda c: c.add_partitions("t1", p.producer_id, 0, [TP]))
        gate["error"] = E.not_coordinator
        assert (await runner.run(lambda c: c.end_txn("t1", p.producer_id, 0, commit=True))).error == E.not_coordinator
        assert coordinator.ids["t1"].state == TxnState.ONGOING and markers.writes == []
        gate["error"] = E.coordinator_not_available     # too few replicas: said as such
        assert (await runner.run(lambda c: c.init_producer_id("t2", 60_000))).error == E.coordinator_not_available
        assert "t2" not in coordinator.ids, "an id whose first record failed is not kept"
        gate["error"] = E.none
        assert (await runner.run(lambda c: c.end_txn("t1", p.producer_id, 0, commit=True))).error == E.none
        await settle(runner)
        assert coordinator.ids["t1"].state == TxnState.COMPLETE_COMMIT and markers.writes == [(True, 0, [TP])]
        runner.close()

    asyncio.run(scenario())


def test_a_completion_that_cannot_be_written_or_replicated_is_written_again():
    """Markers written, but the CompleteCommit record is refused (too few in-sync replicas),
    then does not replicate: the runner writes it again until it sticks, as Kafka retries the
    append on COORDINATOR_NOT_AVAILABLE; the id does not stay in PrepareCommit, where every
    request of its producer would hear CONCURRENT_TRANSACTIONS."""
    coordinator, journal, _ = make_coordinator()
    markers = Markers()
    answers = []

    async def write_markers(job):
        journal.failing = True          # the markers' completion cannot be appended ...
        return await markers(job)

    async def scenario():
        async def replicated(written):
            return answers.pop(0) if answers else E.none

        runner = TxnRunner(coordinator, write_markers, replicated=replicated, retry_backoff_s=0.001)
        p = await runner.run(lambda c: c.init_producer_id("t1", 60_000))
        await runner.run(lambda c: c.add_partitions("t1", p.producer_id, 0, [TP]))
        assert (await runner.run(lambda c: c.end_txn("t1", p.producer_id, 0, commit=True))).error == E.none
        for _ in range(20):
            await asyncio.sleep(0.002)
        assert markers.writes == [(True, 0, [TP])]
        assert coordinator.ids["t1"].state == TxnState.PREPARE_COMMIT and runner.pending_markers == 1
        answers.append(E.coordinator_not_available)   # ... then is appended but not replicated
        journal.failing = False
        await settle(runner)
        assert coordinator.ids["t1"].state == TxnState.COMPLETE_COMMIT and not answers
        assert markers.writes == [(True, 0, [TP])], "the markers are not written again"
        reply = await runner.run(lambda c: c.add_partitions("t1", p.producer_id, 0, [TP2]))
        assert reply == {TP2: E.none}, "the next transaction starts"
        runner.close()

    asyncio.run(scenario())


def test_a_moved_coordinator_stops_completing():
    coordinator, journal, _ = make_coordinator()
    markers = Markers()

    async def write_markers(job):
        journal.failing = True
        return await markers(job)

    async def scenario():
        runner = TxnRunner(coordinator, write_markers, retry_backoff_s=0.001)
        p = begin(runner)
        runner.run(lambda c: c.end_txn("t1", p.producer_id, 0, commit=False))
        await asyncio.sleep(0.01)
        assert runner.pending_markers == 1
        journal.led.discard(journal.partition_for("t1"))   # the view moved the partition away
        await settle(runner)
        assert runner.pending_markers == 0, "no completion is retried for an id served elsewhere"
        runner.close()

    asyncio.run(scenario())


def test_unloading_the_partition_cancels_its_marker_jobs():
    coordinator, journal, _ = make_coordinator()
    markers = Markers(failures={TP: 10**6})

    async def scenario():
        runner = TxnRunner(coordinator, markers, retry_backoff_s=0.001)
        p = begin(runner, partitions=(TP,))
        runner.run(lambda c: c.end_txn("t1", p.producer_id, 0, commit=True))
        await asyncio.sleep(0.01)
        assert runner.pending_markers == 1
        runner.unload_partition(journal.partition_for("t1"))
        await asyncio.sleep(0.01)
        assert runner.pending_markers == 0 and "t1" not in coordinator.ids
        runner.close()

    asyncio.run(scenario())


def test_the_timer_aborts_a_timed_out_transaction_and_writes_its_abort_markers():
    coordinator, _, clock = make_coordinator(config=TxnConfig())
    markers = Markers()

    async def scenario():
        runner = TxnRunner(coordinator, markers, retry_backoff_s=0.001)
        begin(runner, timeout_ms=20)
        assert runner.timer.due == coordinator.next_deadline()
        clock.advance(20)
        await asyncio.sleep(0.05)   # the timer was armed for ~20 ms of real time
        await settle(runner)
        assert coordinator.ids["t1"].state == TxnState.COMPLETE_ABORT
        assert markers.writes == [(False, 1, [TP, TP2])]
        runner.close()

    asyncio.run(scenario())


def test_a_newer_epoch_in_the_partition_completes_and_a_newer_coordinator_gives_the_job_up():
    for answer, state in ((E.invalid_producer_epoch, TxnState.COMPLETE_COMMIT),
                          (E.transaction_coordinator_fenced, TxnState.PREPARE_COMMIT)):
        coordinator, _, _ = make_coordinator()
        markers = Markers(failures={TP: 1}, answer=answer)

        async def scenario():
            runner = TxnRunner(coordinator, markers, retry_backoff_s=0.001)
            p = begin(runner)
            runner.run(lambda c: c.end_txn("t1", p.producer_id, 0, commit=True))
            await settle(runner)
            assert coordinator.ids["t1"].state == state and len(markers.writes) == 1, answer
            runner.close()

        asyncio.run(scenario())
