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
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

TMP_SUFFIX = ".tmp"


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o644)
    try:
        data = memoryview(text.encode("ascii"))
        while data:  # a short write (a full disk) must not become a truncated checkpoint
            data = data[os.write(fd, data):]
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
