"""One log segment: a ``.log`` file of record batches plus its two sparse indexes.

Theory of operation
-------------------
Files, named by the segment's base offset (the first offset it may hold),
zero-padded to 20 digits::

    00000000000000001234.log        record batches, back to back, exactly as produced
                                    (v2 format, see kavka.protocol.records); nothing else
    00000000000000001234.index      offset -> position   (kavka.log.offset_index)
    00000000000000001234.timeindex  timestamp -> offset  (kavka.log.time_index)
    00000000000000001234.txnindex   aborted transactions whose marker is here (kavka.log.txn_index;
                                    only once there is one)

The ``.log`` file is the only source of truth.  Layout of each batch::

    position  size  field
    0         8     baseOffset      absolute, assigned by the partition log
    8         4     batchLength     bytes after this field; batch size = batchLength + 12
    12        49    rest of the v2 header (epoch, magic, crc, ..., maxTimestamp at +35)
    61        ...   records, opaque here (possibly compressed)

Batches are in strictly increasing offset order, each batch's baseOffset at
least the previous batch's last offset + 1 (compaction may leave gaps).

Append: one ``os.write`` per batch on an ``O_APPEND`` fd, so the bytes are in
the kernel when ``append`` returns and survive ``kill -9`` (not a power cut:
that is what ``flush``/fsync and the partition's recovery point are for).
Index entries are written after the batch, so an index never points past data.

Lookup of offset ``t``: the offset index gives the greatest indexed batch with
base <= t, at most ``index.interval.bytes`` before the target; from there we
``pread`` batch headers forward to the first batch whose last offset >= t (so
an offset inside a batch finds that whole batch).  Reads return a
:class:`FileSlice` (fd, position, size) of whole batches for ``sendfile``.

Crash: a batch half-written by a dying process, garbage after the last batch
or a flipped byte fail ``records.validate`` (length, magic, CRC-32C) or the
offset-order check; :meth:`Segment.recover` keeps the valid prefix, truncates
the file there and rebuilds both indexes from it.  A clean open trusts the
indexes after a cheap consistency check (last offset entry matches the batch
at its position, time index not ahead of the log, no torn tail) and derives
``next_offset``/``max_timestamp`` by scanning the few batches after the last
index entry; anything inconsistent falls back to ``recover``.

Lazy open (``Segment.open_lazy``, Kafka's LazyIndex): a closed segment that
the partition's open trusts without a check (clean start, or below the recovery
point after a crash, and not modified since) is created from its stat alone
(size; the ``.txnindex`` is read only if the file exists).  Its indexes, next
offset and timestamps are loaded on first use of any of them
(``Segment.__getattr__``, so loaded segments and the hot path pay nothing), with
the same consistency check as a clean open; indexes that fail it are rebuilt from
the batch headers without cutting anything (the segment sits between others:
reads reaching bad bytes fail as for any corruption found while serving).
``STATS`` counts lazy opens and first uses for tests and benchmarks.

Deletion renames every file to ``*.deleted`` and unlinks it; the partition log
removes leftover ``*.deleted`` files and orphaned indexes when it opens.  The
``.log`` file and both indexes are opened on demand through the process's LRU
of open files (kavka.log.file_cache: ``Segment._handle``/``_fd`` are properties
that open or touch it; an index opens its file only to write, truncate or
fsync).  The ``.log`` fd is shared with the slices read from it (kavka.log.file_slice):
deleting a segment drops only the segment's reference, so an in-flight
``sendfile`` keeps a valid fd and the fd closes with the last slice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from kavka.clock import Clock
from kavka.config import TopicConfig
from kavka.log.errors import LogCorrupted
from kavka.log.file_cache import FILES, LazyFile
from kavka.log.file_slice import FileHandle, FileSlice
from kavka.log.index_file import CorruptIndex, index_file_name
from kavka.log.offset_index import OffsetIndex
from kavka.log.time_index import NO_TIMESTAMP, TimeIndex
from kavka.log.txn_index import TXN_INDEX_SUFFIX, TxnIndex
from kavka.protocol.records import (
    HEADER_SIZE,
    LOG_OVERHEAD,
    MAGIC,
    BatchHeader,
    CorruptBatch,
    InvalidBatch,
    compute_crc,
    peek_size,
    read_header,
    validate,
)

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
DELETED_SUFFIX = ".deleted"
RECOVER_CHUNK = 8 << 20  # bytes read at a time when validating a whole segment
MIN_BATCH_SIZE = HEADER_SIZE

# baseOffset, batchLength, lastOffsetDelta (at 23), maxTimestamp (at 35): all a scan needs.
_SCAN = struct.Struct(">qi11xi8xq")
_MAGIC_AT = 16
log = logging.getLogger("kavka.log")
_LOG_FLAGS = os.O_RDWR | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)


# What a lazily opened segment (Segment.open_lazy) reads on first use of any of these.
_LAZY = frozenset({"offset_index", "time_index", "recovery_problem", "next_offset", "max_timestamp",
                   "offset_of_max_timestamp", "first_batch_timestamp", "_last_indexed_position"})


class LoadStats:
    """Counters for tests and benchmarks: segments a start opened lazily, and how many of
    those were loaded since (first use)."""

    __slots__ = ("lazy", "materialized")

    def __init__(self) -> None:
        self.lazy = self.materialized = 0


STATS = LoadStats()


def segment_path(directory: Path, base_offset: int, suffix: str) -> Path:
    return directory / index_file_name(base_offset, suffix)


class Segment:
    """See the module doc.  Not thread-safe: the partition log serialises access."""

    def __init__(self, directory: Path, base_offset: int, log_file: LazyFile, config: TopicConfig,
                 clock: Clock, offset_index: OffsetIndex, time_index: TimeIndex) -> None:
        self.directory = directory
        self.base_offset = base_offset
        self._file = log_file  # opened on demand (kavka.log.file_cache)
        self._suffix = ""
        self.offset_index = offset_index
        self.time_index = time_index
        self.txn_index = TxnIndex(self._path_of(TXN_INDEX_SUFFIX, ""), [])
        # The .txnindex may miss entries (it did not load, or the segment was recovered):
        # the partition rebuilds it by a producer-state replay from before this segment.
        self.txn_index_suspect = False
        self.index_interval_bytes = config.index_interval_bytes
        self.created_ms = clock.now_ms()
        self.size = os.fstat(self._fd).st_size
        self._reported: set[int] = set()  # positions of corruption already logged
        self.truncated_on_open = 0  # bytes open() cut off (indexes inconsistent, then a bad batch)
        # Bytes below _unverified_end were on disk, unchecked, when the file was opened;
        # [0, _verified_to) of them have been CRC-checked since (see _verify).
        self._unverified_end = self.size
        self._verified_to = 0
        self._reset_state()

    @classmethod
    def open_lazy(cls, directory: Path, base_offset: int, config: TopicConfig, clock: Clock, size: int,
                  upper: int, txn_index: bool) -> "Segment":
        """A closed segment trusted as it is (clean start, or below the recovery point),
        opened without any I/O: ``size`` comes from the caller's stat, ``upper`` is the next
        segment's base offset, ``txn_index`` whether a ``.txnindex`` file exists (then it is
        read now: its entries decide where producer state is rebuilt from).  The indexes,
        next offset and timestamps are read on first use (:meth:`_materialize`), as Kafka's
        LazyIndex opens its index files."""
        STATS.lazy += 1
        segment = cls.__new__(cls)
        state = segment.__dict__
        state.update(directory=directory, base_offset=base_offset, _suffix="", txn_index_suspect=False,
                     index_interval_bytes=config.index_interval_bytes, created_ms=clock.now_ms(), size=size,
                     _reported=set(), truncated_on_open=0, _unverified_end=size, _verified_to=0,
                     _lazy=True, _upper=upper)
        segment._file = FILES.file(f"{directory}/{base_offset:020d}{LOG_SUFFIX}", _LOG_FLAGS)
        if txn_index:
            segment._load_txn_index()
        else:
            segment.txn_index = TxnIndex(directory / f"{base_offset:020d}{TXN_INDEX_SUFFIX}", [])
        return segment

    def __getattr__(self, name: str):
        # Only for attributes not set yet: those a lazily opened segment derives on first use.
        if name in _LAZY and self.__dict__.get("_lazy"):
            self._materialize()
            return getattr(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def is_loaded(self) -> bool:
        """False while a lazily opened segment has read nothing but its size."""
        return not self.__dict__.get("_lazy")

    def _materialize(self) -> None:
        """First use of a lazily opened segment: load and check its indexes and derive its
        tail state, as a clean open does.  Indexes that are missing or do not match the log
        are rebuilt from the batch headers, but nothing is cut: the segment sits between
        others, so bad bytes stay where they are and reads reaching them fail
        (:meth:`corrupt`), as for any corruption found while serving."""
        STATS.materialized += 1
        self.__dict__["_lazy"] = False
        try:
            indexes = _load_indexes(self.directory, self.base_offset)
        except (FileNotFoundError, CorruptIndex):
            indexes = None
        if indexes is not None:
            self.offset_index, self.time_index = indexes
            try:
                self._load_tail_state()
                return
            except (CorruptIndex, LogCorrupted):
                self.offset_index.close()
                self.time_index.close()
        log.warning("%s: indexes missing or inconsistent; rebuilding them from the log", self.log_path)
        self.offset_index, self.time_index = _new_indexes(self.directory, self.base_offset)
        self._reset_state()
        try:
            for position, (base, _length, last_delta, max_ts) in self._raw_headers(0):
                if base < self.next_offset:
                    raise self.corrupt(position, f"base offset {base} out of order")
                self._note_batch(position, base, base + last_delta, max_ts)
        except LogCorrupted:
            # Offsets up to the next segment stay this one's: a read reaching the bad bytes fails.
            self.next_offset = max(self.next_offset, self._upper)

    # The .log file through the LRU of open files: hold ``_handle`` (not ``_fd``)
    # across anything that may open another file, so that eviction cannot close it.
    @property
    def _handle(self) -> FileHandle:
        return self._file.get()

    @property
    def _fd(self) -> int:
        return self._file.get().fd

    def _reset_state(self) -> None:
        self.recovery_problem: tuple[int, str] | None = None
        self.next_offset = self.base_offset
        self.max_timestamp = NO_TIMESTAMP
        self.offset_of_max_timestamp = -1
        self.first_batch_timestamp: int | None = None
        self._last_indexed_position = 0

    # -- construction ------------------------------------------------------------------

    @classmethod
    def create(cls, directory: Path, base_offset: int, config: TopicConfig, clock: Clock,
               suffix: str = "") -> "Segment":
        """A new empty segment; fails if its .log file already exists.

        ``suffix`` (e.g. ``.cleaned``) is appended to all three file names: the
        cleaner builds a replacement segment under a name no opening log reads,
        then :meth:`rename_files` moves it into place.
        """
        log_path = Path(str(segment_path(directory, base_offset, LOG_SUFFIX)) + suffix)
        fd = os.open(log_path, _LOG_FLAGS | os.O_CREAT | os.O_EXCL, 0o644)
        log_file = FILES.file(log_path, _LOG_FLAGS, FileHandle(fd))
        try:
            segment = cls(directory, base_offset, log_file, config, clock, *_new_indexes(directory, base_offset, suffix))
        except BaseException:
            # No half-made segment (an index could not be created: a full disk) that would
            # make the next roll's O_EXCL fail; the next roll tries again from scratch.
            log_file.close()
            for kind in (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX):
                with contextlib.suppress(OSError):
                    os.unlink(str(segment_path(directory, base_offset, kind)) + suffix)
            raise
        segment._suffix = suffix
        segment.txn_index = TxnIndex.create(segment._path_of(TXN_INDEX_SUFFIX, suffix))
        return segment

    @classmethod
    def open(cls, directory: Path, base_offset: int, config: TopicConfig, clock: Clock,
             recover: bool = False, suffix: str = "") -> "Segment":
        """Open an existing segment; ``recover`` validates every batch (unclean shutdown).

        Missing or inconsistent index files are rebuilt (by recovery) either way.
        ``suffix`` as for :meth:`create` (a cleaned segment written by another process).
        """
        log_file = FILES.file(str(segment_path(directory, base_offset, LOG_SUFFIX)) + suffix, _LOG_FLAGS)
        log_file.get()  # FileNotFoundError now, as before, if the .log is missing
        indexes = None
        if not recover:
            try:
                indexes = _load_indexes(directory, base_offset, suffix)
            except (FileNotFoundError, CorruptIndex):
                pass
        segment = cls(directory, base_offset, log_file, config, clock,
                      *(indexes or _new_indexes(directory, base_offset, suffix)))
        segment._suffix = suffix
        segment._load_txn_index()
        if indexes is not None:
            try:
                segment._load_tail_state()
                return segment
            except (CorruptIndex, LogCorrupted):
                segment.offset_index.close()
                segment.time_index.close()
                segment.offset_index, segment.time_index = _new_indexes(directory, base_offset, suffix)
        segment.truncated_on_open = segment.recover()  # the caller logs it and drops what follows
        return segment

    def _path_of(self, kind: str, suffix: str) -> Path:
        return Path(str(segment_path(self.directory, self.base_offset, kind)) + suffix)

    def _load_txn_index(self) -> None:
        path = self._path_of(TXN_INDEX_SUFFIX, self._suffix)
        try:
            self.txn_index = TxnIndex.load(path)
        except CorruptIndex as exc:
            log.warning("%s; rebuilding it from the log", exc)
            self.txn_index = TxnIndex.create(path)
            self.txn_index_suspect = True

    def _load_tail_state(self) -> None:
        """Derive next offset and max timestamp from the last index entries plus a short scan."""
        self._reset_state()
        offset, position = self.offset_index.last_entry()
        if len(self.offset_index):
            if position >= self.size or self._scan_at(position)[0] != offset:
                raise CorruptIndex(f"{self.offset_index.path.name}: last entry does not match the log")
            self._last_indexed_position = position
        last_ts, ts_offset = self.time_index.last_entry()
        if len(self.time_index):
            self.max_timestamp, self.offset_of_max_timestamp = last_ts, ts_offset
        next_offset = offset
        for pos, (base, length, last_delta, max_ts) in self._raw_headers(position):
            if base < next_offset:
                raise CorruptIndex(f"batch at {pos} goes back to offset {base}")
            next_offset = base + last_delta + 1
            if max_ts > self.max_timestamp:
                self.max_timestamp, self.offset_of_max_timestamp = max_ts, base
        if len(self.time_index) and ts_offset >= next_offset:
            raise CorruptIndex(f"{self.time_index.path.name}: points past the end of the log")
        self.next_offset = next_offset
        if self.size:
            self.first_batch_timestamp = self._scan_at(0)[3]

    # -- append ------------------------------------------------------------------------

    def append(self, batch: bytes | bytearray | memoryview, header: BatchHeader) -> None:
        """Write one batch (``header`` describes it as written) and index it."""
        self.append_raw(batch, header.base_offset, header.last_offset, header.max_timestamp)

    def append_raw(self, batch: bytes | bytearray | memoryview, base_offset: int, last_offset: int,
                   max_timestamp: int) -> None:
        """:meth:`append` with the three header fields it needs, for the hot path."""
        position = self.size
        try:
            written = os.write(self._fd, batch)
            if written != len(batch):
                self._write_rest(batch, written)
            if position - self._last_indexed_position >= self.index_interval_bytes:
                self._index_batch(position, base_offset, max_timestamp)
        except OSError:
            self._undo_append(position, base_offset)
            raise
        self.size = position + len(batch)
        self._note_batch(position, base_offset, last_offset, max_timestamp, index=False)

    def _index_batch(self, position: int, base_offset: int, max_ts: int) -> None:
        """The index entries of a batch at ``position`` (written, not yet noted): the time
        entry carries the max timestamp as it will be once the batch is noted."""
        self.offset_index.append(base_offset, position)
        if max_ts > self.max_timestamp:
            self.time_index.maybe_append(max_ts, base_offset)
        else:
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
        self._last_indexed_position = position

    def _undo_append(self, position: int, base_offset: int) -> None:
        """A write or index entry of the batch at ``position`` failed: cut the file and the
        indexes back, so that nothing of it remains and the next append starts clean.
        If even that fails (a failed filesystem), the caller takes the directory offline
        and recovery at the next start cuts the torn tail."""
        os.ftruncate(self._fd, position)
        self.offset_index.truncate_to(base_offset)
        self.time_index.truncate_to(base_offset)
        if self._last_indexed_position >= position:
            self._last_indexed_position = self.offset_index.last_entry()[1]

    def _write_rest(self, batch, written: int) -> None:
        view = memoryview(batch)
        while written < len(view):
            written += os.write(self._fd, view[written:])

    def _note_batch(self, position: int, base_offset: int, last_offset: int, max_ts: int,
                    index: bool = True) -> None:
        """Track offsets/timestamps of a batch now in the file and (``index``) index it at the
        interval; appends index before the batch counts, so a failed entry undoes it."""
        # Index after the bytes are in the file; both entries describe data up to this batch.
        if index and position - self._last_indexed_position >= self.index_interval_bytes:
            self._index_batch(position, base_offset, max_ts)
        if max_ts > self.max_timestamp:
            self.max_timestamp, self.offset_of_max_timestamp = max_ts, base_offset
        if self.first_batch_timestamp is None:
            self.first_batch_timestamp = max_ts
        self.next_offset = last_offset + 1

    # -- read --------------------------------------------------------------------------

    def read(self, start_offset: int, max_bytes: int, max_position: int | None = None) -> FileSlice | None:
        """Whole batches from the one holding ``start_offset``, up to ``max_bytes``.

        At least one batch, even a larger one (the caller decides min_one_message);
        nothing at or beyond byte ``max_position`` (a batch boundary).  None when
        no batch with an offset >= start_offset lies before the limit.
        """
        limit = self.size if max_position is None else min(max_position, self.size)
        found = self._locate(start_offset, limit)
        if found is None:
            return None
        position, _, size = found
        end = position + size
        target = min(limit, position + max_bytes)
        if end < target:
            end = self._extend(end, target)
        handle = self._handle
        if position < self._unverified_end and end > self._verified_to:
            # Serve the good batches before a bad one; the next read, starting at it, fails.
            end = self._verify(handle.fd, position, min(end, self._unverified_end)) or end
        return FileSlice(handle.fd, position, end - position, handle)

    def _verify(self, fd: int, position: int, end: int) -> int | None:
        """CRC-check the batches in [position, end) before they are first served;
        returns where a bad batch starts (None when all are good), raises when it is
        the first one.

        Only bytes that were in the file when this process opened it without
        recovering it are checked (appends were validated on produce, recovery
        checked the rest), and a prefix once checked is not checked again: the hot
        path (tail reads of new data) pays nothing, a catch-up read of old data
        pays one pread and a CRC-32C per byte.  librdkafka does not check CRCs by
        default (check.crcs=false), so this is what keeps a flipped byte from being
        delivered silently."""
        start = self._verified_to if position <= self._verified_to else position  # both batch boundaries
        checked_to, problem = start, []
        for at, header in _valid_batches(fd, end, problem, start):
            checked_to = at + header.size
        if problem:
            return self._bad_at(position, checked_to, problem[0])
        if position <= self._verified_to:
            self._verified_to = max(self._verified_to, end)
        return None

    def _bad_at(self, position: int, bad: int, what: str) -> int:
        error = self.corrupt(bad, what)
        if bad <= position:
            raise error
        if position <= self._verified_to:
            self._verified_to = max(self._verified_to, bad)
        return bad

    def translate_offset(self, offset: int) -> tuple[int, int] | None:
        """(position, base offset) of the first batch whose last offset >= ``offset``."""
        found = self._locate(offset, self.size)
        return None if found is None else found[:2]

    def _locate(self, offset: int, limit: int) -> tuple[int, int, int] | None:
        """(position, base offset, size) of the first batch ending at or after ``offset``."""
        if offset >= self.next_offset:
            return None
        _, position = self.offset_index.lookup(offset)
        previous = -1
        while position < limit:
            base, length, last_delta, _ = self._scan_at(position)
            size = length + LOG_OVERHEAD
            if size < MIN_BATCH_SIZE or position + size > self.size:
                raise self.corrupt(position, f"impossible batch length {length}")
            if base <= previous or last_delta < 0:
                raise self.corrupt(position, f"base offset {base} (last offset delta {last_delta}) out of order")
            if base + last_delta >= offset:
                return position, base, size
            previous = base + last_delta
            position += size
        return None

    def _extend(self, end: int, target: int) -> int:
        """Furthest batch boundary <= target, starting from boundary ``end``."""
        # An indexed position is a batch boundary: jump there, then walk batch lengths.
        end = max(end, self.offset_index.floor_position(target))
        while end + LOG_OVERHEAD <= target:
            size = peek_size(os.pread(self._fd, LOG_OVERHEAD, end))
            if size is None or size < MIN_BATCH_SIZE:
                raise self.corrupt(end, f"impossible batch length {None if size is None else size - LOG_OVERHEAD}")
            if end + size > target:
                break
            end += size
        return end

    def read_bytes(self, position: int, size: int) -> bytes:
        return FileSlice(self._fd, position, size).read()

    def find_offset_by_timestamp(self, timestamp: int) -> tuple[int, BatchHeader] | None:
        """(position, header) of the first batch whose maxTimestamp >= ``timestamp``."""
        if timestamp > self.max_timestamp:
            return None
        _, offset = self.time_index.lookup(timestamp)
        _, position = self.offset_index.lookup(offset)
        for pos, header in self.iter_headers(position):
            if header.max_timestamp >= timestamp:
                return pos, header
        return None

    def iter_headers(self, position: int = 0) -> Iterator[tuple[int, BatchHeader]]:
        """(position, header) of every batch from boundary ``position`` to the end."""
        while position < self.size:
            header = read_header(os.pread(self._fd, HEADER_SIZE, position))
            if header.batch_length < MIN_BATCH_SIZE - LOG_OVERHEAD or position + header.size > self.size:
                raise LogCorrupted(f"{self.log_path.name}: bad batch header at {position}")
            yield position, header
            position += header.size

    def _scan_at(self, position: int) -> tuple[int, int, int, int]:
        """(base offset, batch length, last offset delta, max timestamp) at ``position``."""
        raw = os.pread(self._fd, HEADER_SIZE, position)
        if len(raw) < HEADER_SIZE:
            raise LogCorrupted(f"{self.log_path.name}: no batch header at {position}")
        if raw[_MAGIC_AT] != MAGIC:
            raise self.corrupt(position, f"magic byte {raw[_MAGIC_AT]}, not {MAGIC}")
        return _SCAN.unpack_from(raw)

    def corrupt(self, position: int, what: str) -> LogCorrupted:
        """The error for bad bytes met at ``position``, logged once per segment and position.

        A read that meets them answers the partition with an error instead of
        serving garbage or nothing (a consumer would wait forever); ``kavka check
        --repair`` or the recovery after a crash cut the log there."""
        message = f"{self.log_path}: corrupt batch at byte {position}: {what}"
        if position not in self._reported:
            self._reported.add(position)
            log.error("%s (reads at or after it fail until the log is repaired: kavka check --repair)", message)
        return LogCorrupted(message)

    def _raw_headers(self, position: int) -> Iterator[tuple[int, tuple[int, int, int, int]]]:
        """Scan tuples from ``position`` to the end; a torn tail raises LogCorrupted."""
        while position < self.size:
            fields = self._scan_at(position)
            size = fields[1] + LOG_OVERHEAD
            if size < MIN_BATCH_SIZE or position + size > self.size:
                raise LogCorrupted(f"{self.log_path.name}: torn batch at {position}")
            yield position, fields
            position += size

    # -- recovery and truncation -------------------------------------------------------

    def recover(self) -> int:
        """Validate every batch, cut the file after the last good one, rebuild indexes.

        Returns the number of bytes truncated; ``recovery_problem`` then says why
        (position of the first bad batch and what was wrong with it), else None.
        """
        handle = self._handle  # held: rebuilding the indexes opens their files
        self.offset_index.reset()
        self.time_index.reset()
        self._reset_state()
        file_size = os.fstat(handle.fd).st_size
        self.size = file_size
        valid_end = 0
        problem: list[str] = []
        for position, header in _ordered_batches(handle.fd, file_size, self.base_offset, problem):
            self._note_batch(position, header.base_offset, header.last_offset, header.max_timestamp)
            valid_end = position + header.size
        self.recovery_problem = (valid_end, problem[0]) if problem and valid_end < file_size else None
        if valid_end < file_size:
            os.ftruncate(handle.fd, valid_end)
        self.size = valid_end
        self._unverified_end = 0  # every byte kept was just checked
        self.txn_index.truncate_to(self.next_offset)
        self.txn_index_suspect = True  # its last entries may not have reached the file
        return file_size - valid_end

    def truncate_to(self, offset: int) -> int:
        """Drop every batch holding an offset >= ``offset``; returns bytes removed.

        A batch that straddles ``offset`` goes too, so afterwards next_offset <= offset.
        """
        found = self._locate(offset, self.size)
        if found is None:
            return 0
        position, base, _ = found
        removed = self.size - position
        self.offset_index.truncate_to(base)
        self.time_index.truncate_to(base)
        self.txn_index.truncate_to(base)
        os.ftruncate(self._fd, position)
        self.size = position
        self._unverified_end = min(self._unverified_end, position)  # stays a batch boundary
        self._verified_to = min(self._verified_to, position)
        self._load_tail_state()
        return removed

    # -- properties and lifecycle ------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return Path(str(segment_path(self.directory, self.base_offset, LOG_SUFFIX)) + self._suffix)

    def rename_files(self, suffix: str) -> None:
        """Give the three files the name suffix ``suffix`` ("" = the real names); fds stay open.

        The indexes go first and the ``.log`` last: whoever opens the directory
        decides by the ``.log`` name (kavka.log.partition_dir)."""
        for index in (self.offset_index, self.time_index, self.txn_index):
            index.rename(Path(str(index.path)[: len(str(index.path)) - len(self._suffix)] + suffix))
        old = self.log_path
        self._suffix = suffix
        os.rename(old, self.log_path)
        self._file.rename(self.log_path)

    def whole_slice(self) -> FileSlice:
        """Every byte of this segment now, holding its fd open (for the cleaner's worker)."""
        handle = self._handle
        return FileSlice(handle.fd, 0, self.size, handle)

    @property
    def fd(self) -> int:
        return self._fd

    @property
    def is_empty(self) -> bool:
        return self.size == 0

    @property
    def largest_timestamp_ms(self) -> int:
        """For retention.ms: the greatest record timestamp, else the file's mtime (as Kafka)."""
        if self.max_timestamp >= 0:
            return self.max_timestamp
        return os.fstat(self._fd).st_mtime_ns // 1_000_000

    def time_waited_for_roll(self, now_ms: int, max_timestamp: int) -> int:
        """How long this segment has been filling, for segment.ms.

        Like Kafka, measured in record time when the segment has a timestamped
        first batch (the incoming batch's maxTimestamp minus the first one's), so
        old CreateTime timestamps do not roll a segment per batch; else since creation.
        """
        first = self.first_batch_timestamp
        if first is not None and first >= 0:
            return max_timestamp - first
        return now_ms - self.created_ms

    def flush(self) -> None:
        if self.__dict__.get("_lazy"):  # nothing was written to it since it was opened
            self.txn_index.flush()
            return
        os.fsync(self._fd)
        self.offset_index.flush()
        self.time_index.flush()
        self.txn_index.flush()

    def close(self) -> None:
        """Close every fd now; only when no slice of this segment is still being sent."""
        self._close_indexes()
        self._file.close()

    def _close_indexes(self) -> None:
        if self.__dict__.get("_lazy"):  # its offset and time indexes were never opened
            self.txn_index.close()
            return
        self.offset_index.close()
        self.time_index.close()
        self.txn_index.close()

    def delete(self) -> None:
        """Remove the files (crash-safely, see delete_segment_files); the fd closes lazily."""
        delete_segment_files(self.directory, self.base_offset)
        self.release()

    def release(self) -> None:
        """Let go of the files without closing slices still in flight."""
        self._close_indexes()
        self._file.release()  # in-flight slices hold the real handle; the last one closes it

    def __repr__(self) -> str:
        if self.__dict__.get("_lazy"):
            return f"Segment(base={self.base_offset}, size={self.size}, not loaded)"
        return f"Segment(base={self.base_offset}, next={self.next_offset}, size={self.size})"


def delete_segment_files(directory: Path, base_offset: int) -> None:
    """Rename the segment's files to *.deleted (the .log first: from then on the
    segment no longer exists for an opening partition log), then unlink them."""
    doomed = []
    for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX, TXN_INDEX_SUFFIX):
        path = segment_path(directory, base_offset, suffix)
        try:
            os.rename(path, str(path) + DELETED_SUFFIX)
            doomed.append(str(path) + DELETED_SUFFIX)
        except FileNotFoundError:
            pass
    for path in doomed:
        os.unlink(path)


