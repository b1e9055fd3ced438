"""TxnOffsetCommit through the dispatcher, with wire bytes: the transaction's checks
(AddOffsetsToTxn first, a current epoch), the group's, unknown topics, and the offsets
showing in OffsetFetch only once the transaction's marker reached __consumer_offsets, from
the transaction coordinator's own marker job and from WriteTxnMarkers alike.

A real LogManager with both coordinators, wired as kavka.broker does (the marker writer
tells the group runner).
"""

from __future__ import annotations

import asyncio
import itertools

import pytest

from kavka.api.context import BrokerContext, RandomProducerIds
from kavka.clock import ManualClock
from kavka.config import BrokerConfig
from kavka.group.coordinator import GroupCoordinator
from kavka.group.env import GroupConfig
from kavka.group.offsets_topic import OffsetsTopic
from kavka.group.runner import GroupRunner
from kavka.internal_topics import OFFSETS_TOPIC, coordinator_partition
from kavka.log.log_manager import LogManager
from kavka.protocol.errors import ErrorCode as E
from kavka.txn.coordinator import TransactionCoordinator, TxnConfig
from kavka.txn.local_markers import local_marker_writer
from kavka.txn.runner import TxnRunner
from kavka.txn.state_topic import TransactionStateTopic
from test_group_apis import req
from test_txn_apis import TxnWire, run
from test_write_txn_markers import write

TXN_COMMIT, FETCH, ADD_OFFSETS, VERSIONS_KEY = 28, 9, 25, 18
OFFSETS_PARTITIONS = 3


@pytest.fixture
def link(tmp_path):
    config = BrokerConfig.from_strings({"offset.metadata.max.bytes": "8"})
    clock = ManualClock()
    logs = LogManager(tmp_path, config, clock)
    logs.load()
    logs.create_topic("t", 2)
    ids = itertools.count(1)
    settings = GroupConfig(initial_rebalance_delay_ms=0, min_session_timeout_ms=1000,
                           offsets_partitions=OFFSETS_PARTITIONS, metadata_max_bytes=8)
    groups = GroupRunner(GroupCoordinator(settings, clock, OffsetsTopic(logs, OFFSETS_PARTITIONS, 1 << 20, clock),
                                          new_uuid=lambda: str(next(ids))))
    coordinator = TransactionCoordinator(
        TxnConfig.from_broker(config), clock, TransactionStateTopic(logs, 3, 1 << 20, clock), RandomProducerIds(),
        lambda group: (OFFSETS_TOPIC, coordinator_partition(group, OFFSETS_PARTITIONS)))
    transactions = TxnRunner(coordinator, local_marker_writer(logs, clock, groups.marker_written))
    for index in range(3):
        transactions.load_partition(index)
    context = BrokerContext(logs=logs, config=config, clock=clock, node_id=0, host="127.0.0.1", port=9092,
                            producer_ids=RandomProducerIds(), groups=groups, transactions=transactions)
    yield TxnWire(context)
    transactions.close()
    logs.close()


async def add_offsets(link, pid: int, group: str = "g", epoch: int = 0):
    response = await link.call(req(ADD_OFFSETS, 4, "AddOffsetsToTxnRequest", transactional_id="tx",
                                   producer_id=pid, producer_epoch=epoch, group_id=group))
    return response.error_code


async def txn_commit(link, pid: int, offsets, version: int = 3, group: str = "g", epoch: int = 0,
                     generation: int = -1, member_id: str = "", metadata: str = "") -> dict:
    by_topic: dict[str, list] = {}
    for topic, partition, offset in offsets:
        by_topic.setdefault(topic, []).append(req(
            TXN_COMMIT, version, "TxnOffsetCommitRequestPartition", partition_index=partition,
            committed_offset=offset, committed_metadata=metadata))
    extra = dict(generation_id=generation, member_id=member_id) if version >= 3 else {}
    response = await link.call(req(TXN_COMMIT, version, "TxnOffsetCommitRequest", transactional_id="tx",
                                   group_id=group, producer_id=pid, producer_epoch=epoch, **extra, topics=tuple(
                                       req(TXN_COMMIT, version, "TxnOffsetCommitRequestTopic", name=t,
                                           partitions=tuple(ps)) for t, ps in by_topic.items())))
    return {(t.name, p.partition_index): p.error_code for t in response.topics for p in t.partitions}


