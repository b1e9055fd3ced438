"""JoinGroup (key 11): join a classic group and wait for the rebalance to complete.

v0 has no rebalance timeout (the session timeout serves), v4+ first answers a
new dynamic member MEMBER_ID_REQUIRED with its id, v5+ carries
group.instance.id, v7+ names the protocol type, v9 lets a static leader skip
the assignment.  Versions from 0: librdkafka's classic consumer checks for v0.
"""

from __future__ import annotations

from kavka.api._groups import client_host, ms, coordinated, reply_or_wait
from kavka.api.authorization import Op, Res, group_id, requires
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.group.join import JoinRequest
from kavka.group.outcome import JoinReply
from kavka.protocol.errors import ErrorCode

KEY = 11
VERSIONS = (0, 9)


@api(KEY, "JoinGroup", VERSIONS)
@requires(Op.READ, Res.GROUP, group_id)
@coordinated(unavailable=lambda request: _response(
    request, JoinReply(ErrorCode.coordinator_not_available, request.body.member_id)))
def handle(request: Request, groups):
    join = _join_request(request)
    return reply_or_wait(groups.run(lambda c: c.join(join)), lambda reply: _response(request, reply))


def _join_request(request: Request) -> JoinRequest:
    body, version = request.body, request.version
    session = ms(body.session_timeout)
    rebalance = ms(getattr(body, "rebalance_timeout", None))
    return JoinRequest(
        group_id=body.group_id, member_id=body.member_id,
        instance_id=getattr(body, "group_instance_id", None), client_id=request.client_id or "",
        client_host=client_host(request.peer), session_timeout_ms=session,
        rebalance_timeout_ms=rebalance if version >= 1 and rebalance >= 0 else session,
        protocol_type=body.protocol_type, protocols=tuple((p.name, p.metadata) for p in body.protocols),
        require_known_member_id=version >= 4, supports_skip_assignment=version >= 9)


def _response(request: Request, reply: JoinReply):
    r = builder_for(request)
    protocol_name = reply.protocol_name
    if protocol_name is None and request.version < 7:
        protocol_name = ""  # not nullable before v7
    members = tuple(r.JoinGroupResponseMember(member_id=m.member_id, group_instance_id=m.instance_id,
                                              metadata=m.metadata) for m in reply.members)
    return r.JoinGroupResponse(
        error_code=reply.error, generation_id=reply.generation, protocol_type=reply.protocol_type,
        protocol_name=protocol_name, leader=reply.leader, skip_assignment=reply.skip_assignment,
        member_id=reply.member_id, members=members)
