"""How brokers learn about cluster changes: a resilient watch and a pure metadata view.

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

``ClusterView`` is sans-I/O: it folds snapshots and changes into dictionaries that the broker
(Metadata, fetcher, controller) reads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aetcd.exceptions as aetcd_errors

from .errors import EtcdUnavailable
from .etcd_client import Etcd
from .keys import KeyLayout, KeyRef, prefix_end
from .model import (BrokerInfo, ControllerInfo, DecodeError, PartitionState, TopicAssignment,
                    Versioned, decode_epoch)

log = logging.getLogger(__name__)

_DECODERS: dict[str, Any] = {
    "broker": BrokerInfo.decode,
    "controller": ControllerInfo.decode,
    "controller_epoch": decode_epoch,
    "topic": TopicAssignment.decode,
    "partition": PartitionState.decode,
}


@dataclass(frozen=True)
class Change:
    """One key put (``value`` decoded) or deleted (``value`` None) at ``revision``."""

    ref: KeyRef
    value: Any
    revision: int
    create_revision: int = 0

    @property
    def deleted(self) -> bool:
        return self.value is None


@dataclass(frozen=True)
class Snapshot:
    """Every key of the cluster at ``revision``, as puts."""

    revision: int
    entries: tuple[Change, ...]


def decode_change(layout: KeyLayout, key: bytes, value: bytes | None, mod_revision: int,
                  create_revision: int = 0) -> Change | None:
    """A Change for one key, or None if the key is not ours or its value is unreadable."""
    ref = layout.parse(key)
    if ref is None:
        return None
    if value is None:
        return Change(ref, None, mod_revision, create_revision)
    try:
        return Change(ref, _DECODERS[ref.kind](value), mod_revision, create_revision)
    except DecodeError as exc:
        log.warning("ignoring undecodable %r: %s", key, exc)
        return None


@dataclass
class ClusterView:
    """The cluster metadata as last seen; ``apply`` each watcher item in order."""

    brokers: dict[int, Versioned[BrokerInfo]] = field(default_factory=dict)
    controller: Versioned[ControllerInfo] | None = None
    controller_epoch: int = 0
    topics: dict[str, Versioned[TopicAssignment]] = field(default_factory=dict)
    partitions: dict[tuple[str, int], Versioned[PartitionState]] = field(default_factory=dict)
    revision: int = 0

    def apply(self, item: Snapshot | Change) -> None:
        if isinstance(item, Snapshot):
            self.__init__()  # type: ignore[misc]
            for change in item.entries:
                self._apply_change(change)
            self.revision = item.revision
        else:
            self._apply_change(item)
            self.revision = max(self.revision, item.revision)

    def _apply_change(self, c: Change) -> None:
        ref = c.ref
        versioned = None if c.deleted else Versioned(c.value, c.revision, c.create_revision)
        if ref.kind == "broker":
            _set(self.brokers, ref.broker_id, versioned)
        elif ref.kind == "topic":
            _set(self.topics, ref.topic, versioned)
        elif ref.kind == "partition":
            _set(self.partitions, (ref.topic, ref.partition), versioned)
        elif ref.kind == "controller":
            self.controller = versioned
        elif ref.kind == "controller_epoch" and not c.deleted:
            self.controller_epoch = c.value


def _set(table: dict[Any, Any], key: Any, value: Any) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value


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
