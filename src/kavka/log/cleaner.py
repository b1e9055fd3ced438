"""The compaction cleaner: which log to clean next, and cleaning it beside live traffic.

Theory of operation
-------------------
A partition whose ``cleanup.policy`` contains ``compact`` is a candidate.  Its
offsets, in Kafka's terms:

* first dirty offset: the ``cleaner-offset-checkpoint`` file of the partition
  (written after each cleaning), raised to the log start offset; a checkpoint
  beyond the active segment (a truncation) falls back to the log start offset.
* first uncleanable offset: the lowest of the active segment's base offset (the
  active segment is never cleaned), the last stable offset (at most the high
  watermark: an open transaction's records are never cleaned), and the base offset of
  the first dirty segment whose largest timestamp is younger than
  ``min.compaction.lag.ms``.
* dirty bytes: segments overlapping [first dirty, first uncleanable); clean
  bytes: segments wholly below the first dirty offset.

It is cleanable when it has dirty bytes and either ``dirty / (clean + dirty)``
reaches ``min.cleanable.dirty.ratio`` or its first dirty batch is older than
``max.compaction.lag.ms``; or when a tombstone kept by the last cleaning has
reached its delete horizon (remembered in memory only: after a restart the
next cleaning drops such tombstones).  Among the cleanable logs the cleaner
takes the ones past their max lag or horizon first, then the dirtiest.

One cleaning, three phases:

1. on the event loop, :meth:`LogCleaner.choose` snapshots the job: the closed
   segments as file slices (which keep their fds open), the offsets, the last
   batch of each producer, the aborted transactions from the ``.txnindex``
   files (what compaction does with transactions: kavka.log.txn_cleaning);
2. in a child process (kavka.log.cleaner_process; a worker thread when
   ``use_process`` is off, as in tests), kavka.log.compactor builds the offset
   map and writes fsynced ``*.cleaned`` segments — produce and fetch go on;
3. on the event loop, :meth:`LogCleaner.install` swaps each cleaned segment in
   (PartitionLog.replace_segments, crash-safe through ``*.swap``), then writes
   the checkpoint.  A swap whose old segments vanished meanwhile (retention,
   DeleteRecords, topic deletion) is dropped with its files and the checkpoint
   stays, so the range is cleaned again later.

Crash at any step: ``*.cleaned`` files are deleted and ``*.swap`` files
completed when the partition opens (kavka.log.partition_dir); a lost
checkpoint only means cleaning the same range again.  Either way every
surviving record is one of the originals at its original offset, and each
key's newest record is among them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from dataclasses import dataclass
from typing import Callable

from kavka.clock import Clock
from kavka.config import LONG_MAX, BrokerConfig
from kavka.log import checkpoint
from kavka.log.cleaner_process import ChildRun
from kavka.log.compactor import CleanJob, CleanResult, SourceSegment, compact, discard_segment
from kavka.log.partition import Partition
from kavka.log.partition_dir import CLEANER_OFFSET_FILE
from kavka.log.txn_cleaning import ProducerTail

log = logging.getLogger("kavka.log.cleaner")

ENTRY_COST = 128  # bytes of memory per offset-map entry (a dict of 16-byte keys), for the dedupe buffer size


@dataclass(frozen=True, slots=True)
class Cleanable:
    """How dirty one compacted partition is (see the module doc)."""

    first_dirty: int
    first_uncleanable: int
    clean_bytes: int
    dirty_bytes: int
    overdue: bool  # max.compaction.lag.ms passed, or a tombstone's delete horizon did

    @property
    def ratio(self) -> float:
        total = self.clean_bytes + self.dirty_bytes
        return self.dirty_bytes / total if total else 0.0


def read_checkpoint(partition: Partition) -> int | None:
    return checkpoint.read_offset(partition.log.path / CLEANER_OFFSET_FILE)


def measure(partition: Partition, now_ms: int, horizon: int | None = None) -> Cleanable:
    """First dirty/uncleanable offsets and byte counts of a compacted partition."""
    plog, config = partition.log, partition.config
    segments = plog.segments
    active_base = segments[-1].base_offset
    first_dirty = max(read_checkpoint(partition) or 0, plog.log_start_offset)
    if first_dirty > active_base:
        first_dirty = plog.log_start_offset
    end = min(active_base, plog.last_stable_offset)
    dirty = [s for s in segments[:-1] if s.next_offset > first_dirty and s.base_offset < end]
    min_lag = config["min.compaction.lag.ms"]
    for segment in dirty:
        if min_lag > 0 and segment.largest_timestamp_ms > now_ms - min_lag:
            end = min(end, segment.base_offset)
            break
    dirty = [s for s in dirty if s.base_offset < end]
    end = max(end, first_dirty)
    overdue = horizon is not None and now_ms >= horizon
    max_lag = config["max.compaction.lag.ms"]
    if dirty and max_lag < LONG_MAX:
        first_ts = dirty[0].first_batch_timestamp
        overdue |= first_ts is not None and first_ts >= 0 and now_ms - first_ts > max_lag
    clean = sum(s.size for s in segments[:-1] if s.next_offset <= first_dirty)
    return Cleanable(first_dirty, end, clean, sum(s.size for s in dirty), overdue)


def is_cleanable(partition: Partition, found: Cleanable) -> bool:
    if found.overdue:
        return len(partition.log.segments) > 1
    return found.dirty_bytes > 0 and found.ratio >= partition.config["min.cleanable.dirty.ratio"]


class LogCleaner:
    """Chooses and cleans compacted partitions of a LogManager, one at a time."""

    def __init__(self, logs, config: BrokerConfig, clock: Clock, use_process: bool = True) -> None:
        self._logs = logs
        self.use_process = use_process
        self._child: ChildRun | None = None
        self._clock = clock
        self._config = config
        self._horizons: dict[tuple[str, int], int] = {}
        self._abort = threading.Event()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._running: concurrent.futures.Future | None = None
        self.cleanings = 0

    # -- choosing --------------------------------------------------------------------------

    def choose(self, now_ms: int) -> tuple[Partition, list, CleanJob] | None:
        """The partition to clean now with its job, or None (on the event loop)."""
        best = None
        for partition in self._logs.partitions():
            if not partition.config.compacted:
                continue
            found = measure(partition, now_ms, self._horizons.get((partition.topic, partition.index)))
            if is_cleanable(partition, found):
                rank = (found.overdue, found.ratio)
                if best is None or rank > best[0]:
                    best = (rank, partition, found)
        if best is None:
            return None
        _, partition, found = best
        return partition, *self._job(partition, found, now_ms)

    @property
    def max_map_entries(self) -> int:
        """Offset-map entries of one run: log.cleaner.dedupe.buffer.size times
        log.cleaner.io.buffer.load.factor, read at each run (both change live)."""
        config = self._config
        buffer = config.get("log.cleaner.dedupe.buffer.size") * config.get("log.cleaner.io.buffer.load.factor")
        return max(1, int(buffer) // ENTRY_COST)

    def _job(self, partition: Partition, found: Cleanable, now_ms: int) -> tuple[list, CleanJob]:
        plog = partition.log
        olds = [s for s in plog.segments[:-1] if s.base_offset < found.first_uncleanable]
        if found.overdue and not olds:
            olds = plog.segments[:-1]
        tails = {pid: ProducerTail(entry.batches[-1].last_offset if entry.batches else -1, entry.epoch)
                 for pid, entry in partition.producers.producers.items()}
        aborted = tuple(plog.aborted_txns_overlapping(olds[0].base_offset, olds[-1].next_offset)) if olds else ()
        job = CleanJob(partition.topic, partition.index, plog.path, partition.config,
                       tuple(SourceSegment(s.base_offset, s.next_offset, s.whole_slice()) for s in olds),
                       found.first_dirty, found.first_uncleanable, now_ms, tails, self.max_map_entries, aborted)
        return olds, job

    # -- installing ------------------------------------------------------------------------

    def install(self, partition: Partition, olds: list, job: CleanJob, result: CleanResult,
                hook: Callable[[str], None] | None = None) -> bool:
        """Swap the cleaned segments in and advance the checkpoint (on the event loop)."""
        groups, result.groups = result.groups, []
        alive = self._logs.partition(job.topic, job.partition) is partition
        for group in groups:
            old = olds[group.first:group.first + group.count]
            if alive and partition.log.replace_segments(old, group.segment, hook):
                continue
            alive = False
            discard_segment(group.segment)
        if not alive:
            log.info("%s-%d: segments changed while cleaning; will clean again", job.topic, job.partition)
            return False
        checkpoint.write_offset(partition.log.path / CLEANER_OFFSET_FILE, result.map_end)
        if hook is not None:
            hook("checkpoint")
        key = (job.topic, job.partition)
        if result.next_horizon is None:
            self._horizons.pop(key, None)
        else:
            self._horizons[key] = result.next_horizon
        self.cleanings += 1
        _report(job, result)
        return True

    # -- running ---------------------------------------------------------------------------

    def clean_once(self, now_ms: int | None = None, hook: Callable[[str], None] | None = None) -> CleanResult | None:
        """Choose, compact and install in the calling thread (tests, tools)."""
        chosen = self.choose(self._clock.now_ms() if now_ms is None else now_ms)
        if chosen is None:
            return None
        partition, olds, job = chosen
        result = compact(job, self._clock, self._abort, hook)
        self.install(partition, olds, job, result, hook)
        return result

    async def run_once(self) -> CleanResult | None:
        """One cleaning with the copy outside the event loop; None when nothing is cleanable.

        In a child process by default (kavka.log.cleaner_process: no GIL shared
        with the loop), else in a worker thread."""
        chosen = self.choose(self._clock.now_ms())
        if chosen is None:
            return None
        partition, olds, job = chosen
        if self.use_process:
            self._child = ChildRun(job, self._clock)
            try:
                result = await self._child.run()
            except asyncio.CancelledError:
                raise  # the child may still run: close() kills it and removes its files
            except BaseException:
                self._child = None
                raise
            self._child = None
        else:
            result = await self._in_thread(job)
        self.install(partition, olds, job, result)
        return result

    async def _in_thread(self, job: CleanJob) -> CleanResult:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kavka-cleaner")
        self._running = self._executor.submit(compact, job, self._clock, self._abort)
        try:
            return await asyncio.wrap_future(self._running)
        except asyncio.CancelledError:
            raise  # the worker may still run: close() waits for it and drops its files
        finally:
            if self._running is not None and self._running.done():
                self._running = None

    async def close(self) -> None:
        """Stop a cleaning in progress and drop its files; call before closing the logs."""
        self._abort.set()
        child, self._child = self._child, None
        if child is not None:
            await child.kill()
        running, self._running = self._running, None
        if running is not None and not running.cancelled():
            try:
                result = await asyncio.wrap_future(running)
            except (Exception, concurrent.futures.CancelledError):  # aborted or failed: it removed its files
                result = None
            if result is not None:
                result.discard()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


def _report(job: CleanJob, result: CleanResult) -> None:
    if result.undecodable:
        log.warning("%s-%d: %d batch(es) kept as they are because their records do not decode; first: %s",
                    job.topic, job.partition, result.undecodable, result.undecodable_reason)
    rate = result.bytes_read / result.seconds / 1e6 if result.seconds > 0 else 0.0
    log.info("%s-%d: cleaned up to offset %d: %d of %d records kept, %d -> %d bytes in %.3f s (%.1f MB/s)",
             job.topic, job.partition, result.map_end, result.records_kept, result.records_read,
             result.bytes_read, result.bytes_written, result.seconds, rate)
