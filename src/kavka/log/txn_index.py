"""Aborted-transaction index of one segment (Kafka's TransactionIndex, ``.txnindex``).

Theory of operation
-------------------
File ``NNNNNNNNNNNNNNNNNNNN.txnindex`` (the segment's base offset) is a flat
array of 34-byte big-endian entries, one per transaction aborted by a marker
written into this segment, in marker order, byte for byte Kafka's format::

    offset  size  field
    0       2     version             0
    2       8     producer id
    10      8     first offset        of the transaction's first batch (maybe in an earlier segment)
    18      8     last offset         the abort marker's offset
    26      8     last stable offset  the LSO just after the abort (the first offset of the
                                      earliest transaction still open then, else last + 1)

A read_committed fetch asks every segment from the one holding its fetch
offset for the aborted transactions that overlap [fetch offset, upper bound)
(:meth:`TxnIndex.collect`); an entry whose last stable offset reaches the
upper bound proves no later entry can start below it, so the search stops
there (Kafka's ``collectAbortedTransactions``).

As in Kafka the file exists only once the segment has an aborted transaction;
the entries are also kept in memory (a few per segment).  It is derived data:
truncation drops the entries of markers at or after the cut; a file that does
not load (length not a multiple of 34, an unknown version) raises
:class:`CorruptIndex`, and the partition rebuilds the entries by replaying the
log through its producer state (kavka.log.partition).  Writes are one
``os.write`` of whole entries, cut back on a short write.  The entries in memory
are the truth for reads: an entry whose write failed (a full disk) is kept
there and the file is rewritten from memory at the next flush (or close), so a
restart without recovery does not lose it.
"""

from __future__ import annotations

import errno
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from kavka.log.file_cache import FILES
from kavka.log.file_slice import FileHandle
from kavka.log.index_file import CorruptIndex, write_entry

TXN_INDEX_SUFFIX = ".txnindex"
ENTRY_VERSION = 0
ENTRY = struct.Struct(">hqqqq")
_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True, slots=True)
class AbortedTxn:
    producer_id: int
    first_offset: int
    last_offset: int
    last_stable_offset: int


class TxnIndex:
    """The aborted transactions of one segment; see the module doc."""

    __slots__ = ("path", "entries", "_file", "_unwritten")

    def __init__(self, path: Path, entries: list[AbortedTxn]) -> None:
        self.path = path if isinstance(path, Path) else Path(path)
        self.entries = entries
        self._file = FILES.file(self.path, _OPEN_FLAGS) if entries else None
        self._unwritten = False  # the file lacks entries that memory has: flush rewrites it

    @classmethod
    def load(cls, path: Path) -> "TxnIndex":
        """The index in ``path``, empty when there is no file; raises CorruptIndex."""
        try:
            data = Path(path).read_bytes()
        except FileNotFoundError:
            return cls(path, [])
        if len(data) % ENTRY.size:
            raise CorruptIndex(f"{Path(path).name}: size {len(data)} is not a multiple of {ENTRY.size}")
        entries = []
        for version, *fields in ENTRY.iter_unpack(data):
            if version != ENTRY_VERSION:
                raise CorruptIndex(f"{Path(path).name}: aborted transaction entry version {version}")
            entries.append(AbortedTxn(*fields))
        return cls(path, entries)

    @classmethod
    def create(cls, path: Path) -> "TxnIndex":
        """An empty index, removing any file left at ``path``."""
        Path(path).unlink(missing_ok=True)
        return cls(path, [])

    def append(self, txn: AbortedTxn) -> None:
        """Add an entry; on an OSError it is kept in memory and written at the next flush."""
        self.entries.append(txn)
        if self._unwritten:
            return
        try:
            if self._file is None:  # the first entry creates the file (a reopen never does)
                self._file = FILES.file(self.path, _OPEN_FLAGS, FileHandle(os.open(self.path, _OPEN_FLAGS, 0o644)))
            write_entry(self._file.fd(), _pack(txn), len(self.entries) - 1)
        except OSError:
            self._unwritten = True
            raise

    def collect(self, fetch_offset: int, upper_bound: int) -> tuple[list[AbortedTxn], bool]:
        """(entries overlapping [fetch_offset, upper_bound), whether the search is complete)."""
        found = []
        for txn in self.entries:
            if txn.last_offset >= fetch_offset and txn.first_offset < upper_bound:
                found.append(txn)
            if txn.last_stable_offset >= upper_bound:
                return found, True
        return found, False

    def truncate_to(self, offset: int) -> None:
        """Drop the entries of markers at or after ``offset``."""
        keep = len(self.entries)
        while keep and self.entries[keep - 1].last_offset >= offset:
            keep -= 1
        if keep == len(self.entries):
            return
        del self.entries[keep:]
        if self._file is not None and not self._unwritten:
            os.ftruncate(self._file.fd(), keep * ENTRY.size)

    def flush(self) -> None:
        if self._unwritten:
            self._rewrite()
        if self._file is not None:
            os.fsync(self._file.fd())

    def _rewrite(self) -> None:
        if self._file is None:
            self._file = FILES.file(self.path, _OPEN_FLAGS, FileHandle(os.open(self.path, _OPEN_FLAGS, 0o644)))
        fd = self._file.fd()
        os.ftruncate(fd, 0)
        data = b"".join(_pack(txn) for txn in self.entries)
        if os.write(fd, data) != len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._unwritten = False

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def rename(self, path: Path) -> None:
        """Move the file (when there is one) to ``path``."""
        if self._file is not None:
            os.rename(self.path, path)
            self._file.rename(path)
        self.path = Path(path)


def _pack(txn: AbortedTxn) -> bytes:
    return ENTRY.pack(ENTRY_VERSION, txn.producer_id, txn.first_offset, txn.last_offset, txn.last_stable_offset)
