"""Sparse time index of one segment: timestamp -> where to start scanning.

Theory of operation
-------------------
File ``NNNNNNNNNNNNNNNNNNNN.timeindex`` (20-digit base offset) is a flat array
of 12-byte entries, big-endian::

    offset  size  field
    0       8     timestamp         a new maximum of the batches' maxTimestamp (i64)
    8       4     relative offset   base offset of the first batch reaching it, minus
                                    the segment base offset (i32)

Entry ``(T, O)`` states two facts: the batch at ``O`` has maxTimestamp ``T``,
and every batch before it has a smaller maxTimestamp.  Timestamps are strictly
increasing (an entry is appended only when the segment's running maximum
grew), offsets non-decreasing.  The segment appends entries at the same
``index.interval.bytes`` cadence as the offset index, never more than one per
batch, so the index stays sparse and costs no extra syscall per small batch.

Lookup ``lookup(ts)``: bisect for the greatest entry with ``T < ts``; every
batch up to and including its offset has maxTimestamp < ts, so the first batch
with maxTimestamp >= ts lies after it.  With no such entry the scan starts at
the segment base.  The caller then scans batch headers forward.

After a crash the index is rebuilt from the log.  :meth:`TimeIndex.load`
validates the file (length a multiple of 12, timestamps strictly increasing,
offsets non-decreasing) and raises :class:`CorruptIndex` so that the segment
rebuilds it instead.
"""

from __future__ import annotations

import os
import struct
from array import array
from bisect import bisect_left, bisect_right
from pathlib import Path

from kavka.log.file_cache import FILES
from kavka.log.file_slice import FileHandle
from kavka.log.offset_index import INT32_MAX, CorruptIndex, write_entry

ENTRY = struct.Struct(">qi")
ENTRY_SIZE = ENTRY.size
NO_TIMESTAMP = -1
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


class TimeIndex:
    """In-memory columns mirrored by an append-only file; see the module doc."""

    __slots__ = ("path", "base_offset", "_file", "_ts", "_rel")

    def __init__(self, path: Path, base_offset: int, ts: array, rel: array) -> None:
        self.path = path
        self.base_offset = base_offset
        self._ts = ts
        self._rel = rel
        self._file = FILES.file(path, _OPEN_FLAGS)  # opened on first write (kavka.log.file_cache)

    @property
    def _fd(self) -> int:
        return self._file.fd()

    @classmethod
    def create(cls, path: Path, base_offset: int) -> "TimeIndex":
        index = cls(path, base_offset, array("q"), array("i"))
        index._file = FILES.file(path, _OPEN_FLAGS, FileHandle(os.open(path, _OPEN_FLAGS | os.O_TRUNC, 0o644)))
        return index

    @classmethod
    def load(cls, path: Path, base_offset: int) -> "TimeIndex":
        """Read and validate ``path``; raises CorruptIndex (or FileNotFoundError)."""
        data = path.read_bytes()
        if len(data) % ENTRY_SIZE:
            raise CorruptIndex(f"{path.name}: size {len(data)} is not a multiple of {ENTRY_SIZE}")
        ts, rel = array("q"), array("i")
        for t, r in ENTRY.iter_unpack(data):
            if r < 0 or (ts and (t <= ts[-1] or r < rel[-1])):
                raise CorruptIndex(f"{path.name}: entry ({t}, {r}) does not increase")
            ts.append(t)
            rel.append(r)
        return cls(path, base_offset, ts, rel)

    # -- queries -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._ts)

    def lookup(self, timestamp: int) -> tuple[int, int]:
        """(T, offset) of the greatest entry with T < timestamp, else (-1, base)."""
        i = bisect_left(self._ts, timestamp) - 1
        if i < 0:
            return NO_TIMESTAMP, self.base_offset
        return self._ts[i], self.base_offset + self._rel[i]

    def last_entry(self) -> tuple[int, int]:
        """(T, offset) of the last entry, or (-1, base) when empty."""
        if not self._ts:
            return NO_TIMESTAMP, self.base_offset
        return self._ts[-1], self.base_offset + self._rel[-1]

    @property
    def last_timestamp(self) -> int:
        return self._ts[-1] if self._ts else NO_TIMESTAMP

    def entries(self) -> list[tuple[int, int]]:
        return [(t, self.base_offset + r) for t, r in zip(self._ts, self._rel)]

    # -- mutation ----------------------------------------------------------------------

    def maybe_append(self, timestamp: int, offset: int) -> bool:
        """Append ``(timestamp, offset)`` if the timestamp beats the last entry's."""
        if timestamp <= self.last_timestamp:
            return False
        rel = offset - self.base_offset
        if not 0 <= rel <= INT32_MAX or (self._rel and rel < self._rel[-1]):
            raise ValueError(f"time index offset {offset} out of order for base {self.base_offset}")
        write_entry(self._fd, ENTRY.pack(timestamp, rel), len(self._rel))
        self._ts.append(timestamp)
        self._rel.append(rel)
        return True

    def truncate_to(self, offset: int) -> None:
        """Drop every entry whose offset is >= ``offset``."""
        keep = bisect_right(self._rel, offset - self.base_offset - 1)
        self._truncate_entries(keep)

    def reset(self) -> None:
        self._truncate_entries(0)

    def _truncate_entries(self, keep: int) -> None:
        if keep >= len(self._ts):
            return
        del self._ts[keep:]
        del self._rel[keep:]
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
