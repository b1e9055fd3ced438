"""The replication throttle of reassignment traffic (Kafka's ReplicationQuotaManager).

``leader.replication.throttled.rate`` bounds the bytes per second a leader sends to the
replicas a reassignment is adding, ``follower.replication.throttled.rate`` the bytes per
second such a replica fetches.  As in Kafka, a topic's ``leader.replication.throttled.replicas``
(a leader's out-of-sync followers) and ``follower.replication.throttled.replicas`` name more
replicas to throttle (PARTITION:BROKER items, or ``*``); kafka-reassign-partitions --throttle
sets them to the moving ones, which kavka throttles without them.  Other replication is
never throttled (ReplicaManager.replica_quota / follower_quota_of decide).

The rate is measured as Kafka's ``Rate`` (kavka.windowed_rate) over
``replication.quota.window.num`` samples of ``replication.quota.window.size.seconds``, so a
throttle that just started allows a burst of about ``(window.num - 1) * window.size``
seconds' worth.  While the rate is above the quota,
throttled partitions are left out: the leader answers them without records, the follower
does not ask for them.
"""

from __future__ import annotations

from typing import Callable

from kavka.config import LONG_MAX
from kavka.windowed_rate import WindowedRate


class ReplicationQuota(WindowedRate):
    """``bound()``: the rate setting now (it may change while the broker runs, KIP-226);
    Long.MAX_VALUE, Kafka's default, throttles nothing."""

    def __init__(self, bound: Callable[[], int], window_num: int, window_size_s: float,
                 monotonic: Callable[[], float]) -> None:
        super().__init__(window_num, window_size_s, monotonic)
        self.bound = bound

    def exceeded(self) -> bool:
        bound = self.bound()
        return bound < LONG_MAX and self.rate() > bound
