"""The consumer-group APIs through the dispatcher, with wire bytes, in every version range.

A real LogManager and group coordinator on a ManualClock; requests are encoded
with kio, handled exactly as a connection would (parked JoinGroup/SyncGroup
requests come back as coroutines, awaited here), and the responses decoded.
"""

from __future__ import annotations

import asyncio
import datetime
import itertools
import struct

import pytest
from kio import index as kio_index
from kio.schema.index import api_key_map
from kio.static.constants import EntityType

import kavka.api  # noqa: F401  (registers every handler)
from kavka.api.context import BrokerContext, RandomProducerIds
from kavka.api.registry import REGISTRY
from kavka.api.responses import make
from kavka.clock import ManualClock
from kavka.config import BrokerConfig
from kavka.group.coordinator import GroupCoordinator
from kavka.group.env import GroupConfig
from kavka.group.offsets_topic import OffsetsTopic
from kavka.group.runner import GroupRunner
from kavka.log.log_manager import LogManager
from kavka.protocol import messages
from kavka.protocol.errors import ErrorCode as E
from kavka.protocol.framing import parse_response_header
from kavka.server.dispatch import Dispatcher

JOIN, SYNC, HEARTBEAT, LEAVE, COMMIT, FETCH = 11, 14, 12, 13, 8, 9
LIST, DESCRIBE, DELETE, OFFSET_DELETE, API_VERSIONS = 16, 15, 42, 47, 18
MS = datetime.timedelta(milliseconds=1)


def req(api_key: int, version: int, class_name: str, /, **values):
    module = kio_index.load_entity_module(api_key_map[api_key], version, EntityType.request)
    return make(getattr(module, class_name), **values)


class _Conn:
    peer = "127.0.0.1:50000"


class Wire:
    def __init__(self, context: BrokerContext) -> None:
        self.context = context
        self.dispatcher = Dispatcher(context)
        self._ids = itertools.count(1)

    async def call(self, request):
        correlation = next(self._ids)
        frame = messages.encode_request_frame(request, correlation, "test-client")[4:]
        parts = self.dispatcher.handle(frame, _Conn())
        if asyncio.iscoroutine(parts):
            parts = await parts
        data = b"".join(bytes(p) for p in parts)
        key, version = int(request.__api_key__), int(request.__version__)
        flexible = messages.response_header_flexible(key, version)
        got, header_size = parse_response_header(data[4:], flexible)
        assert got == correlation
        return messages.decode_response(key, version, data[4:], header_size)

    @property
    def coordinator(self) -> GroupCoordinator:
        return self.context.groups.coordinator


@pytest.fixture
def wire(tmp_path):
    config = BrokerConfig.from_strings({"num.partitions": "2", "offset.metadata.max.bytes": "8"})
    clock = ManualClock()
    logs = LogManager(tmp_path, config, clock)
    logs.load()
    logs.create_topic("t", 2)
    settings = GroupConfig(initial_rebalance_delay_ms=0, min_session_timeout_ms=1000, offsets_partitions=3,
                           metadata_max_bytes=8)
    ids = itertools.count(1)
    coordinator = GroupCoordinator(settings, clock, OffsetsTopic(logs, 3, 1 << 20, clock),
                                   new_uuid=lambda: str(next(ids)))
    context = BrokerContext(logs=logs, config=config, clock=clock, node_id=0, host="127.0.0.1", port=9092,
                            producer_ids=RandomProducerIds(), groups=GroupRunner(coordinator))
    yield Wire(context)
    logs.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


# -- requests --------------------------------------------------------------------------

def join_request(version: int, member_id: str = "", group: str = "g", protocol_type: str = "consumer",
                 protocols=(("range", b"meta"),), instance=None):
    fields = dict(group_id=group, session_timeout=10_000 * MS, rebalance_timeout=20_000 * MS,
                  member_id=member_id, protocol_type=protocol_type, group_instance_id=instance, reason=None)
    fields["protocols"] = tuple(req(JOIN, version, "JoinGroupRequestProtocol", name=n, metadata=m)
                                for n, m in protocols)
    return req(JOIN, version, "JoinGroupRequest", **fields)


def sync_request(version: int, member_id: str, generation: int, assignments=(), group: str = "g", **extra):
    items = tuple(req(SYNC, version, "SyncGroupRequestAssignment", member_id=m, assignment=a)
                  for m, a in assignments)
    return req(SYNC, version, "SyncGroupRequest", group_id=group, generation_id=generation, member_id=member_id,
               assignments=items, **extra)


