"""Segment files opened on demand, through one LRU of open fds per process.

Theory of operation
-------------------
Kafka keeps three fds open per segment (``.log``, ``.index``, ``.timeindex``)
for the segment's life, so 20,000 partitions cost at least 60,000 fds and an
attacker who creates partitions exhausts ``RLIMIT_NOFILE`` (then new
connections fail and the broker cannot even restart).  Here every segment
file is a :class:`LazyFile`: a path and open flags, plus a
:class:`~kavka.log.file_slice.FileHandle` while it is open.  ``get()`` returns
the open handle (and marks it most recently used) or opens the file; when
more than ``limit`` files are open the least recently used one is *evicted*:
the LazyFile drops its reference to the handle.  The handle's fd is then
closed by reference counting as soon as nothing else holds it, so a
:class:`~kavka.log.file_slice.FileSlice` in flight for ``sendfile`` (or the
cleaner's job) keeps the fd valid although evicted; the next ``get()`` opens
the file again.

Active segments are not pinned: their ``.log`` is touched on every append and
read, so it stays at the young end of the LRU, while the indexes of a segment
are opened only to write an entry, truncate or fsync (lookups use the
in-memory columns).  A closed segment of an idle partition therefore costs no
fd at all, and the open-fd count is ``limit`` plus slices in flight plus
sockets, whatever the partition count.

Durability is not affected: on Linux ``fsync`` of a newly opened fd flushes
every dirty page of the file, including those written through an fd that was
closed since.

The cache is per process because the fd limit is: every broker in a process
(tests run several) shares it, and the last broker to start sets the limit
(``log.max.open.files``, at most half of RLIMIT_NOFILE, kavka.log.log_manager).
It is not thread-safe: the event-loop thread owns every segment (the cleaner's
worker process receives fds, not LazyFiles).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

from kavka.log.file_slice import FileHandle

DEFAULT_LIMIT = 10_000
_CLOSED = FileHandle(-1)  # what a released file hands out: every use fails with EBADF, as before


class FileCache:
    """An LRU of open :class:`LazyFile` handles; see the module doc."""

    __slots__ = ("limit", "_open", "opens", "evictions")

    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self.limit = limit
        self._open: OrderedDict[LazyFile, None] = OrderedDict()
        self.opens = 0  # files opened (counting reopens), for tests and benchmarks
        self.evictions = 0

    def file(self, path: Path | str, flags: int, handle: FileHandle | None = None) -> "LazyFile":
        """A LazyFile for ``path``; ``handle`` adopts an fd the caller just opened."""
        lazy = LazyFile(self, str(path), flags)
        if handle is not None:
            lazy.handle = handle
            self._admit(lazy)
        return lazy

    def set_limit(self, limit: int) -> int:
        """Change the limit (evicting at once if needed); returns the previous one."""
        previous, self.limit = self.limit, max(1, limit)
        self._evict()
        return previous

    @property
    def open_count(self) -> int:
        return len(self._open)

    def _open_file(self, lazy: "LazyFile") -> FileHandle:
        handle = lazy.handle = FileHandle(os.open(lazy.path, lazy.flags, 0o644))
        self.opens += 1
        self._admit(lazy)
        return handle

    def _admit(self, lazy: "LazyFile") -> None:
        self._open[lazy] = None
        self._evict()

    def _evict(self) -> None:
        while len(self._open) > self.limit:
            victim, _ = self._open.popitem(last=False)
            victim.handle = None  # the fd closes when the last slice holding it goes
            self.evictions += 1

    def _forget(self, lazy: "LazyFile") -> None:
        self._open.pop(lazy, None)


class LazyFile:
    """One segment file, opened on demand through its :class:`FileCache`."""

    __slots__ = ("cache", "path", "flags", "handle", "released", "__weakref__")

    def __init__(self, cache: FileCache, path: str, flags: int) -> None:
        self.cache = cache
        self.path = path
        self.flags = flags & ~(os.O_CREAT | os.O_EXCL | os.O_TRUNC)  # a reopen never creates or empties
        self.handle: FileHandle | None = None
        self.released = False

    def get(self) -> FileHandle:
        """The open handle (hold it, not its fd, across calls that may open other files)."""
        handle = self.handle
        if handle is not None:
            self.cache._open.move_to_end(self)
            return handle
        if self.released:
            return _CLOSED
        return self.cache._open_file(self)

    def fd(self) -> int:
        return self.get().fd

    @property
    def is_open(self) -> bool:
        return self.handle is not None

    def rename(self, path: Path | str) -> None:
        """The file was renamed (open fds follow it; a reopen uses the new name)."""
        self.path = str(path)

    def close(self) -> None:
        """Close the fd now (broker shutdown: nothing is being sent any more)."""
        self.cache._forget(self)
        handle, self.handle = self.handle, None
        self.released = True
        if handle is not None:
            handle.close()

    def release(self) -> None:
        """Let go without closing: slices in flight keep the fd until they are done."""
        self.cache._forget(self)
        self.handle = None
        self.released = True

    def __repr__(self) -> str:
        return f"LazyFile({self.path!r}, open={self.is_open})"


FILES = FileCache()  # the process's cache
