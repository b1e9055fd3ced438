"""Moving a partition's directory to another log directory of this broker (AlterReplicaLogDirs).

Theory of operation
-------------------
Kafka copies a replica in the background (a "future" log fed by a
ReplicaAlterLogDirsThread) and swaps it in when caught up.  kavka does the same in two
steps:

1. :func:`precopy` copies ``<src>/<topic>-<p>/`` to ``<dest>/<topic>-<p>.<hex>-future/``
   while the partition keeps serving (in a worker thread: the event loop goes on); files
   that change meanwhile (the active segment, indexes, checkpoints) are fixed in step 2;
2. the caller closes the partition (flushed, snapshots written) and
   :func:`copy_to_future` brings the future up to date with the closed source: a file
   that only grew gets its new tail, a changed small file is copied again, a file that
   left the source (retention, compaction) leaves the future; then it syncs the
   destination's file system (every copied byte is durable).  Without a pre-copy it
   copies the whole directory;
3. :func:`swap_in` renames the source aside to ``<topic>-<p>.<hex>-delete``,
   renames the future to ``<dest>/<topic>-<p>`` (atomic within the destination),
   syncs both parents and removes the source;

and reopens the partition from the destination.  The partition is closed only for steps
2 and 3, whose work is what was written since the pre-copy began.

A crash at any step leaves one complete copy that :func:`resolve_futures`
(``LogManager.load``, before ``-delete`` directories are removed) keeps:

* a future while ``<topic>-<p>`` still exists in some log directory: the copy
  may be partial and the source is intact, so the future is removed;
* a future with no ``<topic>-<p>`` anywhere: the source was already renamed
  aside after the copy was synced, so the future is complete and is renamed into place.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import uuid
from pathlib import Path

from kavka.log.checkpoint import fsync_directory, sync_file_system

log = logging.getLogger("kavka.log")

FUTURE_SUFFIX = "-future"
DELETE_SUFFIX = "-delete"
_FUTURE = re.compile(r"(.+-\d+)\.[0-9a-f]{32}" + re.escape(FUTURE_SUFFIX))


def precopy(source: Path, dest_root: Path) -> Path:
    """Copy an open partition's directory into ``dest_root`` as a future (not yet durable,
    nor consistent: :func:`copy_to_future` finishes it once the partition is closed)."""
    future = dest_root / f"{source.name}.{uuid.uuid4().hex}{FUTURE_SUFFIX}"
    try:
        future.mkdir()
        for item in sorted(source.iterdir()):
            try:
                if item.is_file():
                    shutil.copy2(item, future / item.name)
            except FileNotFoundError:   # deleted meanwhile (retention, a finished compaction)
                continue
    except BaseException:
        shutil.rmtree(future, ignore_errors=True)
        raise
    return future


def copy_to_future(source: Path, dest_root: Path, precopied: Path | None = None) -> Path:
    """Copy a closed partition's directory into ``dest_root`` as a future, or bring the
    ``precopied`` one up to date with it; durable on return."""
    future = precopied or dest_root / f"{source.name}.{uuid.uuid4().hex}{FUTURE_SUFFIX}"
    try:
        if precopied is None:
            shutil.copytree(source, future)
        else:
            _catch_up(source, future)
        sync_file_system(future)
        fsync_directory(dest_root)
    except BaseException:
        shutil.rmtree(future, ignore_errors=True)
        raise
    return future


def _catch_up(source: Path, future: Path) -> None:
    """Make ``future`` hold exactly ``source``'s files.  Segment files only grow (or are
    replaced whole, with a new mtime), so a file that grew gets its new tail; anything else
    that differs in size or mtime is copied again."""
    wanted = {item.name: item for item in source.iterdir() if item.is_file()}
    for item in future.iterdir():
        if item.name not in wanted:
            item.unlink()
    for name, item in wanted.items():
        copy = future / name
        src_stat = item.stat()
        have = copy.stat() if copy.exists() else None
        if have is not None and have.st_size == src_stat.st_size and have.st_mtime_ns == src_stat.st_mtime_ns:
            continue
        if have is not None and have.st_size < src_stat.st_size and _same_prefix(item, copy, have.st_size):
            with open(item, "rb") as fin, open(copy, "ab") as fout:
                fin.seek(have.st_size)
                shutil.copyfileobj(fin, fout)
            shutil.copystat(item, copy)
        else:
            shutil.copy2(item, copy)


PREFIX_CHECK = 4096   # bytes compared at the end of the common prefix before appending a tail


def _same_prefix(source: Path, copy: Path, size: int) -> bool:
    """Whether the last bytes the copy has still match the source (the file grew by
    appends, rather than being rewritten or truncated and refilled)."""
    start = max(0, size - PREFIX_CHECK)
    with open(source, "rb") as a, open(copy, "rb") as b:
        a.seek(start)
        b.seek(start)
        return a.read(size - start) == b.read(size - start)


def swap_in(source: Path, future: Path) -> Path:
    """Make ``future`` the partition's directory and remove ``source``; returns the new path."""
    final = future.parent / source.name
    doomed = source.with_name(f"{source.name}.{uuid.uuid4().hex}{DELETE_SUFFIX}")
    os.rename(source, doomed)
    fsync_directory(source.parent)
    os.rename(future, final)
    fsync_directory(final.parent)
    shutil.rmtree(doomed, ignore_errors=True)
    return final


def resolve_futures(roots: list[Path]) -> None:
    """Finish or undo the moves a crash interrupted (see the module doc)."""
    for root in roots:
        for future in sorted(root.glob("*" + FUTURE_SUFFIX)):
            match = _FUTURE.fullmatch(future.name)
            if match is None or not future.is_dir():
                continue
            name = match.group(1)
            if any((r / name).exists() for r in roots):
                log.warning("removing %s: a move of %s to %s did not finish; the original is kept",
                            future.name, name, root)
                shutil.rmtree(future, ignore_errors=True)
            else:
                log.warning("completing the interrupted move of %s to %s", name, root)
                os.rename(future, root / name)
                fsync_directory(root)
