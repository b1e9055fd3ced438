"""Byte ranges of segment files handed to the network layer, and the fd they share.

A fetch answers with :class:`FileSlice` objects (fd, position, size) that the
server sends with ``os.sendfile`` after the log call returned, possibly after
retention deleted the segment meanwhile.  Closing the fd at deletion would let
the kernel reuse its number for another file and the send would ship the wrong
bytes.  So the fd lives in a :class:`FileHandle` that the segment and every
slice reference; deleting a segment only drops the segment's reference (Linux
keeps an unlinked file's data while an fd is open) and CPython's reference
counting closes the fd when the last slice goes.  An explicit
:meth:`FileHandle.close` (broker shutdown) is for when nothing is being sent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from kavka.log.errors import LogCorrupted


class FileHandle:
    """An fd shared by a segment and the slices read from it; closed by the last holder."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown or already closed: nothing to do
            pass


@dataclass(frozen=True, slots=True)
class FileSlice:
    """``size`` bytes of whole batches at ``position`` of ``fd``, ready for sendfile.

    ``owner`` keeps the fd open while the slice lives, even if its segment is deleted.
    """

    fd: int
    position: int
    size: int
    owner: object = field(default=None, repr=False, compare=False)

    def read(self) -> bytes:
        data = os.pread(self.fd, self.size, self.position)
        while len(data) < self.size:  # pread may return short on huge reads
            more = os.pread(self.fd, self.size - len(data), self.position + len(data))
            if not more:
                raise LogCorrupted(f"slice of {self.size} bytes ends early at {len(data)}")
            data += more
        return data
