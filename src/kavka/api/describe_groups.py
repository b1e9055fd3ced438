"""DescribeGroups (key 15): state, protocol and members of groups.

Member metadata and assignments are shown only while the group is Stable, as
Kafka does.  An unknown group is "Dead" with no error before v6, and
GROUP_ID_NOT_FOUND from v6 (KIP-1043).  With an authorizer (kavka.api.authorization), a
group the principal may not DESCRIBE is GROUP_AUTHORIZATION_FAILED, looked up no further;
``include_authorized_operations`` (v3+) is answered from the ACLs.
"""

from __future__ import annotations

from kavka.api._groups import coordinated
from kavka.api.authorization import Op, Res, allowed, authorized_operations
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.group.describe import GroupSummary, summarize
from kavka.protocol.errors import ErrorCode

KEY = 15
VERSIONS = (0, 6)


@api(KEY, "DescribeGroups", VERSIONS)
@coordinated(unavailable=lambda request: _answer(request, lambda _: (ErrorCode.coordinator_not_available, None)))
def handle(request: Request, groups):
    return _answer(request, lambda group_id: groups.query(lambda c: c.find_group(group_id)))


def _answer(request: Request, find):
    """The response, with ``find(group_id)`` giving each group's (error, group)."""
    r = builder_for(request)
    return r.DescribeGroupsResponse(groups=tuple(_describe(request, r, find, g) for g in request.body.groups))


def _describe(request: Request, r, find, group_id: str):
    if not allowed(request, Op.DESCRIBE, Res.GROUP, group_id):
        error, message, summary = (ErrorCode.group_authorization_failed, None,
                                   GroupSummary(group_id, "", "", "", ()))
    else:
        error, message, summary = _lookup(request, find, group_id)
    members = tuple(
        r.DescribedGroupMember(member_id=m.member_id, group_instance_id=m.instance_id, client_id=m.client_id,
                               client_host=m.client_host, member_metadata=m.metadata,
                               member_assignment=m.assignment)
        for m in summary.members)
    return r.DescribedGroup(error_code=error, error_message=message, group_id=group_id,
                            group_state=summary.state, protocol_type=summary.protocol_type,
                            protocol_data=summary.protocol_data, members=members,
                            authorized_operations=authorized_operations(
                                request, Res.GROUP, group_id,
                                asked=getattr(request.body, "include_authorized_operations", False)))


def _lookup(request: Request, find, group_id: str) -> tuple[ErrorCode, str | None, GroupSummary]:
    dead = GroupSummary(group_id, "Dead", "", "", ())
    error, group = find(group_id)
    if error == ErrorCode.group_id_not_found:
        return error, f"Group {group_id} is not a classic group.", dead
    if error != ErrorCode.none:
        return error, None, dead
    if group is None:
        if request.version >= 6:
            return ErrorCode.group_id_not_found, f"Group {group_id} not found.", dead
        return ErrorCode.none, None, dead
    return ErrorCode.none, None, summarize(group)