def commit_request(version: int, group: str, generation: int, member_id: str, partitions, metadata="m"):
    parts = tuple(req(COMMIT, version, "OffsetCommitRequestPartition", partition_index=p, committed_offset=o,
                      committed_leader_epoch=0, committed_metadata=metadata) for p, o in partitions)
    topic = req(COMMIT, version, "OffsetCommitRequestTopic", name="t", partitions=parts)
    return req(COMMIT, version, "OffsetCommitRequest", group_id=group, generation_id_or_member_epoch=generation,
               member_id=member_id, retention_time=datetime.timedelta(milliseconds=-1), topics=(topic,))


def commit_topics(version, topic_parts, group="g", generation=-1, member_id="", metadata="m"):
    topics = tuple(req(COMMIT, version, "OffsetCommitRequestTopic", name=name, partitions=tuple(
        req(COMMIT, version, "OffsetCommitRequestPartition", partition_index=p, committed_offset=o,
            committed_leader_epoch=0, committed_metadata=metadata) for p, o in parts))
        for name, parts in topic_parts)
    return req(COMMIT, version, "OffsetCommitRequest", group_id=group, generation_id_or_member_epoch=generation,
               member_id=member_id, retention_time=datetime.timedelta(milliseconds=-1), topics=topics)


def fetch_request(version: int, group: str, partitions=None):
    if version >= 8:
        topics = None if partitions is None else (
            req(FETCH, version, "OffsetFetchRequestTopics", name="t", partition_indexes=tuple(partitions)),)
        g = req(FETCH, version, "OffsetFetchRequestGroup", group_id=group, topics=topics)
        return req(FETCH, version, "OffsetFetchRequest", groups=(g,))
    topics = None if partitions is None else (
        req(FETCH, version, "OffsetFetchRequestTopic", name="t", partition_indexes=tuple(partitions)),)
    return req(FETCH, version, "OffsetFetchRequest", group_id=group, topics=topics)


async def join_until_member(wire, version: int, **kwargs):
    """A complete JoinGroup, including the MEMBER_ID_REQUIRED round of v4+."""
    response = await wire.call(join_request(version, **kwargs))
    if response.error_code == E.member_id_required:
        kwargs["member_id"] = response.member_id
        response = await wire.call(join_request(version, **kwargs))
    return response


# -- tests -----------------------------------------------------------------------------

def test_api_versions_advertise_the_group_apis():
    ranges = {k: (s.min_version, s.max_version) for k, s in REGISTRY.items()}
    assert ranges[JOIN] == (0, 9) and ranges[SYNC] == (0, 5) and ranges[HEARTBEAT] == (0, 4)
    assert ranges[LEAVE] == (0, 5) and ranges[COMMIT] == (2, 9) and ranges[FETCH] == (1, 9)
    assert ranges[LIST] == (0, 5) and ranges[DESCRIBE] == (0, 6) and ranges[DELETE] == (0, 2)
    assert ranges[OFFSET_DELETE] == (0, 0)


VERSION_SETS = [  # (join, sync, heartbeat, leave, commit, fetch): librdkafka's v0 ... newest
    (0, 0, 0, 0, 2, 1), (2, 1, 1, 1, 3, 3), (5, 3, 3, 3, 7, 7), (7, 4, 4, 4, 8, 8), (9, 5, 4, 5, 9, 9)]


@pytest.mark.parametrize("versions", VERSION_SETS, ids=lambda v: "join-v%d" % v[0])
def test_a_member_lifecycle_in_each_version(wire, versions):
    jv, sv, hv, lv, cv, fv = versions

    async def scenario():
        joined = await join_until_member(wire, jv)
        assert joined.error_code == E.none and joined.generation_id == 1 and joined.leader == joined.member_id
        assert [m.metadata for m in joined.members] == [b"meta"] and joined.protocol_name == "range"
        me, gen = joined.member_id, joined.generation_id
        extra = {"protocol_type": "consumer", "protocol_name": "range"} if sv >= 5 else {}
        synced = await wire.call(sync_request(sv, me, gen, [(me, b"plan")], **extra))
        assert synced.error_code == E.none and synced.assignment == b"plan"
        beat = await wire.call(req(HEARTBEAT, hv, "HeartbeatRequest", group_id="g", generation_id=gen, member_id=me))
        assert beat.error_code == E.none
        committed = await wire.call(commit_request(cv, "g", gen, me, [(0, 42)]))
        assert [p.error_code for p in committed.topics[0].partitions] == [E.none]
        fetched = await wire.call(fetch_request(fv, "g", [0, 1]))
        topics = fetched.groups[0].topics if fv >= 8 else fetched.topics
        assert [(p.partition_index, p.committed_offset, p.metadata) for p in topics[0].partitions] == [
            (0, 42, "m"), (1, -1, "")]
        await _leave(wire, lv, me)
        assert wire.coordinator.groups["g"].state.value == "Empty"

    run(scenario())


