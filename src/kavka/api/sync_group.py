"""SyncGroup (key 14): members wait for the leader's assignment and get their part.

v3+ carries group.instance.id; v5 names protocol type and name, which must
match the group's (INCONSISTENT_GROUP_PROTOCOL otherwise).
"""

from __future__ import annotations

from kavka.api._groups import coordinated, reply_or_wait
from kavka.api.authorization import Op, Res, group_id, requires
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.group.membership import SyncRequest
from kavka.group.outcome import SyncReply
from kavka.protocol.errors import ErrorCode

KEY = 14
VERSIONS = (0, 5)


@api(KEY, "SyncGroup", VERSIONS)
@requires(Op.READ, Res.GROUP, group_id)
@coordinated(unavailable=lambda request: _response(request, SyncReply(ErrorCode.coordinator_not_available)))
def handle(request: Request, groups):
    body = request.body
    sync = SyncRequest(
        group_id=body.group_id, generation=body.generation_id, member_id=body.member_id,
        instance_id=getattr(body, "group_instance_id", None),
        protocol_type=getattr(body, "protocol_type", None), protocol_name=getattr(body, "protocol_name", None),
        assignments={a.member_id: a.assignment for a in body.assignments})
    return reply_or_wait(groups.run(lambda c: c.sync(sync)), lambda reply: _response(request, reply))


def _response(request: Request, reply: SyncReply):
    r = builder_for(request)
    return r.SyncGroupResponse(error_code=reply.error, protocol_type=reply.protocol_type,
                               protocol_name=reply.protocol_name, assignment=reply.assignment)
