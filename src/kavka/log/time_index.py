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
rebuilds it instead.  The file handling is shared with the offset index in
kavka.log.index_file.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_left
from typing import ClassVar

from kavka.log.index_file import INT32_MAX, IndexFile

ENTRY = struct.Struct(">qi")
NO_TIMESTAMP = -1


class TimeIndex(IndexFile):
    """Columns of timestamps and relative offsets; see the module doc."""

    ENTRY: ClassVar[struct.Struct] = ENTRY
    TYPECODES: ClassVar[tuple[str, str]] = ("q", "i")
    REL_FIELD: ClassVar[int] = 1

    __slots__ = ("_ts",)

    def _bind(self, columns: tuple[array, array]) -> None:
        self._ts = columns[0]

    @staticmethod
    def _follows(previous: tuple[int, int] | None, entry: tuple[int, int]) -> bool:
        ts, rel = entry
        return rel >= 0 and (previous is None or (ts > previous[0] and rel >= previous[1]))

    # -- queries -----------------------------------------------------------------------

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
        self._append_entry(timestamp, rel)
        return True