async def _leave(wire, version, member_id):
    if version < 3:
        response = await wire.call(req(LEAVE, version, "LeaveGroupRequest", group_id="g", member_id=member_id))
        assert response.error_code == E.none
        return
    member = req(LEAVE, version, "MemberIdentity", member_id=member_id, group_instance_id=None, reason="bye")
    response = await wire.call(req(LEAVE, version, "LeaveGroupRequest", group_id="g", members=(member,)))
    assert response.error_code == E.none and [m.error_code for m in response.members] == [E.none]


def test_a_second_member_parks_until_the_first_rejoins(wire):
    async def scenario():
        first = await join_until_member(wire, 5)
        await wire.call(sync_request(3, first.member_id, 1, [(first.member_id, b"all")]))
        second_id = (await wire.call(join_request(5))).member_id
        second = asyncio.ensure_future(wire.call(join_request(5, member_id=second_id)))
        await asyncio.sleep(0)
        assert not second.done()
        beat = await wire.call(req(HEARTBEAT, 3, "HeartbeatRequest", group_id="g", generation_id=1,
                                   member_id=first.member_id))
        assert beat.error_code == E.rebalance_in_progress
        again = await wire.call(join_request(5, member_id=first.member_id))
        other = await second
        assert again.generation_id == other.generation_id == 2 and len(again.members) == 2
        follower = asyncio.ensure_future(wire.call(sync_request(3, second_id, 2)))
        await asyncio.sleep(0)
        assert not follower.done()
        plan = [(first.member_id, b"a"), (second_id, b"b")]
        assert (await wire.call(sync_request(3, first.member_id, 2, plan))).assignment == b"a"
        assert (await follower).assignment == b"b"

    run(scenario())


def test_bad_input_gets_kafkas_codes_and_changes_nothing(wire):
    async def scenario():
        me = (await join_until_member(wire, 5)).member_id
        await wire.call(sync_request(3, me, 1, [(me, b"x")]))
        await wire.call(commit_request(7, "g", 1, me, [(0, 1)]))
        before = wire.coordinator.snapshot()
        assert (await wire.call(join_request(5, member_id="ghost"))).error_code == E.unknown_member_id
        assert (await wire.call(sync_request(3, me, 0))).error_code == E.illegal_generation
        beat = await wire.call(req(HEARTBEAT, 3, "HeartbeatRequest", group_id="g", generation_id=7, member_id=me))
        assert beat.error_code == E.illegal_generation
        wrong = await wire.call(join_request(5, protocol_type="connect"))
        assert wrong.error_code == E.inconsistent_group_protocol
        big = await wire.call(commit_request(7, "g", 1, me, [(0, 2)], metadata="x" * 9))
        assert big.topics[0].partitions[0].error_code == E.offset_metadata_too_large
        stale = await wire.call(commit_request(7, "g", 0, me, [(0, 3)]))
        assert stale.topics[0].partitions[0].error_code == E.illegal_generation
        unknown = await wire.call(commit_request(7, "g", 1, "ghost", [(0, 3)]))
        assert unknown.topics[0].partitions[0].error_code == E.unknown_member_id
        assert (await wire.call(join_request(5, group=""))).error_code == E.invalid_group_id
        assert wire.coordinator.snapshot() == before

    run(scenario())


def test_commit_to_an_unknown_topic_fails_only_that_partition(wire):
    async def scenario():
        response = await wire.call(commit_topics(8, [("t", [(0, 5)]), ("nope", [(0, 1)])], group="s"))
        errors = {(t.name, p.partition_index): p.error_code for t in response.topics for p in t.partitions}
        assert errors == {("t", 0): E.none, ("nope", 0): E.unknown_topic_or_partition}

    run(scenario())


