"""DeleteGroups (key 42): delete empty groups and their committed offsets.

Each group is answered on its own: GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP while
it has members, or NONE once tombstones for its offsets and metadata are in
__consumer_offsets.
"""

from __future__ import annotations

from kavka.api._groups import reply_or_wait, runner
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode

KEY = 42
VERSIONS = (0, 2)


@api(KEY, "DeleteGroups", VERSIONS)
def handle(request: Request):
    r = builder_for(request)
    names = list(request.body.groups_names)
    groups = runner(request)
    if groups is None:
        results = {name: ErrorCode.coordinator_not_available for name in names}
    else:
        results = groups.run(lambda c: c.delete_groups(names))
    return reply_or_wait(results, lambda results: r.DeleteGroupsResponse(results=tuple(
        r.DeletableGroupResult(group_id=name, error_code=results[name]) for name in names)))

