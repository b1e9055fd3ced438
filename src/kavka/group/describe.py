"""Read-only views of groups for ListGroups and DescribeGroups."""

from __future__ import annotations

from dataclasses import dataclass

from kavka.group.model import Group
from kavka.group.state import STABLE

CLASSIC, CONSUMER = "classic", "consumer"


@dataclass(frozen=True, slots=True)
class ListedGroup:
    group_id: str
    protocol_type: str
    state: str
    group_type: str = CLASSIC


@dataclass(frozen=True, slots=True)
class DescribedMember:
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupSummary:
    group_id: str
    state: str
    protocol_type: str
    protocol_data: str
    members: tuple[DescribedMember, ...]


def list_groups(groups: dict[str, Group], states: set[str] | None = None,
                types: set[str] | None = None, consumer_groups: dict | None = None) -> list[ListedGroup]:
    """Every group, optionally only those in ``states`` / of ``types`` (both case-insensitive).
    Consumer-protocol groups have protocol type "consumer" and their own state names."""
    listed = [ListedGroup(g.group_id, g.protocol_type or "", g.state.value) for g in groups.values()]
    listed += [ListedGroup(g.group_id, CONSUMER, g.state, CONSUMER) for g in (consumer_groups or {}).values()]
    return [g for g in listed if (not states or g.state.lower() in states)
            and (not types or g.group_type in types)]


def summarize(group: Group) -> GroupSummary:
    """Kafka's GroupSummary: member metadata and assignments only while Stable."""
    stable = group.state == STABLE
    members = tuple(
        DescribedMember(m.member_id, m.instance_id, m.client_id, m.client_host,
                        m.metadata(group.protocol_name) if stable else b"", m.assignment if stable else b"")
        for m in group.members.values())
    return GroupSummary(group.group_id, group.state.value, group.protocol_type or "",
                        (group.protocol_name or "") if stable else "", members)
