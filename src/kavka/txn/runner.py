"""Asyncio glue for the transaction coordinator: answers after durability, markers, timers.

The coordinator is synchronous; :meth:`TxnRunner.run` applies one request and settles its
:class:`~kavka.txn.coordinator.TxnOutcome`:

* the reply is returned at once on a lone broker (the record is in the page cache, as an
  acknowledged produce is); in a cluster it waits until ``replicated(written)`` says the
  record reached the ISR; if it cannot, the ids it changed go back to their state before it
  (as Kafka drops a pending transition whose append failed) and the reply becomes
  NOT_COORDINATOR, or COORDINATOR_NOT_AVAILABLE when too few replicas took it (the client
  retries, finding the coordinator again);
* each :class:`~kavka.txn.coordinator.MarkerJob` starts only after that, in its own task:
  ``write_markers(job)`` writes the markers (the local partitions' logs, or WriteTxnMarkers
  to their leaders) and answers an error per partition; partitions that failed are retried
  every ``retry_backoff_s`` (a partition whose topic was deleted needs no marker), and when
  none is left :meth:`~kavka.txn.coordinator.TransactionCoordinator.markers_written`
  completes the transaction.  A job of a partition this broker stopped leading is cancelled:
  the new coordinator sends its markers again after replaying;
* one ``call_later`` timer is re-armed for the coordinator's earliest deadline (transaction
  timeouts, expiration checks) after every operation.

All of this runs on the broker's event loop thread, so requests never interleave.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from kavka.deadline_timer import DeadlineTimer
from kavka.protocol.errors import ErrorCode
from kavka.txn.coordinator import MarkerJob, TransactionCoordinator, TxnOutcome, failed_reply
from kavka.txn.model import TopicPartition

log = logging.getLogger("kavka.txn")

# Per-partition marker answers after which the partition needs no marker: written, the
# partition is gone, or it already holds a marker of a newer epoch (Kafka stops there too).
DONE = frozenset({ErrorCode.none, ErrorCode.unknown_topic_or_partition, ErrorCode.invalid_producer_epoch})
# A newer coordinator wrote to the partition: this one gives the job up (its successor,
# which replayed the transaction, completes it).
FENCED = ErrorCode.transaction_coordinator_fenced

WriteMarkers = Callable[[MarkerJob], Awaitable[dict[TopicPartition, ErrorCode]]]
Replicated = Callable[[list[tuple[int, int]]], Awaitable[ErrorCode]]


class TxnRunner:
    def __init__(self, coordinator: TransactionCoordinator, write_markers: WriteMarkers,
                 replicated: Replicated | None = None, retry_backoff_s: float = 0.1) -> None:
        self.coordinator = coordinator
        self.timer = DeadlineTimer(coordinator.next_deadline, coordinator.now,
                                   lambda: self._settle(coordinator.tick()), log, "transaction coordinator")
        self.write_markers = write_markers
        self.replicated = replicated
        self.retry_backoff_s = retry_backoff_s
        self._jobs: dict[int, set[asyncio.Task]] = {}     # journal partition -> marker tasks

    def run(self, operation: Callable[[TransactionCoordinator], TxnOutcome]) -> Any:
        """The reply of ``operation`` (a future of it while its records replicate)."""
        return self._settle(operation(self.coordinator))

    def query(self, read: Callable[[TransactionCoordinator], Any]) -> Any:
        return read(self.coordinator)

    def load_partition(self, index: int) -> None:
        self._settle(self.coordinator.load_partition(index))

    def unload_partition(self, index: int) -> None:
        for task in self._jobs.pop(index, set()):
            task.cancel()
        self.coordinator.unload_partition(index)
        self.timer.rearm()

    def close(self) -> None:
        for tasks in self._jobs.values():
            for task in tasks:
                task.cancel()
        self._jobs.clear()
        self.timer.cancel()

    @property
    def pending_markers(self) -> int:
        return sum(len(tasks) for tasks in self._jobs.values())

    # -- settling ----------------------------------------------------------------------------

    def _settle(self, out: TxnOutcome) -> Any:
        self.timer.rearm()
        if out.written and self.replicated is not None:
            return self._after_replication(out)
        for job in out.markers:
            self._start(job)
        return out.reply

    def _after_replication(self, out: TxnOutcome) -> "asyncio.Future":
        loop = asyncio.get_running_loop()
        answer = loop.create_future()

        async def release() -> None:
            error = await self.replicated(out.written)
            if error != ErrorCode.none:
                log.debug("records %s did not replicate (%s): reverted", [t for t, _ in out.records], error.name)
                self.coordinator.revert(out)
                self.timer.rearm()
                answer.set_result(failed_reply(out.reply, error if error == ErrorCode.coordinator_not_available
                                               else ErrorCode.not_coordinator))
                return
            for job in out.markers:
                self._start(job)
            answer.set_result(out.reply)

        self._track(-1, loop.create_task(release()))
        return answer

    def _start(self, job: MarkerJob) -> None:
        log.debug("markers of %r (producer %d epoch %d, %s, coordinator epoch %d) to %s", job.transactional_id,
                  job.producer_id, job.producer_epoch, "commit" if job.commit else "abort", job.coordinator_epoch,
                  sorted(job.partitions))
        partition = self.coordinator.journal.partition_for(job.transactional_id)
        self._track(partition, asyncio.get_running_loop().create_task(self._write(job)))

    def _track(self, partition: int, task: asyncio.Task) -> None:
        tasks = self._jobs.setdefault(partition, set())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _write(self, job: MarkerJob) -> None:
        remaining = job
        while remaining.partitions:
            try:
                results = await self.write_markers(remaining)
            except Exception:  # a bug must not leave the transaction in preparation for ever
                log.exception("writing markers of %r failed; retrying", job.transactional_id)
                results = {}
            if FENCED in results.values():
                log.warning("markers of %r: a newer coordinator wrote to %s; giving the transaction up",
                            job.transactional_id, sorted(tp for tp, e in results.items() if e == FENCED))
                return
            left = frozenset(tp for tp in remaining.partitions if results.get(tp) not in DONE)
            if left:
                log.debug("markers of %r: %d partitions to retry", job.transactional_id, len(left))
                await asyncio.sleep(self.retry_backoff_s)
            remaining = MarkerJob(job.transactional_id, job.producer_id, job.producer_epoch, job.commit,
                                  job.coordinator_epoch, left)
        log.debug("markers of %r (producer %d epoch %d) written", job.transactional_id, job.producer_id,
                  job.producer_epoch)
        await self._complete(job)

    async def _complete(self, job: MarkerJob) -> None:
        """Write the transaction's CompleteCommit/CompleteAbort; while that record cannot be
        appended or replicated (too few in-sync replicas, a replication timeout) and this
        coordinator still serves the id in that preparation, write it again after the backoff,
        as Kafka's TransactionMarkerChannelManager retries the append on
        COORDINATOR_NOT_AVAILABLE (else the id stays in preparation, every request of its
        producer answered CONCURRENT_TRANSACTIONS)."""
        while self.coordinator.awaits_completion(job):
            out = self.coordinator.markers_written(job)
            error = ErrorCode.coordinator_not_available
            if out.written:
                error = ErrorCode.none if self.replicated is None else await self.replicated(out.written)
                if error != ErrorCode.none:
                    self.coordinator.revert(out)
            self.timer.rearm()
            if error == ErrorCode.none:
                return
            log.info("completing the transaction of %r: %s; retrying", job.transactional_id, error.name)
            await asyncio.sleep(self.retry_backoff_s)
