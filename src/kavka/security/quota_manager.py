"""Enforcing client quotas: Kafka's ClientQuotaManager over the stored quotas.

Each (quota key, metric tags) has a windowed rate — ``quota.window.num`` samples of
``quota.window.size.seconds``, measured as Kafka's ``Rate`` (kavka.windowed_rate) —
that connections sharing the quota record into: the bytes of a Produce request
(``producer_byte_rate``), of a Fetch response (``consumer_byte_rate``), the handler's time
as a percentage of one second (``request_percentage``).  After recording, a rate above the
quota gives a throttle time as Kafka computes it::

    throttle_ms = round((rate - quota) / quota * window_ms)

``window_ms`` being the time the rate is measured over, capped at
``quota.window.num * quota.window.size.seconds`` (Kafka's maxThrottleTimeMs).  The caller
puts it in the response's ``throttle_time_ms`` and mutes the connection for that long
(KIP-219).  A client without a quota is never throttled and costs no rate; a rate nobody
recorded into for an hour is dropped (Kafka's inactive sensor expiry), so clients cycling
through client ids under a default quota cost a bounded amount of memory.

``controller_mutation_rate`` (KIP-599) is a token bucket instead: partitions created or
deleted take tokens, which refill at the quota's rate up to a burst of
``quota * controller.quota.window.num * controller.quota.window.size.seconds``; while the
bucket is below zero a strict request (CreateTopics v6+, CreatePartitions v3+, DeleteTopics
v5+) is refused THROTTLING_QUOTA_EXCEEDED topic by topic, and the throttle time is the time
the bucket takes to climb back to zero: ``-tokens / quota``.
"""

from __future__ import annotations

from typing import Callable

from kavka.security.quota import CONTROLLER_MUTATION_RATE, ClientQuotas
from kavka.windowed_rate import WindowedRate

INACTIVE_EXPIRY_S = 3600.0   # Kafka's inactive sensor expiration

class ClientQuotaManager:
    def __init__(self, quotas: Callable[[], ClientQuotas], window_num: int, window_size_s: float,
                 monotonic: Callable[[], float], mutation_window_s: float = 11.0) -> None:
        self.quotas = quotas
        self.window_num = window_num
        self.window_size_s = window_size_s
        self.monotonic = monotonic
        self.mutation_window_s = mutation_window_s   # controller.quota.window.num * .size.seconds
        self._rates: dict[tuple[str, tuple[str, str]], WindowedRate] = {}
        self._buckets: dict[tuple[str, str], list[float]] = {}   # tags -> [tokens, last refill]
        self._used: dict[object, float] = {}   # a rate's or bucket's key -> when last recorded into
        self._next_sweep = monotonic() + INACTIVE_EXPIRY_S

    @property
    def max_throttle_ms(self) -> int:
        return int(self.window_num * self.window_size_s * 1000)

    def record(self, key: str, user: str, client_id: str, amount: float) -> int:
        """Count ``amount`` against the quota of ``key`` this client has; the throttle time in ms."""
        quotas = self.quotas()
        found = quotas.resolve(key, user, client_id or "") if quotas.entries else None
        if found is None:
            return 0
        bound, tags = found
        rate = self._rates.get((key, tags))
        if rate is None:
            rate = self._rates[(key, tags)] = WindowedRate(self.window_num, self.window_size_s, self.monotonic)
        self._touch((key, tags))
        rate.record(amount)
        observed = rate.rate()
        if observed <= bound:
            return 0
        window_ms = rate.window_s(self.monotonic()) * 1000
        return min(round((observed - bound) / bound * window_ms), self.max_throttle_ms)

    def rate(self, key: str, user: str, client_id: str) -> float:
        """The rate counted against this client's quota of ``key`` now (0 without one)."""
        found = self.quotas().resolve(key, user, client_id or "")
        rate = None if found is None else self._rates.get((key, found[1]))
        return 0.0 if rate is None else rate.rate()

    def mutation_throttle(self, user: str, client_id: str, partitions: int = 0) -> int:
        """Take ``partitions`` tokens from this client's controller mutation bucket (0: only look);
        the throttle in ms while the bucket is below zero, 0 without a quota."""
        quotas = self.quotas()
        found = quotas.resolve(CONTROLLER_MUTATION_RATE, user, client_id or "") if quotas.entries else None
        if found is None:
            return 0
        rate, tags = found
        burst = rate * self.mutation_window_s
        now = self.monotonic()
        bucket = self._buckets.setdefault(tags, [burst, now])
        self._touch(tags)
        bucket[0] = min(burst, bucket[0] + rate * (now - bucket[1])) - partitions
        bucket[1] = now
        return round(-bucket[0] / rate * 1000) if bucket[0] < 0 else 0

    def _touch(self, key) -> None:
        now = self.monotonic()
        self._used[key] = now
        if now >= self._next_sweep:
            self._next_sweep = now + INACTIVE_EXPIRY_S
            for stale in [k for k, t in self._used.items() if now - t > INACTIVE_EXPIRY_S]:
                del self._used[stale]
                self._rates.pop(stale, None)
                self._buckets.pop(stale, None)

    def tracked(self) -> int:
        """How many rates and buckets are kept."""
        return len(self._rates) + len(self._buckets)
