"""The directory of one partition: its layout, and what opening it finishes or repairs.

Theory of operation
-------------------
``<data_dir>/<topic>-<partition>/``::

    00000000000000000000.log / .index / .timeindex   segments by base offset (kavka.log.segment),
                                                     plus .txnindex when it has aborted transactions
    00000000000000052731.log / .index / .timeindex   the last one is the active segment
    recovery-point            offset below which every byte was fsynced
    log-start-offset          first readable offset, moved by retention and DeleteRecords
    cleaner-offset-checkpoint first offset the compaction cleaner has not cleaned yet (kavka.log.cleaner)
    leader-epoch-checkpoint   kavka.log.leader_epoch
    (files of other modules, e.g. producer snapshots, are left alone)

The checkpoints are one-line text files replaced atomically (kavka.log.checkpoint).

Opening after a crash (``load_segments`` with ``recover``): a segment whose
offsets all lie below the recovery point was fsynced and is trusted; every
other segment is re-validated batch by batch (``Segment.recover``) and cut at
the first torn or corrupt batch.  Segments after a cut would follow a hole, so
they are deleted.  Without a recovery-point file every segment is re-validated.
Closed segments that need no check are opened lazily (one stat; kavka.log.segment,
"Lazy open"); the active segment and every checked one are opened in full.

Leftovers of interrupted operations (``finish_leftovers``):

* ``*.deleted``: a deletion renamed the file and died before unlinking it: unlink.
* ``*.cleaned``: a cleaner's unfinished output: unlink (the originals are intact).
* ``NNN.log.swap``: a cleaner's finished and fsynced replacement for the
  segments from ``NNN`` up to its own end; the originals may be partly deleted
  already, so the swap is completed: renamed to ``NNN.log`` and the old
  segments it covers deleted.  Index ``*.swap`` files are dropped (rebuilt),
  except the ``.txnindex.swap``, which takes its place (it is not derived from
  the segment alone); without one, a ``.txnindex`` at ``NNN`` is the old
  segment's (its entries may name markers the cleaning removed, which would
  hide the producer's later records from read_committed readers) or the new
  one's already renamed (whose entries only cover batches the cleaning
  emptied), so it is deleted either way.
* checkpoint ``*.tmp``: an unfinished atomic write: unlink.
* an ``.index``/``.timeindex``/``.txnindex`` without its ``.log``: orphan of a deletion: unlink.
"""

from __future__ import annotations

import logging

import os
from pathlib import Path

from kavka.clock import Clock
from kavka.config import TopicConfig
from kavka.log import checkpoint
from kavka.log.leader_epoch import FILE_NAME as EPOCH_FILE
from kavka.log.segment import (
    DELETED_SUFFIX, INDEX_SUFFIX, LOG_SUFFIX, TIME_INDEX_SUFFIX, Segment, delete_segment_files, segment_path,
)
from kavka.log.txn_index import TXN_INDEX_SUFFIX

RECOVERY_POINT_FILE = "recovery-point"
LOG_START_OFFSET_FILE = "log-start-offset"
CLEANER_OFFSET_FILE = "cleaner-offset-checkpoint"
CLEANED_SUFFIX = ".cleaned"
SWAP_SUFFIX = ".swap"

__all__ = ["EPOCH_FILE", "RECOVERY_POINT_FILE", "LOG_START_OFFSET_FILE", "CLEANER_OFFSET_FILE", "SWAP_SUFFIX",
           "CLEANED_SUFFIX", "load_segments", "finish_leftovers", "segment_bases", "mtime_ns"]

log = logging.getLogger("kavka.log")


def segment_bases(path: Path) -> list[int]:
    """Base offsets of the segments in a partition directory (its ``.log`` files), ascending."""
    return sorted(int(name[:-len(LOG_SUFFIX)]) for name in os.listdir(path)
                  if name.endswith(LOG_SUFFIX) and name[:-len(LOG_SUFFIX)].isdigit())


