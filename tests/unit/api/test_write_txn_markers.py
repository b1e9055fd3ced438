"""WriteTxnMarkers through the dispatcher: an operator's abort of a hanging transaction ends
it in the partition (the LSO moves past it, the records count as aborted), a stale producer
epoch and an older coordinator are refused, a partition not here is named."""

from __future__ import annotations

import pytest

from kavka.protocol.errors import ErrorCode as E
from test_group_apis import req
from test_txn_apis import run, wire  # noqa: F401 (the fixture)

WRITE = 27


async def write(link, pid: int, epoch: int, commit: bool, partitions, coordinator_epoch: int = 0, version=1):
    response = await link.call(req(WRITE, version, "WriteTxnMarkersRequest", markers=(req(
        WRITE, version, "WritableTxnMarker", producer_id=pid, producer_epoch=epoch, transaction_result=commit,
        coordinator_epoch=coordinator_epoch, topics=tuple(
            req(WRITE, version, "WritableTxnMarkerTopic", name=t, partition_indexes=tuple(p))
            for t, p in partitions.items())),)))
    [marker] = response.markers
    assert marker.producer_id == pid
    return {(t.name, p.partition_index): p.error_code for t in marker.topics for p in t.partitions}


@pytest.mark.parametrize("version", [1, 2])
def test_an_abort_marker_ends_a_hanging_transaction_in_its_partition(wire, version):  # noqa: F811
    partition = wire.context.logs.partition("t", 0)

    async def scenario():
        pid = (await wire.init("tx")).producer_id
        await wire.add("tx", pid, 0, [("t", 0)])
        assert await wire.produce("tx", pid, 0, 0, b"v") == E.none
        before = partition.last_stable_offset
        written = await write(wire, pid, 0, False, {"t": [0, 7], "nope": [0]}, version=version)
        return before, written
    before, written = run(scenario())
    assert before == 0
    assert written == {("t", 0): E.none, ("t", 7): E.unknown_topic_or_partition,
                       ("nope", 0): E.unknown_topic_or_partition}
    assert partition.log.log_end_offset == 2 and partition.last_stable_offset == 2
    [(producer_id, first_offset)] = partition.log.aborted_transactions(0, 2)
    assert first_offset == 0 and producer_id == wire.context.transactions.coordinator.ids["tx"].producer_id


def test_a_stale_epoch_and_an_older_coordinator_are_refused(wire):  # noqa: F811
    async def scenario():
        pid = (await wire.init("tx")).producer_id
        await wire.add("tx", pid, 0, [("t", 1)])
        assert await wire.produce("tx", pid, 0, 0, b"v", partition=1) == E.none
        newer = await write(wire, pid, 0, True, {"t": [1]}, coordinator_epoch=5)
        bumped = await write(wire, pid, 3, False, {"t": [1]}, coordinator_epoch=5)
        stale_epoch = await write(wire, pid, 1, True, {"t": [1]}, coordinator_epoch=5)
        older_coordinator = await write(wire, pid, 3, False, {"t": [1]}, coordinator_epoch=4)
        return newer, bumped, stale_epoch, older_coordinator
    newer, bumped, stale_epoch, older_coordinator = run(scenario())
    assert newer == bumped == {("t", 1): E.none}
    assert stale_epoch == {("t", 1): E.invalid_producer_epoch}
    assert older_coordinator == {("t", 1): E.transaction_coordinator_fenced}
