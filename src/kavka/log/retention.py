"""Which segments retention deletes: a pure function of segments, config and now.

Theory of operation
-------------------
Retention deletes whole segments from the front of a partition, never a part
of one, and never the active (last) segment: a partition always keeps the
segment appends go to.  A segment is a candidate only if every offset in it is
below the high watermark (its upper bound, the next segment's base offset, is
<= HW), so nothing a consumer cannot read yet is ever deleted.

Three rules run in this order, each on what the previous one left, as Kafka's
retention check does; each walks from the oldest segment and stops at the first
segment it keeps, so a deletion never leaves a hole:

1. ``retention.ms`` (topics whose ``cleanup.policy`` contains ``delete``; -1 =
   keep forever): a segment goes when ``now - largest timestamp > retention.ms``.
   The largest timestamp is the segment's greatest record ``maxTimestamp``, or
   the file's modification time when no record carries a timestamp.
2. ``retention.bytes`` (same policy; -1 = unlimited): while the partition's
   size (every segment, the active one included) exceeds the limit, the oldest
   segment goes, but only if removing it still leaves at least ``retention.bytes``
   (size - segment size >= retention.bytes); the first segment that would take
   the partition below the limit stops the walk.
3. log start offset (every policy): a segment whose successor starts at or
   below the log start offset holds nothing a reader may ask for (DeleteRecords
   moved the start past it).

The caller (PartitionLog.apply_retention) removes the chosen prefix, moves the
log start offset to the first kept segment's base offset and persists it
before touching any file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from kavka.config import TopicConfig


class SegmentView(Protocol):
    """What retention needs to know of a segment."""

    base_offset: int
    size: int

    @property
    def largest_timestamp_ms(self) -> int: ...


@dataclass(frozen=True, slots=True)
class RetentionDecision:
    """Delete the first ``count`` segments; ``reasons`` says which rule took how many."""

    count: int
    reasons: tuple[tuple[str, int], ...] = ()

    def __bool__(self) -> bool:
        return self.count > 0


def deletable_segments(segments: Sequence[SegmentView], config: TopicConfig, now_ms: int,
                       high_watermark: int, log_start_offset: int) -> RetentionDecision:
    """How many leading segments retention deletes now (see the module doc)."""
    closed = _closed_below_hw(segments, high_watermark)
    deleting = "delete" in config["cleanup.policy"]
    reasons: list[tuple[str, int]] = []
    taken = 0
    if deleting:
        n = _by_time(segments, taken, closed, config["retention.ms"], now_ms)
        taken = _note(reasons, "retention.ms", taken, n)
        n = _by_size(segments, taken, closed, config["retention.bytes"])
        taken = _note(reasons, "retention.bytes", taken, n)
    n = _by_log_start(segments, taken, closed, log_start_offset)
    taken = _note(reasons, "log start offset", taken, n)
    return RetentionDecision(taken, tuple(reasons))


def _closed_below_hw(segments: Sequence[SegmentView], high_watermark: int) -> int:
    """Number of leading closed segments whose offsets all lie below the HW."""
    n = 0
    while n < len(segments) - 1 and segments[n + 1].base_offset <= high_watermark:
        n += 1
    return n


def _note(reasons: list, reason: str, taken: int, n: int) -> int:
    if n:
        reasons.append((reason, n))
    return taken + n


def _by_time(segments, start: int, limit: int, retention_ms: int, now_ms: int) -> int:
    if retention_ms < 0:
        return 0
    i = start
    while i < limit and now_ms - segments[i].largest_timestamp_ms > retention_ms:
        i += 1
    return i - start


def _by_size(segments, start: int, limit: int, retention_bytes: int) -> int:
    if retention_bytes < 0:
        return 0
    excess = sum(s.size for s in segments[start:]) - retention_bytes
    i = start
    while i < limit and excess - segments[i].size >= 0:
        excess -= segments[i].size
        i += 1
    return i - start


def _by_log_start(segments, start: int, limit: int, log_start_offset: int) -> int:
    i = start
    while i < limit and segments[i + 1].base_offset <= log_start_offset:
        i += 1
    return i - start