def load_segments(path: Path, config: TopicConfig, clock: Clock, recover: bool,
                  recovery_point: int | None, verify_newer_than_ns: int | None = None) -> list[Segment]:
    """Open every segment; with ``recover``, re-validate those not wholly below the recovery point.

    A closed segment that needs no check (not re-validated, not modified after
    ``verify_newer_than_ns``) costs one ``stat`` here: it is opened lazily
    (``Segment.open_lazy``) and reads its indexes on first use.  The last segment
    (the active one) and every segment checked are opened as before.

    ``verify_newer_than_ns`` (the clean-shutdown marker's mtime) re-validates, on a
    clean start too, every segment whose ``.log`` was modified after it: something
    other than this broker wrote there while it was stopped.  A bad batch cuts the
    log there and deletes the segments after it, as Kafka's log recovery does (the
    offsets after a hole cannot be served in order)."""
    names = os.listdir(path)
    bases = sorted(int(name[:-len(LOG_SUFFIX)]) for name in names
                   if name.endswith(LOG_SUFFIX) and name[:-len(LOG_SUFFIX)].isdigit())
    txn_indexes = {name for name in names if name.endswith(TXN_INDEX_SUFFIX)}
    segments = []
    directory = str(path)
    for i, base in enumerate(bases):
        upper = bases[i + 1] if i + 1 < len(bases) else None
        unflushed = recovery_point is None or upper is None or upper > recovery_point
        if upper is not None and not (recover and unflushed):
            # A closed segment that is trusted: one stat now, the rest on first use.
            stat = os.stat(f"{directory}/{base:020d}{LOG_SUFFIX}")
            if verify_newer_than_ns is None or stat.st_mtime_ns < verify_newer_than_ns:
                segments.append(Segment.open_lazy(path, base, config, clock, stat.st_size, upper,
                                                  f"{base:020d}{TXN_INDEX_SUFFIX}" in txn_indexes))
                continue
        segment = Segment.open(path, base, config, clock)
        segments.append(segment)
        truncated = segment.truncated_on_open  # open() recovered it already (inconsistent indexes)
        if not truncated and ((recover and unflushed) or _modified_after(segment, verify_newer_than_ns)):
            truncated = segment.recover()
        if truncated:
            where, what = segment.recovery_problem or (segment.size, "torn or corrupt tail")
            log.warning("%s: %s at byte %d: %s; dropped %d bytes after offset %d",
                        path.name, segment.log_path.name, where, what, truncated, segment.next_offset)
        if truncated and upper is not None:
            for later in bases[i + 1:]:  # they follow a hole now
                log.warning("%s: deleting segment %d, which followed the damaged one", path.name, later)
                delete_segment_files(path, later)
            break
    return segments


def _modified_after(segment: Segment, ns: int | None) -> bool:
    # >=: file times come from the kernel's coarse clock (a tick of a few ms), so a
    # write just after the marker can carry the marker's own time.
    modified = None if ns is None else mtime_ns(segment.log_path)
    return modified is not None and modified >= ns


def mtime_ns(path: Path) -> int | None:
    """The file's last-modified time in ns, None if it does not exist."""
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return None


def finish_leftovers(path: Path, config: TopicConfig, clock: Clock) -> None:
    """Remove what interrupted deletions and writes left behind; complete swaps."""
    tmp_names = {f"{n}{checkpoint.TMP_SUFFIX}"
                 for n in (RECOVERY_POINT_FILE, LOG_START_OFFSET_FILE, CLEANER_OFFSET_FILE, EPOCH_FILE)}
    names = os.listdir(path)
    changed = False
    for name in names:
        if name.endswith((DELETED_SUFFIX, CLEANED_SUFFIX)) or name in tmp_names:
            os.unlink(path / name)
            changed = True
    for name in sorted(names):
        if name.endswith(LOG_SUFFIX + SWAP_SUFFIX) and name[:20].isdigit():
            _complete_swap(path, int(name[:20]), config, clock)
            changed = True
        elif name.endswith(SWAP_SUFFIX):
            (path / name).unlink(missing_ok=True)  # index swaps: indexes get rebuilt
            changed = True
    if changed:  # else the one listing serves (a clean directory: the usual start)
        names = os.listdir(path)
    logs = {int(name[:-len(LOG_SUFFIX)]) for name in names
            if name.endswith(LOG_SUFFIX) and name[:-len(LOG_SUFFIX)].isdigit()}
    for name in names:
        if (name.endswith((INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX)) and name[:20].isdigit()
                and int(name[:20]) not in logs):
            os.unlink(path / name)  # orphan of a segment whose .log is gone


def _complete_swap(path: Path, base: int, config: TopicConfig, clock: Clock) -> None:
    """A ``.log.swap`` is a finished, fsynced replacement for the segments it covers."""
    os.replace(path / f"{base:020d}{LOG_SUFFIX}{SWAP_SUFFIX}", segment_path(path, base, LOG_SUFFIX))
    for suffix in (INDEX_SUFFIX, TIME_INDEX_SUFFIX):
        segment_path(path, base, suffix).unlink(missing_ok=True)
    txn_swap = Path(f"{segment_path(path, base, TXN_INDEX_SUFFIX)}{SWAP_SUFFIX}")
    if txn_swap.exists():
        os.replace(txn_swap, segment_path(path, base, TXN_INDEX_SUFFIX))
    else:
        segment_path(path, base, TXN_INDEX_SUFFIX).unlink(missing_ok=True)
    segment = Segment.open(path, base, config, clock)
    end = segment.next_offset
    segment.close()
    for other in segment_bases(path):
        if base < other < end:
            delete_segment_files(path, other)
