"""The replication throttle of reassignment traffic (Kafka's ReplicationQuotaManager).

``leader.replication.throttled.rate`` bounds the bytes per second a leader sends to the
replicas a reassignment is adding, ``follower.replication.throttled.rate`` the bytes per
second such a replica fetches.  As in Kafka, a topic's ``leader.replication.throttled.replicas``
(a leader's out-of-sync followers) and ``follower.replication.throttled.replicas`` name more
replicas to throttle (PARTITION:BROKER items, or ``*``); kafka-reassign-partitions --throttle
sets them to the moving ones, which kavka throttles without them.  Other replication is
never throttled (ReplicaManager.replica_quota / follower_quota_of decide).

The rate is measured as Kafka's ``Rate`` over ``replication.quota.window.num`` samples of
``replication.quota.window.size.seconds``: the bytes of the samples still in the window
divided by their elapsed time, counted as at least every sample but the last being
complete, so a throttle that just started allows a burst of about
``(window.num - 1) * window.size`` seconds' worth.  While the rate is above the quota,
throttled partitions are left out: the leader answers them without records, the follower
does not ask for them.
"""

from __future__ import annotations

from collections import deque
from typing import Callable

from kavka.config import LONG_MAX


class ReplicationQuota:
    """``bound()``: the rate setting now (it may change while the broker runs, KIP-226);
    Long.MAX_VALUE, Kafka's default, throttles nothing."""

    def __init__(self, bound: Callable[[], int], window_num: int, window_size_s: float,
                 monotonic: Callable[[], float]) -> None:
        self.bound = bound
        self.window_num = window_num
        self.window_size = window_size_s
        self.monotonic = monotonic
        self._samples: deque[list[float]] = deque()   # [start time, bytes], oldest first

    def record(self, nbytes: float) -> None:
        if nbytes <= 0:
            return
        now = self.monotonic()
        self._expire(now)
        if not self._samples or now - self._samples[-1][0] >= self.window_size:
            self._samples.append([now, 0])
        self._samples[-1][1] += nbytes

    def rate(self) -> float:
        """Bytes per second over the window."""
        now = self.monotonic()
        self._expire(now)
        if not self._samples:
            return 0.0
        return sum(n for _t, n in self._samples) / self.window_s(now)

    def window_s(self, now: float) -> float:
        """The time the rate is measured over (Kafka's Rate.windowSize): the samples' elapsed
        time, counted as at least every sample but the last being complete."""
        elapsed = now - self._samples[0][0] if self._samples else 0.0
        return max(elapsed, (self.window_num - 1) * self.window_size, self.window_size)

    def exceeded(self) -> bool:
        bound = self.bound()
        return bound < LONG_MAX and self.rate() > bound

    def _expire(self, now: float) -> None:
        horizon = now - self.window_num * self.window_size
        while self._samples and self._samples[0][0] + self.window_size <= horizon:
            self._samples.popleft()
