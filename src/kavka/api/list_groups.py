"""ListGroups (key 16): every group this coordinator has, filtered by state (v4+)
and type (v5+: "classic" or "consumer"), both case-insensitive.  With an authorizer, as
Kafka: DESCRIBE on the cluster lists every group, else those the principal may DESCRIBE."""

from __future__ import annotations

from kavka.api._groups import coordinated
from kavka.api.authorization import Op, Res, cluster_allowed, refused
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.group.describe import list_groups
from kavka.protocol.errors import ErrorCode

KEY = 16
VERSIONS = (0, 5)


@api(KEY, "ListGroups", VERSIONS)
@coordinated(unavailable=lambda request: builder_for(request).ListGroupsResponse(
    error_code=ErrorCode.coordinator_not_available, groups=()))
def handle(request: Request, groups):
    r = builder_for(request)
    body = request.body
    states = {s.lower() for s in getattr(body, "states_filter", ())}
    types = {t.lower() for t in getattr(body, "types_filter", ())}
    listed = groups.query(lambda c: list_groups(c.groups, states, types, c.consumer_groups))
    if not cluster_allowed(request, Op.DESCRIBE):   # as Kafka: else only the groups it may describe
        hidden = refused(request, Op.DESCRIBE, Res.GROUP, (g.group_id for g in listed))
        listed = [g for g in listed if g.group_id not in hidden]
    return r.ListGroupsResponse(error_code=ErrorCode.none, groups=tuple(
        r.ListedGroup(group_id=g.group_id, protocol_type=g.protocol_type, group_state=g.state,
                      group_type=g.group_type)
        for g in listed))
