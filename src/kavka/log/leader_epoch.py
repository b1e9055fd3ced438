"""Leader epoch cache of one partition: which leader epoch wrote which offsets.

Theory of operation
-------------------
Each entry ``(epoch, start_offset)`` says: leader ``epoch`` wrote its first
record at ``start_offset``; its records end where the next entry starts (or at
the log end for the latest epoch).  Both columns are strictly increasing: an
epoch that wrote nothing before the next one took over is overwritten.

File ``leader-epoch-checkpoint`` in the partition directory, text, the same
shape as Kafka's::

    0                 format version
    2                 number of entries
    0 0               epoch start_offset
    3 1500

It is rewritten whole through kavka.log.checkpoint.write_atomically whenever
the cache changes, which happens only on leadership changes, truncation and
retention, never per append.  A missing or unreadable file is not fatal: the
partition log rebuilds the cache from the partitionLeaderEpoch of its batches
(a header scan), exactly what recovery does for the segments it re-validates.

``end_offset_for`` answers OffsetForLeaderEpoch: for the requested epoch, the
largest known epoch <= it and the start offset of the next higher epoch (the
log end offset when that is the latest epoch), so a follower or consumer can
find where its history and ours diverge.
"""

from __future__ import annotations

from bisect import bisect_right
from pathlib import Path

from kavka.log.checkpoint import write_atomically

FILE_NAME = "leader-epoch-checkpoint"
VERSION = 0
UNDEFINED = (-1, -1)


class LeaderEpochCache:
    def __init__(self, path: Path, entries: list[tuple[int, int]] | None = None) -> None:
        self.path = path
        self._epochs: list[int] = [e for e, _ in entries or ()]
        self._starts: list[int] = [s for _, s in entries or ()]

    @classmethod
    def load(cls, path: Path) -> "LeaderEpochCache | None":
        """The cache stored at ``path``; None when missing or malformed (rebuild it)."""
        try:
            lines = path.read_text("ascii").split("\n")
            if int(lines[0]) != VERSION:
                return None
            count = int(lines[1])
            entries = [tuple(int(f) for f in line.split()) for line in lines[2 : 2 + count]]
        except (FileNotFoundError, ValueError, IndexError, UnicodeDecodeError):
            return None
        if len(entries) != count or any(len(e) != 2 for e in entries):
            return None
        pairs = [(e, s) for e, s in entries]
        if any(b[0] <= a[0] or b[1] <= a[1] for a, b in zip(pairs, pairs[1:])):
            return None
        return cls(path, pairs)

    # -- queries -----------------------------------------------------------------------

    @property
    def latest_epoch(self) -> int:
        return self._epochs[-1] if self._epochs else -1

    def entries(self) -> list[tuple[int, int]]:
        return list(zip(self._epochs, self._starts))

    def end_offset_for(self, epoch: int, log_end_offset: int) -> tuple[int, int]:
        """(largest epoch <= ``epoch``, end offset of that epoch); (-1, -1) when unknown."""
        if epoch < 0 or not self._epochs:
            return UNDEFINED
        if epoch == self._epochs[-1]:
            return epoch, log_end_offset
        higher = bisect_right(self._epochs, epoch)  # first entry with a larger epoch
        if higher == len(self._epochs):
            return UNDEFINED  # newer than anything we know
        if higher == 0:
            # Older than our oldest entry (its history was deleted): the first epoch we
            # know starts where the requester must truncate to.
            return epoch, self._starts[0]
        return self._epochs[higher - 1], self._starts[higher]

    # -- mutation ----------------------------------------------------------------------

    def assign(self, epoch: int, start_offset: int, persist: bool = True) -> bool:
        """Record that ``epoch`` starts at ``start_offset``; True if the cache changed."""
        if epoch < 0 or start_offset < 0:
            raise ValueError(f"leader epoch entry ({epoch}, {start_offset}) is negative")
        if self._epochs and epoch == self._epochs[-1] and start_offset >= self._starts[-1]:
            return False
        # Entries this one contradicts: not older, or not starting earlier.
        while self._epochs and (self._epochs[-1] >= epoch or self._starts[-1] >= start_offset):
            self._epochs.pop()
            self._starts.pop()
        self._epochs.append(epoch)
        self._starts.append(start_offset)
        if persist:
            self.persist()
        return True

    def truncate_from_end(self, end_offset: int) -> None:
        """Forget epochs that start at or after ``end_offset`` (log truncated there)."""
        keep = bisect_right(self._starts, end_offset - 1)
        if keep < len(self._starts):
            del self._epochs[keep:], self._starts[keep:]
            self.persist()

    def truncate_from_start(self, start_offset: int) -> None:
        """Log start moved to ``start_offset``: older epochs go, the one in force starts there."""
        i = bisect_right(self._starts, start_offset) - 1  # the epoch in force at start_offset
        if i < 0 or (i == 0 and self._starts[0] == start_offset):
            return
        del self._epochs[:i], self._starts[:i]
        self._starts[0] = start_offset
        self.persist()

    def clear(self) -> None:
        self._epochs.clear()
        self._starts.clear()
        self.persist()

    def persist(self) -> None:
        lines = [str(VERSION), str(len(self._epochs))]
        lines += [f"{e} {s}" for e, s in zip(self._epochs, self._starts)]
        write_atomically(self.path, "\n".join(lines) + "\n")