def validate_stored(buf, pos: int = 0) -> BatchHeader:
    """:func:`records.validate` for batches already in a log: compaction keeps a
    batch's lastOffsetDelta but drops records, so fewer records than the span
    (even none, for a producer's last batch) is valid here."""
    try:
        return validate(buf, pos)
    except CorruptBatch:
        raise
    except InvalidBatch:
        header = read_header(buf, pos)
        if header.magic != MAGIC or header.batch_length < HEADER_SIZE - LOG_OVERHEAD or pos + header.size > len(buf):
            raise
        if header.crc != compute_crc(buf, pos, header.size) or header.last_offset_delta < 0:
            raise
        if not 0 <= header.records_count <= header.last_offset_delta + 1:
            raise
        return header


def _new_indexes(directory: Path, base_offset: int, suffix: str = "") -> tuple[OffsetIndex, TimeIndex]:
    def path(kind: str) -> Path:
        return Path(str(segment_path(directory, base_offset, kind)) + suffix)
    offset_index = OffsetIndex.create(path(INDEX_SUFFIX), base_offset)
    try:
        return offset_index, TimeIndex.create(path(TIME_INDEX_SUFFIX), base_offset)
    except BaseException:
        offset_index.close()
        raise


def _load_indexes(directory: Path, base_offset: int, suffix: str = "") -> tuple[OffsetIndex, TimeIndex]:
    def path(kind: str) -> Path:
        return Path(str(segment_path(directory, base_offset, kind)) + suffix)
    offset_index = OffsetIndex.load(path(INDEX_SUFFIX), base_offset)
    try:
        return offset_index, TimeIndex.load(path(TIME_INDEX_SUFFIX), base_offset)
    except BaseException:
        offset_index.close()
        raise


