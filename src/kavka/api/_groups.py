"""Helpers shared by the consumer-group APIs (JoinGroup ... OffsetDelete).

The coordinator lives on the BrokerContext as ``groups`` (a GroupRunner); a
context without one (unit tests of other APIs) answers COORDINATOR_NOT_AVAILABLE.
The KIP-848 APIs work only while the cluster's group.version is 1 or more
(:func:`consumer_protocol_enabled`), as on Kafka.  A parked request comes back as a future; the handler then returns a coroutine,
which the dispatcher awaits, so the connection waits like a long-poll fetch.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any, Callable

from kavka.metadata.features import GROUP_VERSION

_MS = datetime.timedelta(milliseconds=1)


def runner(request):
    return getattr(request.broker, "groups", None)


def consumer_protocol_enabled(request) -> bool:
    return request.broker.metadata.finalized_features().level(GROUP_VERSION) >= 1


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
