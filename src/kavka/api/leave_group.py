"""LeaveGroup (key 13): members leave at once instead of waiting for their session to end.

v0-2 name one member; v3+ a batch of (member id, group.instance.id), each
answered on its own (admin clients remove static members by instance id).
"""

from __future__ import annotations

from kavka.api._groups import coordinated, reply_or_wait
from kavka.api.authorization import Op, Res, group_id, requires
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode

KEY = 13
VERSIONS = (0, 5)


@api(KEY, "LeaveGroup", VERSIONS)
@requires(Op.READ, Res.GROUP, group_id)
@coordinated(unavailable=lambda request: _response(
    request, _members(request), ErrorCode.coordinator_not_available, []))
def handle(request: Request, groups):
    members = _members(request)
    result = groups.run(lambda c: c.leave(request.body.group_id, members))
    return reply_or_wait(result, lambda result: _response(request, members, *result))


def _members(request: Request) -> list[tuple[str, str | None]]:
    body = request.body
    if request.version < 3:
        return [(body.member_id, None)]
    return [(m.member_id, m.group_instance_id) for m in body.members]


def _response(request: Request, members, error, errors):
    version = request.version
    r = builder_for(request)
    if version < 3:
        return r.LeaveGroupResponse(error_code=error if error != ErrorCode.none or not errors else errors[0])
    results = tuple(r.MemberResponse(member_id=member_id, group_instance_id=instance_id, error_code=e)
                    for (member_id, instance_id), e in zip(members, errors))
    return r.LeaveGroupResponse(error_code=error, members=results)
