"""Heartbeat (key 12): keeps a member's session alive and tells it of rebalances."""

from __future__ import annotations

from kavka.api._groups import coordinated, reply_or_wait
from kavka.api.authorization import Op, Res, group_id, requires
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode

KEY = 12
VERSIONS = (0, 4)


@api(KEY, "Heartbeat", VERSIONS)
@requires(Op.READ, Res.GROUP, group_id)
@coordinated(unavailable=lambda request: builder_for(request).HeartbeatResponse(
    error_code=ErrorCode.coordinator_not_available))
def handle(request: Request, groups):
    r = builder_for(request)
    body = request.body
    instance_id = getattr(body, "group_instance_id", None)
    return reply_or_wait(groups.run(lambda c: c.heartbeat(body.group_id, body.member_id, instance_id,
                                                          body.generation_id)),
                         lambda error: r.HeartbeatResponse(error_code=error))
