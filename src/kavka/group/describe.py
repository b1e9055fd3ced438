"""Read-only views of groups for ListGroups and DescribeGroups."""

from __future__ import annotations

from dataclasses import dataclass

from kavka.group.model import Group
from kavka.group.state import STABLE

CLASSIC = "classic"


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
                types: set[str] | None = None) -> list[ListedGroup]:
    """Every group, optionally only those in ``states`` / of ``types`` (both case-insensitive)."""
    listed = []
    for group in groups.values():
        if states and group.state.value.lower() not in states:
            continue
        if types and CLASSIC not in types:
            continue
        listed.append(ListedGroup(group.group_id, group.protocol_type or "", group.state.value))
    return listed


def summarize(group: Group) -> GroupSummary:
    """Kafka's GroupSummary: member metadata and assignments only while Stable."""
    stable = group.state == STABLE
    members = tuple(
        DescribedMember(m.member_id, m.instance_id, m.client_id, m.client_host,
                        m.metadata(group.protocol_name) if stable else b"", m.assignment if stable else b"")
        for m in group.members.values())
    return GroupSummary(group.group_id, group.state.value, group.protocol_type or "",
                        (group.protocol_name or "") if stable else "", members)
