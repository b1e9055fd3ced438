"""``kavka serve --durable``: fsync before a produce is acknowledged, group-committed.

Theory of operation
-------------------
Without it, an acknowledged batch is in the page cache only (as in Kafka with
its default flush settings): it survives ``kill -9`` but not a power cut or a
failed disk.  With ``kavka.flush.before.ack=true`` the produce handler appends
as usual and then, instead of answering, waits on :meth:`GroupCommit.sync`.

One flusher task per broker runs *rounds*.  A round takes every partition
appended to since the previous round began, and in a worker thread
``fdatasync``s the segment files that hold data written since that
partition's last round (normally only the active segment; also the partition's
directory after a roll or on its first round, and its log directory once, so
new files' names are durable too).  Every produce that asked before the round
began is then answered at once; produces arriving during a round wait for the
next one.  So under load one fsync covers many produces from many
connections, and the connection layer (kavka.server.connection) keeps reading a
pipelining producer's next requests while earlier ones wait, exactly as for
acks=all in a cluster.  Nothing waits on a timer: an idle broker fsyncs at once.

Index files are not synced: they are derived data that recovery rebuilds.

A failed fsync is a failed disk (kavka.log.log_dir): the log dir it failed in
goes offline (each log dir is synced on its own, so the right one is blamed),
and every produce waiting on the round gets KAFKA_STORAGE_ERROR; their batches are in the log but were never
acknowledged (a restart may keep them, as Kafka may keep a batch whose ack
was lost).

Consumers may read a batch before its round ends (the high watermark follows
the log end offset on a lone broker); what a consumer read may be lost by a
power cut before the fsync, as in Kafka with acks=1.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from bisect import bisect_right
from pathlib import Path

from kavka.log.errors import StorageError
from kavka.log.log_dir import LogDirHealth


class GroupCommit:
    """The broker's flusher; see the module doc.  Event-loop thread only."""

    def __init__(self) -> None:
        self._pending: dict[int, object] = {}            # id(partition) -> Partition, next round
        self._round: asyncio.Future | None = None        # result of the next round
        self._task: asyncio.Task | None = None
        self._synced: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Partition -> offset
        self._dirs_synced: set[Path] = set()  # log dirs whose new entries were synced once
        self.rounds = 0      # statistics, for tests and the benchmark
        self.requests = 0

    def sync(self, partitions) -> asyncio.Future:
        """A future of None once everything appended to ``partitions`` is on disk, or of
        the StorageError that kept it from getting there.  Await it through
        ``asyncio.shield``: the future is shared by every produce of a round."""
        loop = asyncio.get_running_loop()
        for partition in partitions:
            self._pending[id(partition)] = partition
        if self._round is None:
            self._round = loop.create_future()
        if self._task is None:
            self._task = loop.create_task(self._run(), name="kavka-group-commit")
        self.requests += 1
        return self._round

    async def _run(self) -> None:
        try:
            while self._round is not None:
                done, self._round = self._round, None
                pending, self._pending = self._pending, {}
                done.set_result(await self._one_round(list(pending.values())))
        finally:
            self._task = None

    async def _one_round(self, partitions: list) -> StorageError | None:
        plans = [self._plan(p) for p in partitions if not p.offline]
        groups = self._by_log_dir(plans)
        self.rounds += 1
        try:
            failed = await asyncio.to_thread(_sync_groups, groups)
        finally:
            del groups  # the slices kept the segments' fds open until now
        if failed is not None:
            health, exc = failed
            return health.failed(exc, "an fsync before acknowledging a produce to")
        self._dirs_synced.update(p.health.path for _, _, (p, _end) in plans)
        for _, _, (partition, end) in plans:
            self._synced[partition] = end
        return None

    def _by_log_dir(self, plans: list) -> list[tuple[LogDirHealth, list, list[Path]]]:
        """Per log dir (so a failure is blamed on the right one): its slices and directories
        to sync, the log dir itself on its first round."""
        groups: dict[int, tuple[LogDirHealth, list, set[Path]]] = {}
        for slices, dirs, (partition, _end) in plans:
            health = partition.health
            _, fds, paths = groups.setdefault(id(health), (health, [], set()))
            fds.extend(slices)
            paths.update(dirs)
            if health.path not in self._dirs_synced:
                paths.add(health.path)
        return [(health, fds, sorted(paths)) for health, fds, paths in groups.values()]

    def _plan(self, partition) -> tuple[list, list[Path], tuple]:
        """(slices holding the fds to sync, directories to sync, (partition, end offset))."""
        log = partition.log
        end = log.log_end_offset
        segments = log.segments
        synced = self._synced.get(partition)
        start = 0 if synced is None else max(0, bisect_right([s.base_offset for s in segments], synced) - 1)
        slices = [s.whole_slice() for s in segments[start:] if s.fd >= 0]
        dirs = [log.path] if synced is None or len(slices) > 1 else []
        return slices, dirs, (partition, end)

    async def close(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


def _sync_groups(groups: list[tuple[LogDirHealth, list, list[Path]]]) -> tuple[LogDirHealth, OSError] | None:
    """Sync every group (worker thread); the first failure's log dir and error, or None."""
    for health, slices, dirs in groups:
        try:
            _sync_all(slices, dirs)
        except OSError as exc:
            return health, exc
    return None


def _sync_all(slices, dirs: list[Path]) -> None:
    for piece in slices:
        os.fdatasync(piece.fd)
    for directory in dirs:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
