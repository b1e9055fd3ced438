"""``kavka groups list|describe|delete|reset-offsets``: consumer groups over the Kafka protocol.

Like Kafka's ``kafka-consumer-groups.sh``, with the output shaped for people.
Every group request goes to the group's coordinator (FindCoordinator first), so
this works against any Kafka cluster, not only kavka:

* ``list``: ListGroups on every broker (each answers for the groups it
  coordinates), with ``--state``/``--type`` filters done by the broker.
* ``describe``: state, protocol and members (their assigned partitions, read
  from the consumer protocol's assignment bytes), then per partition the
  committed offset (OffsetFetch), the log end offset (ListOffsets) and the lag.
  As Kafka's tool (ListOffsets at READ_UNCOMMITTED), the lag is measured to the high
  watermark; ``--isolation read_committed`` measures it to the last stable offset instead,
  what a read_committed group can still read (column LAST-STABLE instead of LOG-END):
  records of open transactions are not lag such a group can make up.
  Groups of the KIP-848 protocol (ListGroups type "consumer") are described
  with ConsumerGroupDescribe when the broker has it, others with DescribeGroups.
* ``delete``: DeleteGroups; a group with members is refused by the broker.
* ``reset-offsets``: prints the new offsets (a dry run) unless ``--execute``,
  which commits them with OffsetCommit as an outsider (generation -1, no member
  id), as Kafka's tool does.  The group must have no active members.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from kavka.cli.common import CliError, bootstrap_parent, print_table, session
from kavka.client_session import (
    CONSUMER_GROUP_DESCRIBE,
    DELETE_GROUPS,
    DESCRIBE_GROUPS,
    EARLIEST,
    ISOLATION_LEVELS,
    LATEST,
    LIST_GROUPS,
    OFFSET_COMMIT,
    OFFSET_FETCH,
    READ_UNCOMMITTED,
    check,
    error_name,
    parse_time,
)

GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP = 69, 68
CONSUMER_TYPE = "consumer"  # ListGroups v5 group_type of KIP-848 groups (and the classic protocol_type)
# Kafka's spelling of every group state, so that ``--state stable`` works with brokers that match exactly.
STATES = {s.lower(): s for s in ("Empty", "Stable", "PreparingRebalance", "CompletingRebalance", "Dead",
                                  "Assigning", "Reconciling", "NotReady")}
_INACTIVE = {"empty", "dead", ""}


def add_parser(commands) -> None:
    parent = bootstrap_parent()
    p = commands.add_parser("groups", help="list, describe, delete consumer groups or reset their offsets",
                            description="Manage consumer groups on a Kafka-compatible broker.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", parents=[parent], help="list groups with their states",
                                 description="List the groups of every broker with their state and type.")
    listing.add_argument("--state", action="append", default=[], metavar="STATE",
                         help="only groups in this state, e.g. Stable or Empty (repeatable, case-insensitive)")
    listing.add_argument("--type", action="append", default=[], metavar="TYPE",
                         help="only groups of this type: classic or consumer (repeatable)")

    describe = actions.add_parser(
        "describe", parents=[parent], help="members, assignments, committed offsets and lag of groups",
        description="Show each group's state, protocol, coordinator and members with their partitions, "
                    "then per partition the committed offset, the log end offset and the lag.")
    describe.add_argument("groups", nargs="+", metavar="GROUP")
    view = describe.add_mutually_exclusive_group()
    view.add_argument("--members", action="store_true", help="show only the members")
    view.add_argument("--offsets", action="store_true", help="show only the partitions and their lag")
    describe.add_argument("--isolation", choices=ISOLATION_LEVELS, default="read_uncommitted",
                          help="read_uncommitted (default, as kafka-consumer-groups): lag to the log end "
                               "(high watermark); read_committed: lag to the last stable offset")

    delete = actions.add_parser("delete", parents=[parent], help="delete groups and their committed offsets",
                                description="Delete groups that have no active members, with their offsets.")
    delete.add_argument("groups", nargs="+", metavar="GROUP")

    reset = actions.add_parser(
        "reset-offsets", parents=[parent], help="move a group's committed offsets (dry run unless --execute)",
        description="Compute new committed offsets for a group and print them; with --execute, commit them. "
                    "The group must have no active members.")
    reset.add_argument("group", metavar="GROUP")
    which = reset.add_mutually_exclusive_group(required=True)
    which.add_argument("--topic", action="append", metavar="TOPIC[:P,P...]",
                       help="a topic, or some of its partitions such as orders:0,2 or orders:0-3 (repeatable)")
    which.add_argument("--all-topics", action="store_true", help="every topic the group has committed offsets for")
    to = reset.add_mutually_exclusive_group(required=True)
    to.add_argument("--to-earliest", action="store_true", help="the oldest offset still in the log")
    to.add_argument("--to-latest", action="store_true", help="the log end offset (skip everything)")
    to.add_argument("--to-datetime", metavar="TIME",
                    help="the first record at or after TIME: ISO 8601 (2024-05-01T12:00, local time unless it "
                         "has a zone), epoch milliseconds, or an age such as 30s, 15m, 2h, 1d")
    to.add_argument("--shift-by", type=int, metavar="N",
                    help="the committed offset plus N (negative: back), kept within the log")
    to.add_argument("--to-offset", type=int, metavar="N", help="offset N, kept within the log")
    reset.add_argument("--execute", action="store_true", help="commit the new offsets (default: only show them)")


def run(args) -> int:
    with session(args) as s:
        return _ACTIONS[args.action](s, args) or 0


# -- what a group looks like, whichever API described it -----------------------------------

@dataclass
class Member:
    member_id: str
    instance_id: str | None
    client_id: str
    host: str
    assignment: dict[str, list[int]] | None  # None: not known (not the consumer protocol, or unreadable)


@dataclass
class GroupView:
    group_id: str
    state: str
    group_type: str      # "classic" or "consumer" (KIP-848)
    protocol: str        # e.g. "consumer/range"
    members: list[Member]
    error: int = 0       # GROUP_ID_NOT_FOUND for a group the broker does not know


def view_from_described_group(g) -> GroupView:
    """A DescribeGroups group (classic protocol)."""
    from kavka.group.consumer_protocol import assigned_partitions
    consumer = g.protocol_type == CONSUMER_TYPE
    members = []
    for m in g.members:
        assignment = assigned_partitions(m.member_assignment) if consumer else None
        members.append(Member(m.member_id, getattr(m, "group_instance_id", None), m.client_id, m.client_host,
                              assignment))
    protocol = "/".join(part for part in (g.protocol_type, g.protocol_data) if part)
    return GroupView(g.group_id, g.group_state, "classic", protocol, members, int(g.error_code))


def view_from_consumer_group(g) -> GroupView:
    """A ConsumerGroupDescribe group (the KIP-848 protocol): assignments come as topic names."""
    members = [Member(m.member_id, m.instance_id, m.client_id, m.client_host,
                      {tp.topic_name: sorted(tp.partitions) for tp in m.assignment.topic_partitions})
               for m in g.members]
    protocol = f"{CONSUMER_TYPE}/{g.assignor_name}" if g.assignor_name else CONSUMER_TYPE
    return GroupView(g.group_id, g.group_state, CONSUMER_TYPE, protocol, members, int(g.error_code))


def format_assignment(assignment: dict[str, list[int]] | None) -> str:
    """``orders:0,1 audit:3``; ``-`` for none, ``?`` when unknown."""
    if assignment is None:
        return "?"
    return " ".join(f"{t}:{','.join(map(str, ps))}" for t, ps in sorted(assignment.items()) if ps) or "-"


def _describe_groups(s, client, groups: list[str]) -> dict[str, GroupView]:
    """Views of groups that share a coordinator."""
    views: dict[str, GroupView] = {}
    kip848 = _consumer_groups(s, client) & set(groups)
    if kip848:
        q = s.builder(CONSUMER_GROUP_DESCRIBE)
        response = s.request(q.ConsumerGroupDescribeRequest(group_ids=tuple(sorted(kip848)),
                                                            include_authorized_operations=False), client)
        for g in response.groups:
            if g.error_code != GROUP_ID_NOT_FOUND:  # e.g. it became a classic group: ask DescribeGroups
                check(g.error_code, g.error_message, f"cannot describe group '{g.group_id}'")
                views[g.group_id] = view_from_consumer_group(g)
    rest = [g for g in groups if g not in views]
    if rest:
        q = s.builder(DESCRIBE_GROUPS)
        response = s.request(q.DescribeGroupsRequest(groups=tuple(rest), include_authorized_operations=False),
                             client)
        for g in response.groups:
            if g.error_code != GROUP_ID_NOT_FOUND:
                check(g.error_code, getattr(g, "error_message", None), f"cannot describe group '{g.group_id}'")
            views[g.group_id] = view_from_described_group(g)
    return views


def _consumer_groups(s, client) -> set[str]:
    """The KIP-848 groups of a coordinator, when the broker can describe them."""
    if not s.supports(CONSUMER_GROUP_DESCRIBE) or s.version(LIST_GROUPS) < 5:
        return set()
    q = s.builder(LIST_GROUPS)
    response = s.request(q.ListGroupsRequest(states_filter=(), types_filter=(CONSUMER_TYPE,)), client)
    check(response.error_code, None, "cannot list groups")
    return {g.group_id for g in response.groups if g.group_type.lower() == CONSUMER_TYPE}


def _committed(s, client, group: str) -> dict[tuple[str, int], int]:
    """(topic, partition) -> committed offset, for every partition the group committed."""
    q = s.builder(OFFSET_FETCH)
    if q.has("OffsetFetchRequest", "groups"):
        response = s.request(q.OffsetFetchRequest(groups=(q.OffsetFetchRequestGroup(
            group_id=group, member_id=None, member_epoch=-1, topics=None),), require_stable=False), client)
        (result,) = response.groups
    else:
        result = s.request(q.OffsetFetchRequest(group_id=group, topics=None, require_stable=False), client)
    check(result.error_code, None, f"cannot fetch the offsets of group '{group}'")
    offsets = {}
    for t in result.topics:
        for p in t.partitions:
            check(p.error_code, None, f"offset of partition {p.partition_index} of '{t.name}'")
            if p.committed_offset >= 0:
                offsets[(t.name, p.partition_index)] = p.committed_offset
    return offsets


def _log_offsets(s, partitions, timestamp: int, isolation: int = READ_UNCOMMITTED) -> dict[tuple[str, int], int]:
    """ListOffsets for (topic, partition) pairs; topics or partitions that are gone are left out."""
    by_topic: dict[str, set[int]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, set()).add(partition)
    found = {}
    for name, indexes in sorted(by_topic.items()):
        topic = s.find_topic(name)
        if topic is None:
            continue
        existing = sorted(indexes & {p.partition_index for p in topic.partitions})
        if existing:
            found.update(((name, i), o) for i, o in s.list_offsets(topic, existing, timestamp, isolation).items())
    return found


# -- list ----------------------------------------------------------------------------------

def parse_states(items: list[str]) -> list[str]:
    """--state values (repeatable or comma-separated, any case) in Kafka's spelling."""
    states = []
    for item in items:
        for name in filter(None, (part.strip() for part in item.split(","))):
            if name.lower() not in STATES:
                raise CliError(f"--state {name!r} is not a group state; use one of {', '.join(STATES.values())}")
            states.append(STATES[name.lower()])
    return states


