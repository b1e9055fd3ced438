"""Moving a partition's directory to another log directory of this broker (AlterReplicaLogDirs).

Theory of operation
-------------------
Kafka copies a replica in the background (a "future" log fed by a
ReplicaAlterLogDirsThread) and swaps it in when caught up.  kavka stops the log
instead: the caller closes the partition (flushed, snapshots written), then

1. :func:`copy_to_future` copies ``<src>/<topic>-<p>/`` to
   ``<dest>/<topic>-<p>.<hex>-future/`` and syncs the destination's file system
   (every copied byte is durable);
2. :func:`swap_in` renames the source aside to ``<topic>-<p>.<hex>-delete``,
   renames the future to ``<dest>/<topic>-<p>`` (atomic within the destination),
   syncs both parents and removes the source;

and reopens the partition from the destination.  The partition answers nothing
meanwhile (the broker's event loop is busy for the copy's duration).

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


def copy_to_future(source: Path, dest_root: Path) -> Path:
    """Copy a closed partition's directory into ``dest_root`` as a future; durable on return."""
    future = dest_root / f"{source.name}.{uuid.uuid4().hex}{FUTURE_SUFFIX}"
    try:
        shutil.copytree(source, future)
        sync_file_system(future)
        fsync_directory(dest_root)
    except BaseException:
        shutil.rmtree(future, ignore_errors=True)
        raise
    return future


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
