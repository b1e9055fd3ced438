"""Kafka's ``Rate`` over a ``SampledStat``: what the replication throttles, the connection
creation rates and (as ``SimpleRate``) the client quotas measure with.

Amounts are added to the newest of at most ``window_num`` samples of ``window_size_s`` seconds
each; the rate is the sum of the samples still in the window divided by their elapsed time,
counted as at least every sample but the last being complete (Kafka's ``Rate.windowSize``),
so a rate that just started measuring does not read as a huge burst: it lets about
``window_num - 1`` samples' worth pass at once.  ``simple=True`` measures as Kafka's
``SimpleRate`` (the rate of Kafka's replication throttles) instead: over the elapsed time,
but at least one sample, so a rate that just started lets at most one sample's worth pass.
"""

from __future__ import annotations

from collections import deque
from typing import Callable


class WindowedRate:
    def __init__(self, window_num: int, window_size_s: float, monotonic: Callable[[], float],
                 simple: bool = False) -> None:
        self.window_num = window_num
        self.window_size = window_size_s
        self.monotonic = monotonic
        self.min_window = window_size_s if simple else max(window_num - 1, 1) * window_size_s
        self._samples: deque[list[float]] = deque()   # [start time, amount], oldest first

    def record(self, amount: float) -> None:
        """Add ``amount`` (negative: take it back, as Kafka's unrecord does)."""
        if amount == 0:
            return
        now = self.monotonic()
        self._expire(now)
        if not self._samples or now - self._samples[-1][0] >= self.window_size:
            self._samples.append([now, 0])
        self._samples[-1][1] += amount

    def rate(self) -> float:
        """Amount per second over the window."""
        now = self.monotonic()
        self._expire(now)
        if not self._samples:
            return 0.0
        return sum(n for _t, n in self._samples) / self.window_s(now)

    def window_s(self, now: float) -> float:
        """The time the rate is measured over (Kafka's Rate.windowSize, or SimpleRate's)."""
        elapsed = now - self._samples[0][0] if self._samples else 0.0
        return max(elapsed, self.min_window)

    def _expire(self, now: float) -> None:
        horizon = now - self.window_num * self.window_size
        while self._samples and self._samples[0][0] + self.window_size <= horizon:
            self._samples.popleft()