def _list(s, args) -> None:
    states = parse_states(args.state)
    types = [t.strip().lower() for item in args.type for t in item.split(",") if t.strip()]
    q = s.builder(LIST_GROUPS)
    if states and q.version < 4:
        raise CliError(f"the broker at {s.bootstrap} cannot filter groups by state (ListGroups v{q.version})")
    if types and q.version < 5:
        raise CliError(f"the broker at {s.bootstrap} cannot filter groups by type (ListGroups v{q.version})")
    rows = {}
    for client in s.broker_clients():
        response = s.request(q.ListGroupsRequest(states_filter=tuple(states), types_filter=tuple(types)), client)
        check(response.error_code, None, "cannot list groups")
        for g in response.groups:
            rows[g.group_id] = (g.group_id, getattr(g, "group_state", "") or "-",
                                getattr(g, "group_type", "") or "-", g.protocol_type or "-")
    print_table([rows[k] for k in sorted(rows)], ("GROUP", "STATE", "TYPE", "PROTOCOL-TYPE"))


# -- describe ------------------------------------------------------------------------------

def _describe(s, args) -> None:
    missing = []
    first = True
    for group in dict.fromkeys(args.groups):
        node, address, client = s.coordinator(group)
        view = _describe_groups(s, client, [group])[group]
        committed = _committed(s, client, group)
        if not committed and not view.members and (view.error == GROUP_ID_NOT_FOUND or view.state == "Dead"):
            missing.append(group)
            continue
        if not first:
            print()
        first = False
        _print_group(s, view, committed, f"{node} ({address})", args)
    if missing:
        names = ", ".join(f"'{g}'" for g in missing)
        raise CliError(f"GROUP_ID_NOT_FOUND: group {names} does not exist" if len(missing) == 1 else
                        f"GROUP_ID_NOT_FOUND: groups {names} do not exist")


