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
(KIP-219).  A client without a quota is never throttled and costs no rate.
"""

from __future__ import annotations

from typing import Callable

from kavka.security.quota import ClientQuotas
from kavka.windowed_rate import WindowedRate

class ClientQuotaManager:
    def __init__(self, quotas: Callable[[], ClientQuotas], window_num: int, window_size_s: float,
                 monotonic: Callable[[], float]) -> None:
        self.quotas = quotas
        self.window_num = window_num
        self.window_size_s = window_size_s
        self.monotonic = monotonic
        self._rates: dict[tuple[str, tuple[str, str]], WindowedRate] = {}

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
