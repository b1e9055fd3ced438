"""Helpers shared by the consumer-group APIs (JoinGroup ... OffsetDelete).

The coordinator lives on the BrokerContext as ``groups`` (a GroupRunner); a
context without one (unit tests of other APIs) answers COORDINATOR_NOT_AVAILABLE.
``@coordinated(unavailable=...)`` does that check once for every group API: the
handler gets the runner, and ``unavailable`` builds the API's own error answer.
The KIP-848 APIs work only while the cluster's group.version is 1 or more, as on
Kafka: ``@consumer_protocol(off=...)`` answers with ``off`` (UNSUPPORTED_VERSION) otherwise.
A parked request comes back as a future; the handler then returns a coroutine,
which the dispatcher awaits, so the connection waits like a long-poll fetch.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
from typing import Any, Callable

from kavka.metadata.features import GROUP_VERSION

_MS = datetime.timedelta(milliseconds=1)


def coordinated(unavailable: Callable[[Any], Any], runner: str = "groups"):
    """Call ``handler(request, groups)``, or answer ``unavailable(request)`` when the broker has no
    coordinator; ``runner``: the BrokerContext attribute holding it (kavka.api._txn: "transactions")."""
    def wrap(handler: Callable[[Any, Any], Any]) -> Callable[[Any], Any]:
        @functools.wraps(handler)
        def handle(request):
            coordinator = getattr(request.broker, runner, None)
            if coordinator is None:
                return unavailable(request)
            return handler(request, coordinator)
        return handle
    return wrap


def consumer_protocol(off: Callable[[Any], Any]):
    """Call the handler while group.version is 1 or more, else answer ``off(request)``."""
    def wrap(handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
        @functools.wraps(handler)
        def handle(request):
            if request.broker.metadata.finalized_features().level(GROUP_VERSION) < 1:
                return off(request)
            return handler(request)
        return handle
    return wrap


def ms(value: datetime.timedelta | None, default: int = -1) -> int:
    return default if value is None else value // _MS


def client_host(peer: str) -> str:
    """Kafka shows a member's host as Java's InetAddress.toString(): "/127.0.0.1"."""
    host = peer.rsplit(":", 1)[0] if ":" in peer else peer
    return "/" + host.strip("[]")


def reply_or_wait(result: Any, build: Callable[[Any], Any]) -> Any:
    if isinstance(result, asyncio.Future):
        return _wait(result, build)
    return build(result)


async def _wait(future: asyncio.Future, build: Callable[[Any], Any]) -> Any:
    return build(await future)
