"""A broker's registration in etcd: a lease, a leased key, a keepalive loop, loss detection.

Lifecycle of one ``BrokerSession`` (one-shot: after loss, the broker makes a new one)::

    NEW --register()--> LIVE --lease gone / deadline passed--> LOST
                         |
                         +--close()--> CLOSED   (lease revoked: the key disappears at once)

* ``register`` grants a lease of ``ttl`` seconds (etcd may round it up: it enforces a
  minimum of about 2 s with default settings) and creates ``brokers/<id>`` bound to it in a
  transaction that requires the key to be absent. If a live broker holds the id the lease is
  revoked and ``BrokerIdInUse`` raised; ``retry_for`` lets a restarted broker wait for the
  registration of its own previous, dead process to expire.
* The key's create revision is the **broker epoch**: unique per registration, growing.
* Keepalives go every ``ttl/3`` s, each bounded by the time left on the lease. The session
  is LOST when a keepalive says the lease is gone, or when ``LeaseLiveness`` says its
  deadline has passed without an acknowledgement (see liveness.py for why that is early
  enough). Then ``lost`` is set and every ``on_lost`` callback runs once; the session makes
  one bounded attempt to revoke the lease, so its keys go as soon as etcd is reachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from ..clock import SYSTEM_CLOCK, Clock
from .errors import BrokerIdInUse, EtcdUnavailable, SessionLost
from .etcd_client import Etcd, stop_task
from .keys import KeyLayout
from .liveness import LeaseLiveness
from .model import BrokerInfo

log = logging.getLogger(__name__)

NEW, LIVE, LOST, CLOSED = "new", "live", "lost", "closed"

# etcd rounds shorter TTLs up to its minimum (about 2 s with default election settings)
MIN_TTL = 2


def lease_ttl_seconds(session_timeout_ms: int) -> int:
    """The lease TTL for a ``broker.session.timeout.ms``-style setting: whole seconds, rounded
    up (a shorter lease than configured would declare brokers dead too early)."""
    return max(MIN_TTL, -(-session_timeout_ms // 1000))


class BrokerSession:
    def __init__(self, etcd: Etcd, layout: KeyLayout, info: BrokerInfo, *, ttl: int = 10,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.etcd = etcd
        self.layout = layout
        self.info = info
        self.ttl = ttl
        self.clock = clock
        self.state = NEW
        self.lease_id = 0
        self.broker_epoch = 0
        self.lost = asyncio.Event()
        self._on_lost: list[Callable[[], object]] = []
        self._liveness: LeaseLiveness | None = None
        self._task: asyncio.Task[None] | None = None
        self._revoke_task: asyncio.Task[None] | None = None

    @property
    def key(self) -> bytes:
        return self.layout.broker(self.info.broker_id)

    @property
    def is_live(self) -> bool:
        return self.state == LIVE and not self._deadline_passed()

    def on_lost(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` once when the session is lost (not on a clean close)."""
        self._on_lost.append(callback)

    def check(self) -> None:
        """Raise SessionLost unless the registration is certainly still held."""
        if not self.is_live:
            raise SessionLost(f"broker {self.info.broker_id} session is {self.state}")

    # -- registration --------------------------------------------------------------------
    async def register(self, retry_for: float = 0.0) -> int:
        """Register; return the broker epoch. Waits up to ``retry_for`` s for the id to free."""
        if self.state != NEW:
            raise RuntimeError(f"session is {self.state}")
        deadline = self.clock.monotonic() + retry_for
        while True:
            try:
                return await self._try_register()
            except BrokerIdInUse:
                if self.clock.monotonic() >= deadline:
                    raise
                await asyncio.sleep(min(0.2, max(0.01, deadline - self.clock.monotonic())))

    async def _try_register(self) -> int:
        sent_at = self.clock.monotonic()
        lease = await self.etcd.grant(self.ttl)
        tx = self.etcd.tx
        ok, responses = await self.etcd.txn(
            compare=[tx.create(self.key) == 0],
            success=[tx.put(self.key, self.info.encode(), lease=lease.id)],
            failure=[tx.get(self.key)])
        if not ok:
            with contextlib.suppress(EtcdUnavailable):
                await self.etcd.revoke(lease.id)
            holder = responses[0][0][0] if responses and responses[0] else None
            raise BrokerIdInUse(self.info.broker_id, holder)
        self.lease_id = lease.id
        self.broker_epoch = responses[0].response_put.header.revision
        self._liveness = LeaseLiveness(lease.ttl, sent_at)
        self.state = LIVE
        self._task = asyncio.get_running_loop().create_task(self._keepalive_loop())
        return self.broker_epoch

    async def update(self, info: BrokerInfo) -> bool:
        """Rewrite the registration's value (same lease, same key: the broker epoch, its
        create revision, stays); False when the key is not ours any more (the session
        is being lost: the next registration writes ``info``)."""
        self.info = info
        if self.state != LIVE:
            return False
        tx = self.etcd.tx
        ok, _ = await self.etcd.txn(
            compare=[tx.create(self.key) == self.broker_epoch],
            success=[tx.put(self.key, info.encode(), lease=self.lease_id)], failure=[])
        return ok

    # -- keepalive -----------------------------------------------------------------------
    def _deadline_passed(self) -> bool:
        return self._liveness is None or self._liveness.is_lost(self.clock.monotonic())

    async def _keepalive_loop(self) -> None:
        assert self._liveness is not None
        interval = max(0.1, self._liveness.ttl / 3)
        while self.state == LIVE:
            await self._keepalive_once()
            if self._liveness.is_lost(self.clock.monotonic()):
                self._mark_lost()
                return
            left = self._liveness.time_left(self.clock.monotonic())
            await asyncio.sleep(min(interval, left))

    async def _keepalive_once(self) -> None:
        assert self._liveness is not None
        sent_at = self.clock.monotonic()
        budget = self._liveness.time_left(sent_at)
        if budget <= 0:
            return
        try:
            remaining = await self.etcd.keepalive(self.lease_id, timeout=budget)
        except EtcdUnavailable as exc:
            log.warning("broker %d: keepalive failed: %s", self.info.broker_id, exc)
            return
        except Exception as exc:  # e.g. "lease not found" surfaces as a generic client error
            log.warning("broker %d: keepalive refused: %r", self.info.broker_id, exc)
            remaining = -1
        self._liveness.acknowledged(sent_at, remaining)

    def _mark_lost(self) -> None:
        if self.state != LIVE:
            return
        self.state = LOST
        log.warning("broker %d: etcd session lost (lease %x)", self.info.broker_id, self.lease_id)
        self.lost.set()
        for callback in self._on_lost:
            try:
                callback()
            except Exception:
                log.exception("on_lost callback failed")
        self._revoke_task = asyncio.get_running_loop().create_task(self._revoke_quietly())

    async def _revoke_quietly(self) -> None:
        with contextlib.suppress(Exception):
            await self.etcd.revoke(self.lease_id, timeout=max(1.0, float(self.ttl)))

    # -- shutdown ------------------------------------------------------------------------
    async def close(self, revoke: bool = True) -> None:
        """Stop keepalives; with ``revoke``, delete the registration now instead of at expiry."""
        was_live = self.state == LIVE
        if self.state in (NEW, LIVE):
            self.state = CLOSED
        await stop_task(self._task)
        if revoke and was_live:
            with contextlib.suppress(Exception):
                await self.etcd.revoke(self.lease_id)