async def fetched(link, version: int = 8, stable: bool = False, group: str = "g") -> dict:
    """{partition: (offset, error)} of topic t, partitions 0 and 1."""
    topics = (req(FETCH, version, "OffsetFetchRequestTopics", name="t", partition_indexes=(0, 1)),)
    response = await link.call(req(FETCH, version, "OffsetFetchRequest", require_stable=stable, groups=(
        req(FETCH, version, "OffsetFetchRequestGroup", group_id=group, topics=topics),)))
    [found] = response.groups
    return {p.partition_index: (p.committed_offset, p.error_code) for t in found.topics for p in t.partitions}


@pytest.mark.parametrize("version", [0, 3, 5])
def test_offsets_show_once_the_transaction_commits(link, version):
    async def scenario():
        pid = (await link.init("tx")).producer_id
        assert await add_offsets(link, pid) == E.none
        answer = await txn_commit(link, pid, [("t", 0, 11), ("t", 1, 12)], version=version)
        before = await fetched(link), await fetched(link, stable=True)
        assert (await link.end("tx", pid, 0, True)).error_code == E.none
        await link.markers_written()
        return answer, before, await fetched(link, stable=True)
    answer, (plain, stable), after = run(scenario())
    assert answer == {("t", 0): E.none, ("t", 1): E.none}
    assert plain == {0: (-1, E.none), 1: (-1, E.none)}
    assert stable == {0: (-1, E.unstable_offset_commit), 1: (-1, E.unstable_offset_commit)}
    assert after == {0: (11, E.none), 1: (12, E.none)}


def test_an_aborted_transaction_commits_no_offsets(link):
    async def scenario():
        pid = (await link.init("tx")).producer_id
        await add_offsets(link, pid)
        await txn_commit(link, pid, [("t", 0, 11)])
        await link.end("tx", pid, 0, False)
        await link.markers_written()
        return await fetched(link, stable=True)
    assert run(scenario()) == {0: (-1, E.none), 1: (-1, E.none)}


def test_a_marker_from_write_txn_markers_ends_them_too(link):
    async def scenario():
        pid = (await link.init("tx")).producer_id
        await add_offsets(link, pid)
        await txn_commit(link, pid, [("t", 1, 7)])
        index = coordinator_partition("g", OFFSETS_PARTITIONS)
        written = await write(link, pid, 0, True, {OFFSETS_TOPIC: [index]})
        return written, await fetched(link, stable=True)
    written, after = run(scenario())
    assert list(written.values()) == [E.none]
    assert after == {0: (-1, E.none), 1: (7, E.none)}


def test_without_add_offsets_or_with_a_stale_epoch_it_is_refused(link):
    async def scenario():
        pid = (await link.init("tx")).producer_id
        without = await txn_commit(link, pid, [("t", 0, 1)])
        await add_offsets(link, pid)
        other_group = await txn_commit(link, pid, [("t", 0, 1)], group="other")
        stale = await txn_commit(link, pid, [("t", 0, 1)], epoch=1)
        unknown_id = await txn_commit(link, pid + 1, [("t", 0, 1)])
        return without, other_group, stale, unknown_id, await fetched(link, stable=True)
    without, other_group, stale, unknown_id, after = run(scenario())
    if coordinator_partition("other", OFFSETS_PARTITIONS) != coordinator_partition("g", OFFSETS_PARTITIONS):
        assert other_group == {("t", 0): E.invalid_txn_state}
    assert without == {("t", 0): E.invalid_txn_state}
    assert stale == {("t", 0): E.invalid_producer_epoch}
    assert unknown_id == {("t", 0): E.invalid_producer_id_mapping}
    assert after == {0: (-1, E.none), 1: (-1, E.none)}, "nothing pending"


