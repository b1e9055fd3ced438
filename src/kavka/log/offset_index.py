"""Sparse offset index of one segment: offset -> byte position in the ``.log`` file.

Theory of operation
-------------------
File ``NNNNNNNNNNNNNNNNNNNN.index`` (20-digit zero-padded base offset of the
segment) is a flat array of 8-byte entries, big-endian::

    offset  size  field
    0       4     relative offset   batch base offset - segment base offset (i32, >= 0)
    4       4     position          byte position of that batch in the .log file (i32)

An entry says "the batch with base offset ``base + relative`` starts at
``position``".  Entries are strictly increasing in both fields.  The index is
*sparse*: the segment adds one only after ``index.interval.bytes`` of log since
the previous one, so a lookup lands at most that many bytes before its target
and the caller finishes with a short scan of batch headers.  The implicit entry
``(base, 0)`` is never stored.

Lookup: all entries live in memory as two ``array('i')`` columns; ``lookup(t)``
bisects the offsets for the greatest entry <= t, ``floor_position(p)`` bisects
the positions.  The file is only ever appended to (Kafka preallocates and
mmaps; we append, which keeps a torn write to at most one partial entry).

After a crash the index is derived data: the segment rebuilds it from the log
(``Segment.recover``).  On a clean open :meth:`OffsetIndex.load` validates the
file (length a multiple of 8, entries strictly increasing) and raises
:class:`CorruptIndex` so that the segment rebuilds it instead.
"""

from __future__ import annotations

import errno
import os
import struct
from array import array
from bisect import bisect_right
from pathlib import Path

from kavka.log.file_cache import FILES
from kavka.log.file_slice import FileHandle

ENTRY = struct.Struct(">ii")
ENTRY_SIZE = ENTRY.size
INT32_MAX = 2**31 - 1
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


class CorruptIndex(Exception):
    """An index file is not a valid index; the owning segment rebuilds it."""


def index_file_name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:020d}{suffix}"


class OffsetIndex:
    """In-memory columns mirrored by an append-only file; see the module doc."""

    __slots__ = ("path", "base_offset", "_file", "_rel", "_pos")

    def __init__(self, path: Path, base_offset: int, rel: array, pos: array) -> None:
        self.path = path
        self.base_offset = base_offset
        self._rel = rel
        self._pos = pos
        self._file = FILES.file(path, _OPEN_FLAGS)  # opened on first write (kavka.log.file_cache)

    @property
    def _fd(self) -> int:
        return self._file.fd()

    # -- construction ------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, base_offset: int) -> "OffsetIndex":
        """A new empty index; an existing file at ``path`` is emptied."""
        index = cls(path, base_offset, array("i"), array("i"))
        index._file = FILES.file(path, _OPEN_FLAGS, FileHandle(os.open(path, _OPEN_FLAGS | os.O_TRUNC, 0o644)))
        return index

    @classmethod
    def load(cls, path: Path, base_offset: int) -> "OffsetIndex":
        """Read and validate ``path``; raises CorruptIndex (or FileNotFoundError)."""
        data = path.read_bytes()
        if len(data) % ENTRY_SIZE:
            raise CorruptIndex(f"{path.name}: size {len(data)} is not a multiple of {ENTRY_SIZE}")
        rel, pos = array("i"), array("i")
        for r, p in ENTRY.iter_unpack(data):
            if r < 0 or (rel and (r <= rel[-1] or p <= pos[-1])):
                raise CorruptIndex(f"{path.name}: entry ({r}, {p}) does not increase")
            rel.append(r)
            pos.append(p)
        return cls(path, base_offset, rel, pos)

    # -- queries -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rel)

    def lookup(self, target_offset: int) -> tuple[int, int]:
        """(offset, position) of the greatest entry <= target, else (base, 0)."""
        i = bisect_right(self._rel, target_offset - self.base_offset) - 1
        if i < 0:
            return self.base_offset, 0
        return self.base_offset + self._rel[i], self._pos[i]

    def floor_position(self, position: int) -> int:
        """Greatest indexed position <= ``position`` (0 when none): a batch boundary."""
        i = bisect_right(self._pos, position) - 1
        return self._pos[i] if i >= 0 else 0

    def last_entry(self) -> tuple[int, int]:
        """The last entry, or (base, 0) when the index is empty."""
        if not self._rel:
            return self.base_offset, 0
        return self.base_offset + self._rel[-1], self._pos[-1]

    def entries(self) -> list[tuple[int, int]]:
        return [(self.base_offset + r, p) for r, p in zip(self._rel, self._pos)]

    # -- mutation ----------------------------------------------------------------------

    def append(self, offset: int, position: int) -> None:
        """Add an entry; both fields must exceed the last entry's."""
        rel = offset - self.base_offset
        if not 0 <= rel <= INT32_MAX or not 0 <= position <= INT32_MAX:
            raise ValueError(f"index entry ({offset}, {position}) out of range for base {self.base_offset}")
        if self._rel and (rel <= self._rel[-1] or position <= self._pos[-1]):
            raise ValueError(f"index entry ({offset}, {position}) does not follow {self.last_entry()}")
        write_entry(self._fd, ENTRY.pack(rel, position), len(self._rel))
        self._rel.append(rel)
        self._pos.append(position)

    def truncate_to(self, offset: int) -> None:
        """Drop every entry whose offset is >= ``offset``."""
        keep = bisect_right(self._rel, offset - self.base_offset - 1)
        self._truncate_entries(keep)

    def reset(self) -> None:
        self._truncate_entries(0)

    def _truncate_entries(self, keep: int) -> None:
        if keep >= len(self._rel):
            return
        del self._rel[keep:]
        del self._pos[keep:]
        os.ftruncate(self._fd, keep * ENTRY_SIZE)

    # -- file lifecycle ----------------------------------------------------------------

    def flush(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        self._file.close()

    def rename(self, path: Path) -> None:
        os.rename(self.path, path)
        self.path = path
        self._file.rename(path)


def write_entry(fd: int, entry: bytes, entries: int) -> None:
    """Append one entry or nothing: a short or failed write (a full disk) is cut back off.
    Shared with kavka.log.time_index (fixed-size entries, so the good length is known)."""
    try:
        if os.write(fd, entry) == len(entry):
            return
        error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    except OSError as exc:
        error = exc
    os.ftruncate(fd, entries * len(entry))
    raise error
