"""kavka.replication.quota: Kafka's windowed rate behind the reassignment throttles."""

from __future__ import annotations

from kavka.config import LONG_MAX
from kavka.replication.quota import ReplicationQuota


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_unbounded_rate_throttles_nothing_and_the_bound_is_read_at_each_check():
    bound = [LONG_MAX]                                          # Kafka's default
    quota = ReplicationQuota(lambda: bound[0], 11, 1, Clock())
    quota.record(10 ** 9)
    assert not quota.exceeded()
    bound[0] = 1000                                             # set while the broker runs (KIP-226)
    assert quota.exceeded()


def test_the_rate_counts_at_least_all_samples_but_the_last_as_elapsed():
    clock = Clock()
    quota = ReplicationQuota(lambda: 1000, 11, 1, clock)
    quota.record(5000)
    assert quota.rate() == 500.0 and not quota.exceeded()      # 5000 B over 10 s: a burst is allowed
    quota.record(6000)
    assert quota.rate() == 1100.0 and quota.exceeded()
    clock.now += 30                                             # 20 s past the window: forgotten
    assert quota.rate() == 0.0 and not quota.exceeded()


def test_the_window_moves_sample_by_sample():
    clock = Clock()
    quota = ReplicationQuota(lambda: 100, 2, 1, clock)
    for _ in range(4):
        quota.record(150)
        clock.now += 1.0
    assert quota.rate() == 150.0 and quota.exceeded()          # the samples of t+2 and t+3 over 2 s
    clock.now += 0.5
    quota.record(0)                                             # nothing recorded: no new sample
    assert quota.rate() == 120.0 and quota.exceeded()
    clock.now += 1.0
    assert quota.rate() == 60.0 and not quota.exceeded()        # only t+3's sample, over 2.5 s