def _ordered_batches(fd: int, file_size: int, base_offset: int,
                     problem: list[str]) -> Iterator[tuple[int, BatchHeader]]:
    """:func:`_valid_batches` of a segment starting at ``base_offset``, stopping also at a
    batch out of offset order (baseOffset is not covered by the CRC: order is its only check)."""
    next_offset = base_offset
    for position, header in _valid_batches(fd, file_size, problem):
        if header.base_offset < next_offset or header.last_offset - base_offset > 2**31 - 1:
            problem.append(f"base offset {header.base_offset} out of order (expected >= {next_offset})")
            return
        next_offset = header.last_offset + 1
        yield position, header


def _valid_batches(fd: int, file_size: int, problem: list[str] | None = None,
                   start: int = 0) -> Iterator[tuple[int, BatchHeader]]:
    """(position, header) of each valid batch in [start, file_size), ``start`` a batch boundary;
    stops at the first invalid or torn one and then appends to ``problem`` what was wrong with it."""
    problem = [] if problem is None else problem
    position = start
    while position < file_size:
        chunk = os.pread(fd, min(RECOVER_CHUNK, file_size - position), position)
        offset = 0
        while (size := peek_size(chunk, offset)) is not None and offset + size <= len(chunk):
            try:
                header = validate_stored(chunk, offset)
            except InvalidBatch as exc:
                problem.append(_describe(exc, size))
                return
            yield position + offset, header
            offset += size
        if offset == 0:  # one batch larger than a chunk, or a torn tail
            size = peek_size(chunk)
            if size is None or size < MIN_BATCH_SIZE or position + size > file_size:
                problem.append(_torn(size, file_size - position))
                return
            try:
                header = validate_stored(os.pread(fd, size, position))
            except InvalidBatch as exc:
                problem.append(_describe(exc, size))
                return
            yield position, header
            offset = size
        position += offset


