"""Enforcing client quotas: Kafka's ClientQuotaManager over the stored quotas.

Each (quota key, metric tags) has a windowed rate — ``quota.window.num`` samples of
``quota.window.size.seconds`` (kavka.windowed_rate) — that connections sharing the quota
record into: the bytes of a Produce request (``producer_byte_rate``), of a Fetch response
(``consumer_byte_rate``), the handler's time as a percentage of one second
(``request_percentage``).  After recording, a rate above the quota gives a throttle time as
Kafka computes it (QuotaUtils.throttleTime)::

    throttle_ms = round((rate - quota) / quota * window_ms)

``window_ms`` being the time the rate is measured over: the time to wait, recording nothing,
until the rate is back at the quota.  As in Kafka, the byte rates' throttle is not capped
(a Fetch response is kept to :meth:`ClientQuotaManager.max_value_in_window` instead), the
request-time one is capped at one sample (ClientRequestQuotaManager's maxThrottleTimeMs).
The caller puts it in the response's ``throttle_time_ms`` and mutes the connection for that
long (KIP-219).

One difference from Kafka, in how the window starts: Kafka's ``Rate`` counts a rate that just
started (or that nobody recorded into for the whole window) as if the samples before it were
there and empty, so a new client passes ``quota.window.num - 1`` samples' worth at once (10 s
at the quota with Kafka's defaults) before its first throttle.  When the sample holding that
burst leaves the window the rate drops by as much at once and a greedy client takes it all
again: every ``quota.window.num`` seconds or so a 10 s burst, then nearly nothing, for as long
as it stays greedy — measured with librdkafka against Kafka 4.1.2 as against kavka (at a
1 MB/s quota any 10 s read +3..+19% or -80..-95%).  kavka measures client quotas as Kafka's
``SimpleRate`` instead (over the elapsed time, at least one sample): a new client passes one
sample's worth, then its samples each hold about the quota and leave the window one by one,
so the rate it gets stays within a few percent of the quota over any 10 s.  Once a rate has
samples both measure the same.

A client without a quota is never throttled and costs no rate; which quota a client has is
looked up once per stored-quotas version (a new version clears the cache).  A rate nobody
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

from kavka.security.quota import CONTROLLER_MUTATION_RATE, REQUEST_PERCENTAGE, ClientQuotas
from kavka.windowed_rate import WindowedRate

INACTIVE_EXPIRY_S = 3600.0   # Kafka's inactive sensor expiration
RESOLVED_CACHE_MAX = 10_000  # cached (key, user, client id) lookups before the cache starts over

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
        self._resolved_from: ClientQuotas | None = None   # the stored quotas _resolved answers for
        self._resolved: dict[tuple[str, str, str], tuple[float, tuple[str, str]] | None] = {}

    def max_throttle_ms(self, key: str) -> float:
        """Kafka's cap of the throttle time: one sample for request time, none for bytes."""
        return self.window_size_s * 1000 if key == REQUEST_PERCENTAGE else float("inf")

    def resolve(self, key: str, user: str, client_id: str) -> tuple[float, tuple[str, str]] | None:
        """(quota, metric tags) of ``key`` for this client, or None (ClientQuotas.resolve, cached)."""
        quotas = self.quotas()
        if not quotas.entries:
            return None
        if quotas is not self._resolved_from or len(self._resolved) >= RESOLVED_CACHE_MAX:
            self._resolved_from, self._resolved = quotas, {}
        wanted = (key, user, client_id)
        try:
            return self._resolved[wanted]
        except KeyError:
            found = self._resolved[wanted] = quotas.resolve(key, user, client_id)
            return found

    def record(self, key: str, user: str, client_id: str, amount: float) -> int:
        """Count ``amount`` against the quota of ``key`` this client has; the throttle time in ms."""
        found = self.resolve(key, user, client_id or "")
        if found is None:
            return 0
        bound, tags = found
        rate = self._rates.get((key, tags))
        if rate is None:
            rate = self._rates[(key, tags)] = WindowedRate(self.window_num, self.window_size_s, self.monotonic,
                                                           simple=True)
        self._touch((key, tags))
        rate.record(amount)
        observed = rate.rate()
        if observed <= bound:
            return 0
        window_ms = rate.window_s(self.monotonic()) * 1000
        return int(min(round((observed - bound) / bound * window_ms), self.max_throttle_ms(key)))

    def rate(self, key: str, user: str, client_id: str) -> float:
        """The rate counted against this client's quota of ``key`` now (0 without one)."""
        found = self.resolve(key, user, client_id or "")
        rate = None if found is None else self._rates.get((key, found[1]))
        return 0.0 if rate is None else rate.rate()

    def max_value_in_window(self, key: str, user: str, client_id: str) -> float | None:
        """Kafka's maxValueInQuotaWindow: ``quota.window.num - 1`` samples at the quota, the most
        one request may count and still pass (once the client counted nothing for that long);
        a Fetch response is kept to it.  None without a quota."""
        found = self.resolve(key, user, client_id or "")
        return None if found is None else found[0] * max(self.window_num - 1, 1) * self.window_size_s

    def mutation_throttle(self, user: str, client_id: str, partitions: int = 0) -> int:
        """Take ``partitions`` tokens from this client's controller mutation bucket (0: only look);
        the throttle in ms while the bucket is below zero, 0 without a quota."""
        found = self.resolve(CONTROLLER_MUTATION_RATE, user, client_id or "")
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
