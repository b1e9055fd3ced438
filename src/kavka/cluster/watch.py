"""How brokers learn about cluster changes: a resilient watch of the cluster's keys.

``ClusterWatcher.events()`` yields, in etcd revision order:

1. a ``Snapshot`` of every key of the cluster at some revision R (one range read), then
2. a ``Change`` for every put or delete after R (one prefix watch from R+1).

If the watch stream breaks (etcd restarted, network), it is opened again from the last
revision seen + 1, so nothing is lost or repeated: etcd sends all events of one revision in
one response (fragmenting is off), so a stream never breaks inside a revision. If etcd has
compacted that revision away meanwhile, history is gone and the watcher yields a fresh
``Snapshot`` instead: consumers must treat a snapshot as "replace everything", which
``ClusterView.apply`` does. While etcd is paused or unreachable the stream is silent; the
broker learns of *its own* isolation from its session (session.py), not from the watch.

The items and the ``ClusterView`` they are folded into live in ``view.py``, which is
sans-I/O and imports no etcd client; they are re-exported here for existing callers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import aetcd.exceptions as aetcd_errors

from .errors import EtcdUnavailable
from .etcd_client import Etcd
from .keys import KeyLayout, prefix_end
from .view import Change, ClusterView, Snapshot, decode_change

__all__ = ["Change", "ClusterView", "ClusterWatcher", "Snapshot", "decode_change"]

log = logging.getLogger(__name__)


class ClusterWatcher:
    """Snapshot + ordered changes of one cluster's keys; reconnects and resyncs by itself.

    ``start_revision``: skip the initial snapshot and watch from that revision (used by a
    broker that already holds a view at ``start_revision - 1``)."""

    def __init__(self, etcd: Etcd, layout: KeyLayout, *, start_revision: int | None = None,
                 retry_backoff: float = 0.5) -> None:
        self.etcd = etcd
        self.layout = layout
        self.start_revision = start_revision
        self.retry_backoff = retry_backoff

    async def run(self, callback: Callable[[Snapshot | Change], object]) -> None:
        """Call ``callback(item)`` for every item of ``events()``, until cancelled."""
        async for item in self.events():
            callback(item)

    async def snapshot(self) -> Snapshot:
        result = await self.etcd.get_prefix(self.layout.prefix())
        entries = (decode_change(self.layout, kv.key, kv.value, kv.mod_revision,
                                 kv.create_revision) for kv in result.kvs)
        return Snapshot(result.header.revision, tuple(e for e in entries if e is not None))

    async def events(self) -> AsyncIterator[Snapshot | Change]:
        if self.start_revision is None:
            snap = await self._retrying_snapshot()
            yield snap
            last = snap.revision
        else:
            last = self.start_revision - 1
        while True:
            try:
                async for change in self._stream(last + 1):
                    last = change.revision
                    if change.ref is not None:
                        yield change
            except aetcd_errors.RevisionCompactedError as exc:
                log.warning("watch from %d: compacted (%s); resyncing", last + 1, exc)
                snap = await self._retrying_snapshot()
                yield snap
                last = snap.revision
            except (EtcdUnavailable, aetcd_errors.ClientError) as exc:
                log.warning("watch from %d broke: %r; reconnecting", last + 1, exc)
                await asyncio.sleep(self.retry_backoff)

    async def _stream(self, start_revision: int) -> AsyncIterator[Change]:
        prefix = self.layout.prefix()
        watch = await self.etcd.call(self.etcd.client.watch(
            prefix, range_end=prefix_end(prefix), start_revision=start_revision))
        try:
            async for event in watch:
                kv = event.kv
                value = None if event.kind == "DELETE" else kv.value
                change = decode_change(self.layout, kv.key, value, kv.mod_revision,
                                       kv.create_revision)
                # an unreadable key still advances the revision, so keep a placeholder
                yield change or Change(None, None, kv.mod_revision)  # type: ignore[arg-type]
        finally:
            try:
                async with asyncio.timeout(1.0):
                    await watch.cancel()
            except Exception:
                pass

    async def _retrying_snapshot(self) -> Snapshot:
        while True:
            try:
                return await self.snapshot()
            except EtcdUnavailable as exc:
                log.warning("cluster snapshot failed: %s; retrying", exc)
                await asyncio.sleep(self.retry_backoff)