def test_offset_fetch_several_groups_and_all_partitions(wire):
    async def scenario():
        await wire.call(commit_topics(9, [("t", [(0, 5), (1, 6)])], group="a"))
        await wire.call(commit_topics(9, [("t", [(1, 7)])], group="b"))
        groups = tuple(req(FETCH, 9, "OffsetFetchRequestGroup", group_id=g, topics=None) for g in ("a", "b", "c"))
        response = await wire.call(req(FETCH, 9, "OffsetFetchRequest", groups=groups, require_stable=True))
        got = {g.group_id: [(p.partition_index, p.committed_offset) for t in g.topics for p in t.partitions]
               for g in response.groups}
        assert got == {"a": [(0, 5), (1, 6)], "b": [(1, 7)], "c": []}
        v2 = await wire.call(fetch_request(2, "a"))
        assert [p.committed_offset for p in v2.topics[0].partitions] == [5, 6]

    run(scenario())


def test_list_and_describe_groups(wire):
    async def scenario():
        me = (await join_until_member(wire, 5)).member_id
        await wire.call(sync_request(3, me, 1, [(me, b"asg")]))
        await wire.call(commit_topics(8, [("t", [(0, 1)])], group="simple"))
        v0 = await wire.call(req(LIST, 0, "ListGroupsRequest"))
        assert sorted((g.group_id, g.protocol_type) for g in v0.groups) == [("g", "consumer"), ("simple", "")]
        stable = await wire.call(req(LIST, 4, "ListGroupsRequest", states_filter=("STABLE",)))
        assert [(g.group_id, g.group_state) for g in stable.groups] == [("g", "Stable")]
        typed = await wire.call(req(LIST, 5, "ListGroupsRequest", types_filter=("consumer",)))
        assert typed.groups == ()
        classic = await wire.call(req(LIST, 5, "ListGroupsRequest", types_filter=("Classic",)))
        assert {g.group_type for g in classic.groups} == {"classic"}
        described = await wire.call(req(DESCRIBE, 5, "DescribeGroupsRequest", groups=("g", "nobody"),
                                         include_authorized_operations=False))
        g, nobody = described.groups
        assert (g.group_state, g.protocol_type, g.protocol_data) == ("Stable", "consumer", "range")
        m = g.members[0]
        assert (m.member_id, m.client_id, m.client_host, m.member_metadata, m.member_assignment) == (
            me, "test-client", "/127.0.0.1", b"meta", b"asg")
        assert (nobody.error_code, nobody.group_state) == (E.none, "Dead")
        v6 = await wire.call(req(DESCRIBE, 6, "DescribeGroupsRequest", groups=("nobody",),
                                 include_authorized_operations=False))
        assert v6.groups[0].error_code == E.group_id_not_found

    run(scenario())


def test_delete_groups_and_offset_delete(wire):
    async def scenario():
        me = (await join_until_member(wire, 5, protocols=(("range", _subscription("t")),))).member_id
        await wire.call(sync_request(3, me, 1, [(me, b"")]))
        await wire.call(commit_request(7, "g", 1, me, [(0, 1)]))
        await wire.call(commit_topics(8, [("t", [(0, 1), (1, 2)])], group="simple"))
        deleted = await wire.call(req(DELETE, 2, "DeleteGroupsRequest", groups_names=("g", "simple", "nobody")))
        assert [(r.group_id, r.error_code) for r in deleted.results] == [
            ("g", E.non_empty_group), ("simple", E.none), ("nobody", E.group_id_not_found)]
        partitions = (req(OFFSET_DELETE, 0, "OffsetDeleteRequestPartition", partition_index=0),)
        topic = req(OFFSET_DELETE, 0, "OffsetDeleteRequestTopic", name="t", partitions=partitions)
        refused = await wire.call(req(OFFSET_DELETE, 0, "OffsetDeleteRequest", group_id="g", topics=(topic,)))
        assert refused.error_code == E.none and refused.topics[0].partitions[0].error_code == \
            E.group_subscribed_to_topic
        missing = await wire.call(req(OFFSET_DELETE, 0, "OffsetDeleteRequest", group_id="x", topics=(topic,)))
        assert missing.error_code == E.group_id_not_found

    run(scenario())


def _subscription(*topics: str) -> bytes:
    body = struct.pack(">hi", 0, len(topics))
    for topic in topics:
        body += struct.pack(">h", len(topic)) + topic.encode()
    return body + struct.pack(">i", -1)