@dataclass
class FileScan:
    """What :func:`scan_log_file` found in one ``.log`` file."""

    path: Path
    batches: int = 0
    valid_bytes: int = 0
    file_size: int = 0
    problem: str | None = None  # what is wrong at byte ``valid_bytes``, None when all is well


def scan_log_file(path: Path, base_offset: int) -> FileScan:
    """Check every batch of a segment file the way :meth:`Segment.recover` does
    (framing, magic, CRC-32C, offset order), without changing it."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        scan = FileScan(path, file_size=os.fstat(fd).st_size)
        problem: list[str] = []
        for position, header in _ordered_batches(fd, scan.file_size, base_offset, problem):
            scan.batches += 1
            scan.valid_bytes = position + header.size
        if scan.valid_bytes < scan.file_size:
            scan.problem = problem[0] if problem else "torn or corrupt tail"
        return scan
    finally:
        os.close(fd)


def _describe(exc: InvalidBatch, size: int) -> str:
    if isinstance(exc, CorruptBatch):
        return f"CRC-32C mismatch in a batch of {size} bytes"
    return f"invalid batch: {exc}"


def _torn(size: int | None, left: int) -> str:
    if size is None:
        return f"{left} trailing bytes, too few for a batch header"
    if size < MIN_BATCH_SIZE:
        return f"impossible batch length {size - LOG_OVERHEAD}"
    return f"batch of {size} bytes runs past the end of the file ({left} bytes left)"
