"""Running a compaction job in a child process, so the copy does not hold the broker's GIL.

Theory of operation
-------------------
Decoding and re-encoding records is pure Python.  In a thread of the broker
process it competes with the event loop for the GIL: measured with
benchmarks/compaction.py, produce latency p50 went from ~0.9 ms to ~10 ms while
a thread cleaned.  So the broker runs each job in a child process:

1. the parent (on its event loop) starts ``python -m kavka.log.cleaner_process``
   with the job's segment fds passed down (``pass_fds``: the same numbers in
   the child, and the parent keeps them open until the job ends, so a segment
   deleted meanwhile stays readable) and writes the pickled job to its stdin;
2. the child runs kavka.log.compactor.compact, which writes and fsyncs the
   ``*.cleaned`` segments (log, both indexes, and the ``.txnindex`` when it
   keeps aborted transactions), and writes a pickled
   summary to stdout: the groups (first source index, count, base offset),
   the map end, the counters;
3. the parent reopens each cleaned segment from its files (the indexes are
   trusted after Segment.open's consistency check) and installs them as usual.

A child that fails or is killed (broker shutdown) leaves only ``*.cleaned``
files, which the parent removes (and an opening log would too).  A child whose
broker died (``kill -9``: nobody kills the child) notices that it was
reparented within PARENT_POLL_SECONDS, stops and removes its own files, so it
does not race the restarted broker's cleaner for the same ``*.cleaned`` names.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import kavka
from kavka.clock import Clock, ManualClock
from kavka.log.compactor import CleanedGroup, CleanerAborted, CleanJob, CleanResult, compact
from kavka.log.errors import LogError
from kavka.log.file_slice import FileSlice
from kavka.log.partition_dir import CLEANED_SUFFIX
from kavka.log.segment import Segment


class CleanerFailed(LogError):
    """The child process failed; the message ends with its last lines of stderr."""


def portable(job: CleanJob) -> CleanJob:
    """The job without the fd owners (not picklable); the parent keeps ``job`` alive meanwhile."""
    return replace(job, segments=tuple(replace(s, data=FileSlice(s.data.fd, s.data.position, s.data.size))
                                       for s in job.segments))


class ChildRun:
    """One job in one child process; :meth:`kill` stops it (broker shutdown)."""

    def __init__(self, job: CleanJob, clock: Clock) -> None:
        self.job = job
        self._clock = clock
        self._process: asyncio.subprocess.Process | None = None

    async def run(self) -> CleanResult:
        fds = sorted({s.data.fd for s in self.job.segments})
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kavka.log.cleaner_process", str(os.getpid()), stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, pass_fds=fds, env=_child_env())
        out, err = await self._process.communicate(pickle.dumps(portable(self.job)))
        if self._process.returncode != 0:
            remove_cleaned(self.job.path)
            tail = err.decode("utf-8", "replace").strip().splitlines()[-3:]
            raise CleanerFailed(f"cleaner process exited with {self._process.returncode}: {' | '.join(tail)}")
        return self._reopen(pickle.loads(out))

    def _reopen(self, summary: dict) -> CleanResult:
        """CleanResult from the child's summary (plain data: the child runs as ``__main__``)."""
        result = CleanResult(summary["map_end"], next_horizon=summary["next_horizon"], **summary["counters"])
        try:
            for first, count, base in summary["groups"]:
                segment = Segment.open(self.job.path, base, self.job.config, self._clock, suffix=CLEANED_SUFFIX)
                result.groups.append(CleanedGroup(first, count, segment))
        except BaseException:
            result.discard()
            remove_cleaned(self.job.path)
            raise
        return result

    async def kill(self) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            process.kill()
            await process.wait()
        remove_cleaned(self.job.path)


def remove_cleaned(directory: Path) -> None:
    """Unlink every ``*.cleaned`` file of a partition (one job at a time runs per broker)."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:  # the partition was deleted
        return
    for name in names:
        if name.endswith(CLEANED_SUFFIX):
            try:
                os.unlink(directory / name)
            except FileNotFoundError:
                pass


def _child_env() -> dict[str, str]:
    """The parent's environment, with kavka's own directory first on PYTHONPATH."""
    env = dict(os.environ)
    here = str(Path(kavka.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([here] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


PARENT_POLL_SECONDS = 0.05
ORPHANED = 3  # exit status of a child whose broker died (it removed its own files)


def _watch_parent(broker: int | None, stop: threading.Event) -> None:
    """Set ``stop`` once the broker that started us is gone (we were reparented, or its
    PID no longer exists): a ``kill -9`` of the broker must not leave us writing
    ``*.cleaned`` files into a partition that a restarted broker (and its own
    cleaner) already uses."""
    parent = os.getppid()
    while not stop.is_set():
        if os.getppid() != parent or (broker is not None and not _exists(broker)):
            stop.set()
            return
        time.sleep(PARENT_POLL_SECONDS)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _unlink(paths) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def main() -> None:
    broker = int(sys.argv[1]) if len(sys.argv) > 1 else None
    orphaned = threading.Event()
    threading.Thread(target=_watch_parent, args=(broker, orphaned), name="kavka-parent", daemon=True).start()
    job: CleanJob = pickle.loads(sys.stdin.buffer.read())
    try:
        result = compact(job, ManualClock(job.now_ms), orphaned)
    except CleanerAborted:  # compact removed its files
        sys.exit(ORPHANED)
    groups, files = [], []
    for group in result.groups:
        groups.append((group.first, group.count, group.segment.base_offset))
        files += [group.segment.log_path, group.segment.offset_index.path, group.segment.time_index.path,
                  group.segment.txn_index.path]
        group.segment.close()  # fsynced by compact
    counters = dict(bytes_read=result.bytes_read, bytes_cleaned=result.bytes_cleaned,
                    bytes_written=result.bytes_written, records_read=result.records_read,
                    records_kept=result.records_kept, seconds=result.seconds,
                    undecodable=result.undecodable, undecodable_reason=result.undecodable_reason)
    summary = dict(map_end=result.map_end, groups=groups, counters=counters, next_horizon=result.next_horizon)
    try:
        if orphaned.is_set():
            raise BrokenPipeError
        sys.stdout.buffer.write(pickle.dumps(summary))
        sys.stdout.buffer.flush()
    except BrokenPipeError:  # nobody will install these
        _unlink(files)
        sys.exit(ORPHANED)


if __name__ == "__main__":
    main()
