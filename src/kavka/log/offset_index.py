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
the positions.  The file handling (append-only, torn writes cut back, truncation,
load) is shared with the time index in kavka.log.index_file.

After a crash the index is derived data: the segment rebuilds it from the log
(``Segment.recover``).  On a clean open :meth:`OffsetIndex.load` validates the
file (length a multiple of 8, entries strictly increasing) and raises
:class:`CorruptIndex` so that the segment rebuilds it instead.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_right
from typing import ClassVar

from kavka.log.index_file import INT32_MAX, IndexFile

ENTRY = struct.Struct(">ii")


class OffsetIndex(IndexFile):
    """Columns of relative offsets and positions; see the module doc."""

    ENTRY: ClassVar[struct.Struct] = ENTRY
    TYPECODES: ClassVar[tuple[str, str]] = ("i", "i")
    REL_FIELD: ClassVar[int] = 0

    __slots__ = ("_pos",)

    def _bind(self, columns: tuple[array, array]) -> None:
        self._pos = columns[1]

    @staticmethod
    def _follows(previous: tuple[int, int] | None, entry: tuple[int, int]) -> bool:
        rel, pos = entry
        return rel >= 0 and (previous is None or (rel > previous[0] and pos > previous[1]))

    # -- queries -----------------------------------------------------------------------

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
        self._append_entry(rel, position)
