"""What the offset and time indexes share: two columns in memory, one append-only file.

Theory of operation
-------------------
An index file is a flat array of fixed-size big-endian entries of two fields
(:data:`ENTRY` of the subclass; the byte tables are in kavka.log.offset_index
and kavka.log.time_index).  One field is always the *relative offset* (a batch
base offset minus the segment base offset, i32), the other a position or a
timestamp.  The whole index lives in memory as two ``array`` columns, one per
field in entry order; lookups bisect them and never read the file.

The file is only ever appended to, one ``os.write`` per entry, and cut with
``ftruncate``: a torn or short write (a full disk) is cut back to the last whole
entry at once, so after a crash the file holds at most one partial entry,
which :meth:`IndexFile.load` refuses.  Kafka preallocates and mmaps its index
files; appending keeps the file length equal to the entries written.

Truncation is by relative offset in both indexes (the relative offsets are
non-decreasing), so it lives here.  ``load`` checks the length and asks the
subclass whether each entry may follow the previous one; any failure raises
:class:`CorruptIndex` and the segment rebuilds the index from the log
(kavka.log.segment), since indexes are derived data.
"""

from __future__ import annotations

import errno
import os
import struct
from array import array
from bisect import bisect_right
from pathlib import Path
from typing import ClassVar, Self

from kavka.log.file_cache import FILES
from kavka.log.file_slice import FileHandle

INT32_MAX = 2**31 - 1
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


class CorruptIndex(Exception):
    """An index file is not a valid index; the owning segment rebuilds it."""


def index_file_name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:020d}{suffix}"


class IndexFile:
    """Two in-memory columns mirrored by an append-only file; see the module doc.

    A subclass sets :data:`ENTRY`, :data:`TYPECODES` (the array type of each
    field, in entry order), :data:`REL_FIELD` (which field is the relative
    offset), binds its named column in ``_bind`` and says in ``_follows``
    which entries a valid file may hold."""

    ENTRY: ClassVar[struct.Struct]
    TYPECODES: ClassVar[tuple[str, str]]
    REL_FIELD: ClassVar[int]

    __slots__ = ("path", "base_offset", "_file", "_columns", "_rel")

    def __init__(self, path: Path, base_offset: int, columns: tuple[array, array]) -> None:
        self.path = path
        self.base_offset = base_offset
        self._columns = columns
        self._rel = columns[self.REL_FIELD]
        self._bind(columns)
        self._file = FILES.file(path, _OPEN_FLAGS)  # opened on first write (kavka.log.file_cache)

    def _bind(self, columns: tuple[array, array]) -> None:
        """Name the subclass's other column (the hot lookups read it by name)."""
        raise NotImplementedError

    @staticmethod
    def _follows(previous: tuple[int, int] | None, entry: tuple[int, int]) -> bool:
        """Whether ``entry`` may come after ``previous`` (None: it is the first)."""
        raise NotImplementedError

    @property
    def _fd(self) -> int:
        return self._file.fd()

    # -- construction ------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, base_offset: int) -> Self:
        """A new empty index; an existing file at ``path`` is emptied."""
        index = cls(path, base_offset, cls._empty_columns())
        index._file = FILES.file(path, _OPEN_FLAGS, FileHandle(os.open(path, _OPEN_FLAGS | os.O_TRUNC, 0o644)))
        return index

    @classmethod
    def load(cls, path: Path, base_offset: int) -> Self:
        """Read and validate ``path``; raises CorruptIndex (or FileNotFoundError)."""
        data = path.read_bytes()
        size = cls.ENTRY.size
        if len(data) % size:
            raise CorruptIndex(f"{path.name}: size {len(data)} is not a multiple of {size}")
        first, second = columns = cls._empty_columns()
        previous = None
        for entry in cls.ENTRY.iter_unpack(data):
            if not cls._follows(previous, entry):
                raise CorruptIndex(f"{path.name}: entry {entry} does not increase")
            first.append(entry[0])
            second.append(entry[1])
            previous = entry
        return cls(path, base_offset, columns)

    @classmethod
    def _empty_columns(cls) -> tuple[array, array]:
        first, second = cls.TYPECODES
        return array(first), array(second)

    # -- queries -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rel)

    # -- mutation ----------------------------------------------------------------------

    def _append_entry(self, first: int, second: int) -> None:
        """Write one entry (fields in entry order, already checked) and keep it in memory."""
        write_entry(self._fd, self.ENTRY.pack(first, second), len(self._rel))
        self._columns[0].append(first)
        self._columns[1].append(second)

    def truncate_to(self, offset: int) -> None:
        """Drop every entry whose offset is >= ``offset``."""
        self._truncate_entries(bisect_right(self._rel, offset - self.base_offset - 1))

    def reset(self) -> None:
        self._truncate_entries(0)

    def _truncate_entries(self, keep: int) -> None:
        if keep >= len(self._rel):
            return
        for column in self._columns:
            del column[keep:]
        os.ftruncate(self._fd, keep * self.ENTRY.size)

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
    """Append one entry or nothing: a short or failed write (a full disk) is cut back off
    (entries are fixed-size, so the good length is known)."""
    try:
        if os.write(fd, entry) == len(entry):
            return
        error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    except OSError as exc:
        error = exc
    os.ftruncate(fd, entries * len(entry))
    raise error