def _print_group(s, view: GroupView, committed: dict, coordinator: str, args) -> None:
    print(f"Group: {view.group_id}  State: {view.state}  Type: {view.group_type}  "
          f"Protocol: {view.protocol or '-'}  Coordinator: {coordinator}  Members: {len(view.members)}")
    if not args.offsets and view.members:
        print_table([(m.member_id, m.instance_id or "-", m.client_id, m.host, format_assignment(m.assignment))
                     for m in sorted(view.members, key=lambda m: m.member_id)],
                    ("MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "PARTITIONS"))
    if args.members:
        return
    owners = {(t, p): m.member_id for m in view.members for t, ps in (m.assignment or {}).items() for p in ps}
    partitions = sorted(set(owners) | set(committed))
    if not partitions:
        return
    ends = _log_offsets(s, partitions, LATEST, ISOLATION_LEVELS[args.isolation])
    rows = []
    for key in partitions:
        offset, end = committed.get(key), ends.get(key)
        lag = end - offset if offset is not None and end is not None else "-"
        rows.append((*key, "-" if offset is None else offset, "-" if end is None else end, lag,
                     owners.get(key, "-")))
    if view.members and not args.offsets:
        print()
    end_column = "LAST-STABLE" if args.isolation == "read_committed" else "LOG-END"
    print_table(rows, ("TOPIC", "PARTITION", "COMMITTED", end_column, "LAG", "MEMBER"))


# -- delete --------------------------------------------------------------------------------

def _delete(s, args) -> None:
    by_coordinator: dict[int, tuple] = {}
    for group in dict.fromkeys(args.groups):
        node, _, client = s.coordinator(group)
        by_coordinator.setdefault(node, (client, []))[1].append(group)
    failures = []
    for client, groups in by_coordinator.values():
        q = s.builder(DELETE_GROUPS)
        for result in s.request(q.DeleteGroupsRequest(groups_names=tuple(groups)), client).results:
            if result.error_code == 0:
                print(f"Deleted group {result.group_id}.")
            elif result.error_code == NON_EMPTY_GROUP:
                failures.append(f"NON_EMPTY_GROUP: group '{result.group_id}' has active members; "
                                f"stop its consumers first")
            elif result.error_code == GROUP_ID_NOT_FOUND:
                failures.append(f"GROUP_ID_NOT_FOUND: group '{result.group_id}' does not exist")
            else:
                failures.append(f"{error_name(result.error_code)}: cannot delete group '{result.group_id}'")
    if failures:
        raise CliError("; ".join(failures))


# -- reset-offsets -------------------------------------------------------------------------

def parse_topic_spec(spec: str) -> tuple[str, list[int] | None]:
    """``orders`` -> all partitions (None); ``orders:0,2`` or ``orders:0-3`` -> those partitions."""
    name, sep, listed = spec.partition(":")
    if not name:
        raise CliError(f"--topic wants TOPIC or TOPIC:P,P..., got {spec!r}")
    if not sep:
        return name, None
    partitions = []
    try:
        for part in listed.split(","):
            low, dash, high = part.strip().partition("-")
            first = int(low)
            last = int(high) if dash else first
            if first < 0 or last < first:
                raise ValueError
            partitions.extend(range(first, last + 1))
    except ValueError:
        raise CliError(f"--topic wants TOPIC or TOPIC:P,P..., got {spec!r}") from None
    return name, sorted(set(partitions))


def clamp(offset: int, start: int, end: int) -> int:
    """An offset kept within [log start, log end]."""
    return max(start, min(offset, end))


def plan_offsets(partitions, current: dict, starts: dict, ends: dict, *, earliest: bool = False,
                 latest: bool = False, found: dict | None = None, shift: int | None = None,
                 offset: int | None = None) -> dict:
    """The new committed offset of each (topic, partition), for exactly one of the ways to choose it.

    ``found`` holds ListOffsets answers for a time (-1: no record that new, so the log end).
    ``shift`` needs a committed offset to move from.
    """
    new = {}
    for key in partitions:
        start, end = starts[key], ends[key]
        if earliest:
            new[key] = start
        elif latest:
            new[key] = end
        elif found is not None:
            new[key] = clamp(found[key], start, end) if found[key] >= 0 else end
        elif shift is not None:
            if key not in current:
                raise CliError(f"partition {key[1]} of '{key[0]}' has no committed offset to shift; "
                                f"use --to-earliest, --to-latest, --to-datetime or --to-offset for it")
            new[key] = clamp(current[key] + shift, start, end)
        elif offset is not None:
            new[key] = clamp(offset, start, end)
        else:
            raise ValueError("no way to choose the new offsets")
    return new


def _targets(s, args, committed: dict) -> list[tuple[str, int]]:
    if args.all_topics:
        if not committed:
            raise CliError(f"group '{args.group}' has no committed offsets; name the topics with --topic")
        return sorted(committed)
    wanted: dict[str, set[int]] = {}
    for spec in args.topic:
        name, partitions = parse_topic_spec(spec)
        topic = s.topic(name)
        existing = {p.partition_index for p in topic.partitions}
        if partitions is None:
            partitions = existing
        absent = sorted(set(partitions) - existing)
        if absent:
            raise CliError(f"UNKNOWN_TOPIC_OR_PARTITION: topic '{name}' has partitions 0-{len(existing) - 1}; "
                            f"there is no partition {absent[0]}")
        wanted.setdefault(name, set()).update(partitions)
    return sorted((t, p) for t, ps in wanted.items() for p in ps)


def _reset(s, args) -> None:
    group = args.group
    _, _, client = s.coordinator(group)
    view = _describe_groups(s, client, [group])[group]
    if view.members or view.state.lower() not in _INACTIVE:
        raise CliError(f"group '{group}' is {view.state} with {len(view.members)} active member"
                        f"{'s' * (len(view.members) != 1)}; offsets can only be reset while it has none "
                        f"(stop its consumers first)")
    committed = _committed(s, client, group)
    partitions = _targets(s, args, committed)
    starts, ends = _log_offsets(s, partitions, EARLIEST), _log_offsets(s, partitions, LATEST)
    gone = [key for key in partitions if key not in ends]
    if gone:
        raise CliError(f"UNKNOWN_TOPIC_OR_PARTITION: partition {gone[0][1]} of '{gone[0][0]}' does not exist")
    found = None
    if args.to_datetime is not None:
        moment = parse_time(args.to_datetime, time.time_ns() // 1_000_000, option="--to-datetime")
        found = _log_offsets(s, partitions, moment)
    new = plan_offsets(partitions, committed, starts, ends, earliest=args.to_earliest, latest=args.to_latest,
                       found=found, shift=args.shift_by, offset=args.to_offset)
    print_table([(t, p, committed.get((t, p), "-"), new[(t, p)]) for t, p in partitions],
                ("TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"))
    if not args.execute:
        print("Dry run: nothing was committed; add --execute to commit these offsets.", file=sys.stderr)
        return
    _commit(s, client, group, new)
    print(f"Committed new offsets for {len(new)} partition{'s' * (len(new) != 1)} of group '{group}'.",
          file=sys.stderr)


def _commit(s, client, group: str, new: dict) -> None:
    q = s.builder(OFFSET_COMMIT)
    by_topic: dict[str, list[int]] = {}
    for topic, partition in sorted(new):
        by_topic.setdefault(topic, []).append(partition)
    response = s.request(q.OffsetCommitRequest(
        group_id=group, generation_id_or_member_epoch=-1, member_id="", group_instance_id=None,
        topics=tuple(q.OffsetCommitRequestTopic(name=topic, partitions=tuple(
            q.OffsetCommitRequestPartition(partition_index=p, committed_offset=new[(topic, p)],
                                           committed_leader_epoch=-1, committed_metadata="")
            for p in partitions)) for topic, partitions in by_topic.items())), client)
    for t in response.topics:
        for p in t.partitions:
            check(p.error_code, None, f"cannot commit the offset of partition {p.partition_index} of '{t.name}' "
                                      f"for group '{group}'")


_ACTIONS = {"list": _list, "describe": _describe, "delete": _delete, "reset-offsets": _reset}
