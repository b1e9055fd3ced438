"""Helpers for tests/cluster: bounded coroutine runs, polling, registered brokers.

There is no pytest-asyncio: tests run coroutines with ``run()``, bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from kavka.cluster.etcd_client import Etcd
from kavka.cluster.etcd_server import EtcdServer
from kavka.cluster.keys import KeyLayout
from kavka.cluster.model import BrokerInfo
from kavka.cluster.session import BrokerSession

T = TypeVar("T")

# etcd's minimum lease TTL with default election settings is about 2 s (it rounds up).
TTL = 2


def run(coro: Awaitable[T], timeout: float = 30.0, *, uvloop: bool = False) -> T:
    """Run one test coroutine on a fresh loop, bounded (``asyncio.timeout``: on 3.11
    ``wait_for`` can swallow the cancellation and let a hung test pass). ``uvloop``: on the
    loop the broker runs on."""
    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro
    if uvloop:
        import uvloop as _uvloop
        return _uvloop.run(bounded())
    return asyncio.run(bounded())


async def eventually(predicate: Callable[[], Any], timeout: float, what: str,
                     interval: float = 0.05) -> Any:
    """Poll an (optionally async) predicate until truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def connect(server: EtcdServer, op_timeout: float = 2.0) -> Etcd:
    return await Etcd.connect(server.endpoint, op_timeout=op_timeout)


async def broker(server: EtcdServer, layout: KeyLayout, broker_id: int,
                 ttl: int = TTL) -> BrokerSession:
    """A registered broker with its own etcd connection, as a separate process would have."""
    etcd = await connect(server)
    session = BrokerSession(etcd, layout, BrokerInfo(broker_id, "127.0.0.1", 9000 + broker_id),
                            ttl=ttl)
    await session.register()
    return session


async def shutdown(*sessions: BrokerSession, revoke: bool = True) -> None:
    for s in sessions:
        await s.close(revoke=revoke)
        await s.etcd.close()
