"""How requests count against client quotas (kavka.security.quota_manager), as Kafka's
KafkaApis counts them.

Produce counts its request's bytes (``producer_byte_rate``), Fetch its response's
(``consumer_byte_rate``, not a follower's), each with the handler time so far
(``request_percentage``): :func:`bandwidth_throttle` gives the larger of the two throttle
times, which the response carries in ``throttle_time_ms``; a quota'd consumer's Fetch reads
at most :func:`max_value_in_window` bytes.  Every other request's handler time
is counted by the dispatcher once it is done (:func:`request_time_throttle`).  The dispatcher
then mutes the connection for ``request.throttle_ms`` after the response is sent (KIP-219).
CreateTopics, CreatePartitions and DeleteTopics take partitions from the client's
``controller_mutation_rate`` bucket (KIP-599) through :class:`MutationQuota`.
The user is the principal's name (``ANONYMOUS`` before authentication), as Kafka's quota
callback takes it.  Requests of the cluster's own brokers (forwarding, transaction markers,
replica fetches: kavka.api.inter_broker.from_broker, which a client cannot claim by its client
id on an authenticated inter-broker listener) count against nothing, as Kafka exempts
inter-broker traffic; a forwarded request was counted where the client sent it.
"""

from __future__ import annotations

import datetime
import time

from kavka.api.registry import Request
from kavka.api.inter_broker import from_broker
from kavka.protocol.errors import ErrorCode
from kavka.security.quota import REQUEST_PERCENTAGE

THROTTLED = "The throttling quota has been exceeded."


def exempt(request: Request) -> bool:
    return from_broker(request)


def bandwidth_throttle(request: Request, key: str, amount: int) -> int:
    """Count ``amount`` against the client's ``key`` quota and its time so far; the throttle (ms)."""
    if exempt(request):
        return 0
    quotas = request.broker.client_quotas
    bandwidth = quotas.record(key, request.principal.name, request.client_id or "", amount)
    request.throttle_ms = max(bandwidth, request_time_throttle(request))
    return request.throttle_ms


def max_value_in_window(request: Request, key: str) -> float | None:
    """The most one request may count against the client's ``key`` quota (a Fetch response is
    kept to it, as Kafka keeps it); None without a quota or for the cluster's own brokers."""
    if exempt(request):
        return None
    return request.broker.client_quotas.max_value_in_window(key, request.principal.name, request.client_id or "")


def unrecord(request: Request, key: str, amount: int) -> None:
    """Take back an amount a throttled answer did not send (Kafka's unrecordQuotaSensor); only
    ever after :func:`bandwidth_throttle` throttled, so never for an exempt request."""
    request.broker.client_quotas.record(key, request.principal.name, request.client_id or "", -amount)


def request_time_throttle(request: Request) -> int:
    """Count the handler's time as a percentage of a second, once; the throttle (ms)."""
    if request.time_recorded or not request.started or exempt(request):
        return 0
    request.time_recorded = True
    percent_seconds = (time.perf_counter() - request.started) * 100
    return request.broker.client_quotas.record(REQUEST_PERCENTAGE, request.principal.name,
                                               request.client_id or "", percent_seconds)


class MutationQuota:
    """One request's partition creations and deletions against ``controller_mutation_rate``:
    from version ``strict_since`` on a topic is refused THROTTLING_QUOTA_EXCEEDED while the
    bucket is below zero (Kafka's strict mode); older versions are only throttled."""

    def __init__(self, request: Request, strict_since: int) -> None:
        self.request = request
        self.strict = request.version >= strict_since
        self.exempt = exempt(request)
        self.throttle_ms = 0

    def refusal(self) -> tuple[ErrorCode, str] | None:
        """The error of a topic this request may not change now, or None."""
        if self.strict and self._take(0) > 0:
            return ErrorCode.throttling_quota_exceeded, THROTTLED
        return None

    def record(self, partitions: int) -> None:
        self._take(partitions)

    def _take(self, partitions: int) -> int:
        if self.exempt:
            return 0
        r = self.request
        self.throttle_ms = r.broker.client_quotas.mutation_throttle(r.principal.name, r.client_id or "", partitions)
        r.throttle_ms = max(r.throttle_ms, self.throttle_ms)
        return self.throttle_ms

    def throttle_time(self) -> datetime.timedelta:
        return datetime.timedelta(milliseconds=self.throttle_ms)
