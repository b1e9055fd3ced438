"""A thin, bounded shell around the asyncio etcd v3 client (``aetcd``, gRPC).

Why aetcd: it is asyncio-native (the broker runs on one event loop, uvloop included),
maintained (1.0 in 2026), and works on Python 3.11 with the grpcio/protobuf that pip resolves
here (grpcio 1.85, protobuf 7). It covers KV, transactions, leases and watches with start
revisions, which is all this layer needs.

What this shell adds: every call is bounded by ``op_timeout`` (a paused or unreachable etcd
must not hang the broker) and every transport failure becomes ``EtcdUnavailable``, so callers
handle one exception. ``parse_endpoints`` reads the ``--cluster etcd://h:p[,h:p]`` syntax.

Limits: aetcd talks to one endpoint per client; ``connect`` tries the listed endpoints in
order and keeps the first that answers. Failing over to another endpoint later is not done
here (a single etcd, or a load balancer in front of a cluster, covers development and tests).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import aetcd
import aetcd.exceptions as aetcd_errors

from .errors import EtcdUnavailable

T = TypeVar("T")

_TRANSPORT_ERRORS = (aetcd_errors.ConnectionFailedError, aetcd_errors.ConnectionTimeoutError,
                     aetcd_errors.InternalError, asyncio.TimeoutError, OSError)


def parse_endpoints(spec: str) -> list[tuple[str, int]]:
    """``etcd://h1:2379,h2:2379`` (scheme optional) → ``[("h1", 2379), ("h2", 2379)]``."""
    body = spec.split("://", 1)[1] if "://" in spec else spec
    endpoints = []
    for item in filter(None, (part.strip() for part in body.split(","))):
        host, sep, port = item.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"invalid etcd endpoint {item!r} (want HOST:PORT)")
        endpoints.append((host.strip("[]"), int(port)))
    if not endpoints:
        raise ValueError(f"no etcd endpoint in {spec!r}")
    return endpoints


class Etcd:
    """One connection to etcd with bounded calls. Create with ``await Etcd.connect(...)``."""

    def __init__(self, client: aetcd.Client, op_timeout: float) -> None:
        self.client = client
        self.op_timeout = op_timeout
        self.tx = client.transactions  # compare/put/get/delete builders

    @classmethod
    async def connect(cls, endpoints: str | Sequence[tuple[str, int]], *,
                      op_timeout: float = 5.0) -> Etcd:
        if isinstance(endpoints, str):
            endpoints = parse_endpoints(endpoints)
        errors = []
        for host, port in endpoints:
            etcd = cls(aetcd.Client(host=host, port=port, timeout=op_timeout), op_timeout)
            try:
                await etcd.call(etcd.client.status())
                return etcd
            except EtcdUnavailable as exc:
                errors.append(f"{host}:{port}: {exc}")
                await etcd.close()
        raise EtcdUnavailable("no etcd endpoint answered: " + "; ".join(errors))

    async def close(self) -> None:
        try:
            async with asyncio.timeout(self.op_timeout):
                await self.client.close()
        except Exception:  # closing a dead channel may fail or time out: ignore
            pass

    async def call(self, awaitable: Awaitable[T], timeout: float | None = None) -> T:
        """Await one etcd operation, bounded; transport failures become EtcdUnavailable.

        ``asyncio.timeout``, not ``wait_for``: on 3.11 ``wait_for`` swallows a cancellation
        that arrives as the operation completes, which left stopped tasks running."""
        try:
            async with asyncio.timeout(timeout or self.op_timeout):
                return await awaitable
        except _TRANSPORT_ERRORS as exc:
            raise EtcdUnavailable(f"etcd: {type(exc).__name__}: {exc}") from exc

    # -- the few operations the cluster layer uses --------------------------------------
    async def get(self, key: bytes) -> Any:
        """The key's KeyValue (``.value``, ``.mod_revision``, ...) or None."""
        return await self.call(self.client.get(key))

    async def get_prefix(self, prefix: bytes) -> Any:
        """A GetRange: ``.header.revision`` and ``.kvs`` (raw KeyValue messages)."""
        return await self.call(self.client.get_prefix(prefix))

    async def txn(self, compare: list[Any], success: list[Any],
                  failure: list[Any] | None = None) -> tuple[bool, list[Any]]:
        return await self.call(self.client.transaction(compare, success, failure or []))

    async def grant(self, ttl: int) -> Any:
        return await self.call(self.client.lease(ttl))

    async def keepalive(self, lease_id: int, timeout: float) -> int:
        """Refresh a lease once; its remaining TTL in seconds (<= 0: the lease is gone)."""
        reply = await self.call(self.client.refresh_lease(lease_id), timeout)
        return -1 if reply is None else int(reply.TTL)

    async def revoke(self, lease_id: int, timeout: float | None = None) -> None:
        await self.call(self.client.revoke_lease(lease_id), timeout)


async def stop_task(task: asyncio.Task[Any] | None, timeout: float = 5.0) -> None:
    """Cancel a background task and wait (bounded) until it has ended.

    Cancels again while it runs on: a library may swallow one cancellation."""
    if task is None:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not task.done() and loop.time() < deadline:
        task.cancel()
        await asyncio.wait({task}, timeout=min(0.5, max(0.01, deadline - loop.time())))
    if task.done() and not task.cancelled() and task.exception() is not None:
        logging.getLogger(__name__).warning("task %s ended with %r", task.get_name(),
                                            task.exception())
