"""DeleteGroups (key 42): delete empty groups and their committed offsets.

Each group is answered on its own: GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP while
it has members, or NONE once tombstones for its offsets and metadata are in
__consumer_offsets.  With an authorizer, a group needs DELETE on it
(GROUP_AUTHORIZATION_FAILED, not deleted; kavka.api.authorization).
"""

from __future__ import annotations

from kavka.api._groups import coordinated, reply_or_wait
from kavka.api.authorization import Op, Res, refused
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode

KEY = 42
VERSIONS = (0, 2)


@api(KEY, "DeleteGroups", VERSIONS)
@coordinated(unavailable=lambda request: _response(
    request, {name: ErrorCode.coordinator_not_available for name in request.body.groups_names}))
def handle(request: Request, groups):
    denied = refused(request, Op.DELETE, Res.GROUP, request.body.groups_names)
    names = [name for name in request.body.groups_names if name not in denied]
    refusals = {name: ErrorCode.group_authorization_failed for name in denied}
    if not names:
        return _response(request, refusals)
    return reply_or_wait(groups.run(lambda c: c.delete_groups(names)),
                         lambda results: _response(request, {**results, **refusals}))


def _response(request: Request, results: dict):
    r = builder_for(request)
    return r.DeleteGroupsResponse(results=tuple(
        r.DeletableGroupResult(group_id=name, error_code=results[name]) for name in request.body.groups_names))

