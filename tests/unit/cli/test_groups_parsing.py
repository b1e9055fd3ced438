"""Pure helpers of `kavka groups`: consumer-protocol assignment bytes, --topic specs,
new-offset planning (clamping), and the views built from DescribeGroups and
ConsumerGroupDescribe responses."""

from __future__ import annotations

import struct
import uuid

import pytest

from kavka.cli.groups import (
    clamp,
    format_assignment,
    parse_states,
    parse_topic_spec,
    plan_offsets,
    view_from_consumer_group,
    view_from_described_group,
)
from kavka.cli.main import CliError
from kavka.group.consumer_protocol import assigned_partitions, subscribed_topics


def assignment_bytes(topics: dict[str, list[int]], version: int = 0, user_data: bytes | None = None) -> bytes:
    """ConsumerProtocolAssignment, written out field by field."""
    out = struct.pack(">hi", version, len(topics))
    for name, partitions in topics.items():
        raw = name.encode()
        out += struct.pack(">h", len(raw)) + raw + struct.pack(f">i{len(partitions)}i", len(partitions), *partitions)
    out += struct.pack(">i", -1) if user_data is None else struct.pack(">i", len(user_data)) + user_data
    return out


# -- assignment bytes ----------------------------------------------------------------------

@pytest.mark.parametrize("version", [0, 1, 3])
def test_assignment_round_trip(version):
    data = assignment_bytes({"orders": [2, 0], "audit": [5]}, version, user_data=b"xyz")
    assert assigned_partitions(data) == {"orders": [0, 2], "audit": [5]}


def test_empty_bytes_are_no_assignment_and_empty_lists_stay():
    assert assigned_partitions(b"") == {}
    assert assigned_partitions(assignment_bytes({})) == {}
    assert assigned_partitions(assignment_bytes({"t": []})) == {"t": []}


def test_a_topic_listed_twice_is_merged():
    data = struct.pack(">hi", 0, 2) + (struct.pack(">h", 1) + b"t" + struct.pack(">ii", 1, 3)) \
        + (struct.pack(">h", 1) + b"t" + struct.pack(">ii", 1, 1))
    assert assigned_partitions(data) == {"t": [1, 3]}


@pytest.mark.parametrize("data", [
    b"\x00",                                               # too short for the version
    struct.pack(">hi", 0, 1),                              # one topic announced, none there
    struct.pack(">hi", -1, 0),                             # negative version
    struct.pack(">hi", 0, 1) + struct.pack(">h", 5) + b"ab",          # name runs past the end
    struct.pack(">hi", 0, 1) + struct.pack(">h", 1) + b"t" + struct.pack(">i", 3) + struct.pack(">i", 0),
    struct.pack(">hi", 0, 1) + struct.pack(">h", 1) + b"t" + struct.pack(">i", -2),
    struct.pack(">hi", 0, 1) + struct.pack(">h", 2) + b"\xff\xfe" + struct.pack(">i", 0),  # not UTF-8
    struct.pack(">hi", 0, 1 << 30),                        # absurd count
])
def test_garbage_is_unknown_not_an_error(data):
    assert assigned_partitions(data) is None


def test_subscription_parser_is_unchanged():
    data = struct.pack(">hi", 1, 2) + struct.pack(">h", 1) + b"a" + struct.pack(">h", 2) + b"bc" + b"\xff" * 4
    assert subscribed_topics(data) == {"a", "bc"}


def test_format_assignment():
    assert format_assignment({"b": [3], "a": [0, 1], "c": []}) == "a:0,1 b:3"
    assert format_assignment({}) == "-"
    assert format_assignment(None) == "?"


# -- options -------------------------------------------------------------------------------

def test_topic_specs():
    assert parse_topic_spec("orders") == ("orders", None)
    assert parse_topic_spec("orders:2,0") == ("orders", [0, 2])
    assert parse_topic_spec("orders:0-2,5,1") == ("orders", [0, 1, 2, 5])
    for bad in ("orders:", "orders:x", "orders:3-1", ":1", "orders:-1", "orders:1,,2"):
        with pytest.raises(CliError, match="--topic wants TOPIC"):
            parse_topic_spec(bad)


def test_states_in_kafkas_spelling():
    assert parse_states(["stable", "EMPTY,preparingrebalance"]) == ["Stable", "Empty", "PreparingRebalance"]
    with pytest.raises(CliError, match="'Sleeping' is not a group state"):
        parse_states(["Sleeping"])


