"""Small text checkpoint files of a partition, replaced atomically.

Theory of operation
-------------------
Files such as ``recovery-point`` and ``log-start-offset`` hold one decimal
offset and a newline; ``leader-epoch-checkpoint`` holds several lines (see
kavka.log.leader_epoch).  A writer never edits a checkpoint in place: it writes
``<name>.tmp``, fsyncs it, renames it over ``<name>`` (atomic on POSIX) and
fsyncs the directory, so after any crash the file holds either the old or the
new contents, never a mix.  A leftover ``*.tmp`` is an unfinished write and is
deleted by the partition log when it opens.

Bulk shutdown (:func:`deferred_sync`): closing thousands of partitions one
fsync at a time took tens of seconds, so the log manager first syncs the
file system once (every record durable), then writes every partition's
checkpoints inside ``deferred_sync()`` (no fsyncs), then syncs the file system
again, and only then writes its clean-shutdown marker.  A crash before that
marker makes the next start recover, so a checkpoint torn by a power cut in
this window is never trusted without recovery (unreadable ones read as None).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from pathlib import Path

TMP_SUFFIX = ".tmp"
_deferred = threading.local()  # .active: fsyncs are left to one sync_file_system() call


@contextlib.contextmanager
def deferred_sync():
    """Within: write_atomically and fsync_directory skip their fsyncs (this thread only)."""
    _deferred.active = True
    try:
        yield
    finally:
        _deferred.active = False


def syncs_deferred() -> bool:
    return getattr(_deferred, "active", False)


def sync_file_system(path: Path) -> None:
    """Flush every dirty page of the file system holding ``path`` (syncfs(2); sync(2)
    where it is unavailable)."""
    syncfs = _libc_syncfs()
    if syncfs is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        if syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


@functools.cache
def _libc_syncfs():
    try:
        import ctypes
        import ctypes.util
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        data = memoryview(text.encode("ascii"))
        while data:  # a short write (a full disk) must not become a truncated checkpoint
            data = data[os.write(fd, data):]
        if not syncs_deferred():
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # and must not keep the space it took
        raise
    os.close(fd)
    os.rename(tmp, path)
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make renames and new files in ``directory`` durable."""
    if syncs_deferred():
        return
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_offset(path: Path) -> int | None:
    """The offset in a one-number checkpoint file; None if missing or unreadable."""
    try:
        return int(path.read_text("ascii").strip())
    except (FileNotFoundError, ValueError, UnicodeDecodeError):
        return None


def write_offset(path: Path, offset: int) -> None:
    write_atomically(path, f"{offset}\n")