def test_unknown_topics_group_errors_and_metadata_size(link):
    async def scenario():
        pid = (await link.init("tx")).producer_id
        await add_offsets(link, pid)
        mixed = await txn_commit(link, pid, [("t", 0, 1), ("t", 9, 1), ("nope", 0, 1)])
        big = await txn_commit(link, pid, [("t", 1, 1)], metadata="x" * 9)
        member = await txn_commit(link, pid, [("t", 1, 1)], generation=2, member_id="m")
        empty_group = await txn_commit(link, pid, [("t", 1, 1)], group="")
        return mixed, big, member, empty_group
    mixed, big, member, empty_group = run(scenario())
    assert mixed == {("t", 0): E.none, ("t", 9): E.unknown_topic_or_partition,
                     ("nope", 0): E.unknown_topic_or_partition}
    assert big == {("t", 1): E.offset_metadata_too_large}
    assert member == {("t", 1): E.unknown_member_id}, "the first commit made g a simple group: no members"
    assert empty_group == {("t", 1): E.invalid_group_id}


def test_txn_offset_commit_is_advertised_at_kafka_4_range(link):
    response = run(link.call(req(VERSIONS_KEY, 3, "ApiVersionsRequest", client_software_name="t",
                                 client_software_version="1")))
    ranges = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert ranges[TXN_COMMIT] == (0, 5)


def held_verifier(link):
    """test_txn_verification's HeldVerifier as the link's verifier (imported here: that module
    imports this one)."""
    from test_txn_verification import HeldVerifier
    held = link.context.txn_verifier = HeldVerifier(link.context.transactions)
    return held


def offsets_partition(link):
    return link.context.logs.partition(OFFSETS_TOPIC, coordinator_partition("g", OFFSETS_PARTITIONS))


def test_a_commit_verified_before_an_abort_marker_is_refused_and_the_lso_moves_on(link):
    """KIP-890 for TxnOffsetCommit: the group partition's guard, taken before the question,
    is stale once a marker of the producer lands there first (its transaction aborted)."""
    held = held_verifier(link)

    async def scenario():
        pid = (await link.init("tx")).producer_id
        await add_offsets(link, pid)
        first = asyncio.ensure_future(txn_commit(link, pid, [("t", 0, 1)], version=0))   # creates the partition
        await held.wait_held(1)
        held.release(0)
        assert await first == {("t", 0): E.none}
        await link.end("tx", pid, 0, False)
        await link.markers_written()
        pid2 = (await link.init("tx")).producer_id
        await add_offsets(link, pid2, epoch=1)
        late = asyncio.ensure_future(txn_commit(link, pid2, [("t", 0, 5)], epoch=1))
        await held.wait_held(2)
        partition = offsets_partition(link)
        partition.append_marker(pid2, 1, False, 0, link.context.clock.now_ms())   # an abort got there first
        await held.wait_held(2)
        held.release(1)
        return await late, await fetched(link, stable=True)
    late, after = run(scenario())
    assert late == {("t", 0): E.invalid_txn_state}
    assert after == {0: (-1, E.none), 1: (-1, E.none)}, "nothing pending"
    partition = offsets_partition(link)
    assert partition.last_stable_offset == partition.log.log_end_offset


def test_retriable_verification_answers_ask_the_client_to_find_the_coordinator_again(link):
    held = held_verifier(link)

    async def scenario():
        pid = (await link.init("tx")).producer_id
        await add_offsets(link, pid)
        answers = []
        for i, error in enumerate((E.not_coordinator, E.network_exception, E.transaction_abortable)):
            commit = asyncio.ensure_future(txn_commit(link, pid, [("t", 0, 1)], version=3))
            await held.wait_held(i + 1)
            held.release(i, {(OFFSETS_TOPIC, coordinator_partition("g", OFFSETS_PARTITIONS)): error})
            answers.append((await commit)[("t", 0)])
        return answers
    assert run(scenario()) == [E.coordinator_not_available, E.coordinator_not_available, E.invalid_txn_state]