# -- new offsets ---------------------------------------------------------------------------

A, B = ("t", 0), ("t", 1)
STARTS, ENDS = {A: 10, B: 0}, {A: 100, B: 0}


def test_clamp():
    assert clamp(5, 10, 100) == 10
    assert clamp(50, 10, 100) == 50
    assert clamp(500, 10, 100) == 100
    assert clamp(0, 0, 0) == 0


def test_shift_is_clamped_to_the_log():
    current = {A: 20, B: 0}
    assert plan_offsets([A, B], current, STARTS, ENDS, shift=-5) == {A: 15, B: 0}
    assert plan_offsets([A, B], current, STARTS, ENDS, shift=-50) == {A: 10, B: 0}
    assert plan_offsets([A, B], current, STARTS, ENDS, shift=500) == {A: 100, B: 0}
    assert plan_offsets([A], {A: 5}, STARTS, ENDS, shift=0) == {A: 10}  # a commit below the log start


def test_shift_needs_a_committed_offset():
    with pytest.raises(CliError, match="partition 1 of 't' has no committed offset to shift"):
        plan_offsets([A, B], {A: 20}, STARTS, ENDS, shift=1)


def test_other_ways():
    assert plan_offsets([A, B], {}, STARTS, ENDS, earliest=True) == {A: 10, B: 0}
    assert plan_offsets([A, B], {}, STARTS, ENDS, latest=True) == {A: 100, B: 0}
    assert plan_offsets([A, B], {}, STARTS, ENDS, offset=42) == {A: 42, B: 0}
    assert plan_offsets([A, B], {}, STARTS, ENDS, offset=-3) == {A: 10, B: 0}
    # A time after every record finds -1: the log end, as Kafka's tool does.
    assert plan_offsets([A, B], {}, STARTS, ENDS, found={A: 37, B: -1}) == {A: 37, B: 0}
    with pytest.raises(ValueError):
        plan_offsets([A], {}, STARTS, ENDS)


# -- views ---------------------------------------------------------------------------------

def test_view_from_describe_groups():
    from kio.schema.describe_groups.v5 import response as r
    member = r.DescribedGroupMember(member_id="m-1", group_instance_id="i-1", client_id="c", client_host="/1.2.3.4",
                                    member_metadata=b"", member_assignment=assignment_bytes({"t": [1, 0]}))
    group = r.DescribedGroup(error_code=0, group_id="g", group_state="Stable", protocol_type="consumer",
                             protocol_data="range", members=(member,), authorized_operations=0)
    view = view_from_described_group(group)
    assert (view.group_id, view.state, view.group_type, view.protocol) == ("g", "Stable", "classic", "consumer/range")
    (m,) = view.members
    assert (m.member_id, m.instance_id, m.client_id, m.host, m.assignment) == ("m-1", "i-1", "c", "/1.2.3.4",
                                                                              {"t": [0, 1]})
    connect = r.DescribedGroup(error_code=0, group_id="w", group_state="Stable", protocol_type="connect",
                               protocol_data="sessioned", members=(member,), authorized_operations=0)
    assert view_from_described_group(connect).members[0].assignment is None  # not ours to parse


@pytest.mark.parametrize("version", [0, 1])
def test_view_from_consumer_group_describe(version):
    import importlib
    r = importlib.import_module(f"kio.schema.consumer_group_describe.v{version}.response")
    assigned = r.Assignment(topic_partitions=(r.TopicPartitions(topic_id=uuid.uuid4(), topic_name="t",
                                                                partitions=(3, 1)),))
    member = r.Member(member_id="m", instance_id=None, rack_id=None, member_epoch=4, client_id="c",
                      client_host="/h", subscribed_topic_names=("t",), subscribed_topic_regex=None,
                      assignment=assigned, target_assignment=assigned)
    group = r.DescribedGroup(error_code=0, group_id="g", group_state="Stable", group_epoch=4, assignment_epoch=4,
                             assignor_name="uniform", members=(member,))
    view = view_from_consumer_group(group)
    assert (view.state, view.group_type, view.protocol) == ("Stable", "consumer", "consumer/uniform")
    assert [(m.member_id, m.instance_id, m.assignment) for m in view.members] == [("m", None, {"t": [1, 3]})]
