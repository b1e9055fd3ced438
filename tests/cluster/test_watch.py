"""Watches: a snapshot, then every change in order; resync after compaction; reconnects."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from cluster_helpers import broker, connect, eventually, run, shutdown

from kavka.cluster.election import ControllerElection
from kavka.cluster.model import PartitionState, TopicAssignment
from kavka.cluster.state_store import ClusterStore
from kavka.cluster.watch import Change, ClusterView, ClusterWatcher, Snapshot


class Collector:
    """Runs a watcher in the background, keeping every item and a view."""

    def __init__(self, watcher: ClusterWatcher) -> None:
        self.items: list[Snapshot | Change] = []
        self.view = ClusterView()
        self.task = asyncio.get_running_loop().create_task(self._run(watcher))

    async def _run(self, watcher: ClusterWatcher) -> None:
        async for item in watcher.events():
            self.items.append(item)
            self.view.apply(item)

    def changes(self) -> list[Change]:
        return [i for i in self.items if isinstance(i, Change)]

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def _topic(name: str) -> TopicAssignment:
    return TopicAssignment(name, f"id-{name}", {0: (1, 2)})


def test_snapshot_then_changes_in_revision_order(etcd, layout):
    async def main():
        a = await broker(etcd, layout, 1)
        watcher_etcd = await connect(etcd)
        seen = Collector(ClusterWatcher(watcher_etcd, layout))
        await eventually(lambda: seen.items, 5, "the snapshot")
        first = seen.items[0]
        assert isinstance(first, Snapshot)
        assert [c.ref.broker_id for c in first.entries] == [1]

        b = await broker(etcd, layout, 2)
        claim, _ = await ControllerElection(a.etcd, layout, a).campaign()
        store = ClusterStore(a.etcd, layout)
        await store.create_topic(claim, _topic("t"), {0: PartitionState(1, 0, (1, 2), 0)})
        rev = (await store.partition("t", 0)).mod_revision
        for epoch in range(1, 6):  # a run of leader changes
            state = PartitionState(1 + epoch % 2, epoch, (1, 2), 0)
            rev = await store.write_partition(claim, "t", 0, state, rev)
        await b.close()  # deregisters: a delete event

        # b's put, controller + epoch, topic + partition, 5 partition writes, b's delete
        await eventually(lambda: len(seen.changes()) >= 11, 5, "all changes")
        changes = seen.changes()
        revisions = [c.revision for c in changes]
        assert revisions == sorted(revisions) and revisions[0] > first.revision
        epochs = [c.value.leader_epoch for c in changes
                  if c.ref.kind == "partition" and not c.deleted]
        assert epochs == [0, 1, 2, 3, 4, 5]
        assert changes[-1].ref.broker_id == 2 and changes[-1].deleted

        view = seen.view
        assert list(view.brokers) == [1]
        assert view.controller.value.broker_id == 1 and view.controller_epoch == claim.epoch
        assert view.topics["t"].value == _topic("t")
        assert view.partitions[("t", 0)].value.leader_epoch == 5
        assert view.partitions[("t", 0)].mod_revision == rev
        await seen.stop()
        await shutdown(a, b)
        await watcher_etcd.close()
    run(main())


def test_watch_from_compacted_revision_resyncs(etcd, layout):
    async def main():
        client = await connect(etcd)
        await client.client.put(layout.topic("old"), _topic("old").encode())
        start = (await client.get(layout.topic("old"))).mod_revision
        await client.client.put(layout.topic("new"), _topic("new").encode())
        await client.client.delete(layout.topic("old"))
        now = (await client.get(layout.topic("new"))).header.revision
        await client.client.compact(now)
        seen = Collector(ClusterWatcher(client, layout, start_revision=start))
        await eventually(lambda: seen.items, 5, "a resync snapshot")
        assert isinstance(seen.items[0], Snapshot)
        assert list(seen.view.topics) == ["new"]
        await seen.stop()
        await client.close()
    run(main())


@pytest.mark.slow
def test_watch_reconnects_after_etcd_restart(private_etcd, layout):
    async def main():
        client = await connect(private_etcd)
        seen = Collector(ClusterWatcher(client, layout, retry_backoff=0.1))
        await eventually(lambda: seen.items, 5, "the snapshot")
        await client.client.put(layout.topic("before"), _topic("before").encode())
        await eventually(lambda: "before" in seen.view.topics, 5, "the first change")
        private_etcd.restart()  # from this thread: etcd dies with the thread that started it
        writer = await connect(private_etcd)
        await writer.client.put(layout.topic("after"), _topic("after").encode())
        await eventually(lambda: "after" in seen.view.topics, 15, "a change after restart")
        names = [c.ref.topic for c in seen.changes()]
        assert names == ["before", "after"]  # nothing lost, nothing repeated
        await seen.stop()
        await client.close()
        await writer.close()
    run(main(), timeout=40)
