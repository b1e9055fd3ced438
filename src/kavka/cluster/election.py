"""Controller election over etcd, with a monotonically increasing controller epoch.

Keys (see keys.py): ``controller`` holds ``ControllerInfo`` and is bound to the winner's
broker lease; ``controller_epoch`` holds the last epoch won and is never deleted.

One campaign is one transaction::

    read controller_epoch            -> epoch e (0 if absent), mod revision m (0 if absent)
    txn  if   create_revision(controller) == 0       # nobody is controller
         and  mod_revision(controller_epoch) == m    # nobody won since we read e
         then put controller = {me, e+1} (leased), put controller_epoch = e+1
         else get controller

Both guards are needed: the first gives one controller at a time, the second makes the epoch
strictly increasing even when two brokers campaign at once after the same vacancy. The winner's
``ControllerClaim`` (epoch, create revision of its controller key) guards every controller
write (state_store.py).

A loser watches the controller key from the revision it saw and campaigns again when it is
deleted (the controller's lease expired or was revoked, or it resigned). A winner watches its
own key and stops being controller when it is deleted or when its broker session is lost; the
session's loss deadline precedes the lease's expiry in etcd (liveness.py), so an old controller
knows it is deposed before a new one can be elected. Every wait is also cut at ``recheck``
seconds to re-read the key, so a missed watch event costs at most that much delay.

When etcd cannot be reached the loop drops its claim (listeners hear None) and retries with
backoff; a campaign that finds the controller key bound to its own session's lease reclaims it
with the same epoch, so a short etcd outage does not force an election.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from .errors import EtcdUnavailable, SessionLost
from .etcd_client import Etcd, stop_task
from .keys import KeyLayout
from .model import ControllerClaim, ControllerInfo, decode_epoch, encode_epoch
from .session import BrokerSession

log = logging.getLogger(__name__)

Listener = Callable[[ControllerClaim | None], object]


class ControllerElection:
    def __init__(self, etcd: Etcd, layout: KeyLayout, session: BrokerSession, *,
                 recheck: float = 5.0, retry_backoff: float = 0.2) -> None:
        self.etcd = etcd
        self.layout = layout
        self.session = session
        self.recheck = recheck
        self.retry_backoff = retry_backoff
        self.claim: ControllerClaim | None = None
        self._listeners: list[Listener] = []
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def is_controller(self) -> bool:
        return self.claim is not None and self.session.is_live

    def on_change(self, listener: Listener) -> None:
        """``listener(claim)`` when this broker becomes controller, ``listener(None)`` when not."""
        self._listeners.append(listener)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, resign: bool = True) -> None:
        self._stopping = True
        await stop_task(self._task)
        self._task = None
        claim = self.claim
        await self._set_claim(None)
        if resign and claim is not None:
            with contextlib.suppress(EtcdUnavailable):
                await self.resign(claim)

    async def wait_controller(self, timeout: float) -> ControllerClaim:
        """Wait (bounded) until this broker is controller; its claim."""
        async def wait() -> ControllerClaim:
            async with self._changed:
                await self._changed.wait_for(lambda: self.is_controller)
                assert self.claim is not None
                return self.claim
        return await asyncio.wait_for(wait(), timeout)

    async def resign(self, claim: ControllerClaim) -> bool:
        """Delete the controller key if it is still ours; True if it was."""
        key = self.layout.controller()
        tx = self.etcd.tx
        ok, _ = await self.etcd.txn([tx.create(key) == claim.create_revision], [tx.delete(key)])
        return ok

    # -- the loop ------------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = self.retry_backoff
        while self.session.is_live and not self._stopping:
            try:
                await self._round()
                backoff = self.retry_backoff
            except SessionLost:
                break
            except Exception as exc:  # etcd unreachable, or an unexpected client error
                log.warning("controller election: %r; retrying in %.1fs", exc, backoff)
                await self._set_claim(None)  # unsure whether we still hold it: assume not
                await asyncio.sleep(backoff)
                backoff = min(2.0, backoff * 2)
        await self._set_claim(None)

    async def _round(self) -> None:
        claim, seen_revision = await self.campaign()
        if claim is not None:
            await self._set_claim(claim)
            await self._hold(claim)
            await self._set_claim(None)
        elif seen_revision:
            await self._wait_key_change(seen_revision + 1)
        else:
            await asyncio.sleep(self.retry_backoff)  # lost a race: try again soon

    async def campaign(self) -> tuple[ControllerClaim | None, int]:
        """One attempt. (claim, 0) if won (or if the controller key found is already bound to
        this session's lease); else (None, revision at which another controller was seen, or 0
        if none was: the caller should simply retry)."""
        self.session.check()
        epoch_key, key = self.layout.controller_epoch(), self.layout.controller()
        current = await self.etcd.get(epoch_key)
        epoch = decode_epoch(None if current is None else current.value)
        mod = 0 if current is None else current.mod_revision
        tx = self.etcd.tx
        info = ControllerInfo(self.session.info.broker_id, epoch + 1)
        ok, responses = await self.etcd.txn(
            compare=[tx.create(key) == 0, tx.mod(epoch_key) == mod],
            success=[tx.put(key, info.encode(), lease=self.session.lease_id),
                     tx.put(epoch_key, encode_epoch(epoch + 1))],
            failure=[tx.get(key)])
        if ok:
            revision = responses[0].response_put.header.revision
            log.info("broker %d is controller, epoch %d", info.broker_id, info.epoch)
            return ControllerClaim(info.broker_id, info.epoch, revision), 0
        found = responses[0][0][1] if responses and responses[0] else None
        if found is None:
            return None, 0
        if found.lease == self.session.lease_id:
            # our own key, e.g. kept while etcd was briefly unreachable: still ours
            mine = ControllerInfo.decode(found.value)
            return ControllerClaim(mine.broker_id, mine.epoch, found.create_revision), 0
        return None, found.header.revision

    async def _hold(self, claim: ControllerClaim) -> None:
        """Return when the claim is gone: key deleted, or our session lost."""
        while self.session.is_live and not self._stopping:
            changed = await self._wait_key_change(claim.create_revision + 1)
            if not changed:  # timed out: make sure the key is still ours
                current = await self.etcd.get(self.layout.controller())
                if current is None or current.create_revision != claim.create_revision:
                    return
            else:
                return

    async def _wait_key_change(self, start_revision: int) -> bool:
        """True once the controller key changes after ``start_revision`` (or our session is
        lost); False after ``recheck`` seconds without news."""
        watch = await self.etcd.call(
            self.etcd.client.watch(self.layout.controller(), start_revision=start_revision))
        lost = asyncio.ensure_future(self.session.lost.wait())
        event = asyncio.ensure_future(_first_event(watch))
        try:
            done, _ = await asyncio.wait({lost, event}, timeout=self.recheck,
                                         return_when=asyncio.FIRST_COMPLETED)
            if event in done and event.exception() is not None:
                raise EtcdUnavailable(f"controller watch failed: {event.exception()!r}")
            return bool(done)
        finally:
            for task in (lost, event):
                task.cancel()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(1.0):
                    await watch.cancel()

    async def _set_claim(self, claim: ControllerClaim | None) -> None:
        if claim == self.claim:
            return
        self.claim = claim
        async with self._changed:
            self._changed.notify_all()
        for listener in self._listeners:
            try:
                listener(claim)
            except Exception:
                log.exception("controller listener failed")


async def _first_event(watch: object) -> object:
    async for event in watch:  # type: ignore[attr-defined]
        return event
    return None
