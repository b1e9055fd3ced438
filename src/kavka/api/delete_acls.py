"""DeleteAcls (key 31, v1-3): remove every binding each filter matches, in one change, and
answer per filter the bindings it removed (a binding two filters match is listed under
both, as Kafka lists it).  A filter with an UNKNOWN element is INVALID_REQUEST (that filter
only); without an authorizer SECURITY_DISABLED, without ALTER on the cluster
CLUSTER_AUTHORIZATION_FAILED (every filter)."""

from __future__ import annotations

from kavka.api._acls import filter_of, guarded, wire_fields
from kavka.api.registry import Request, api
from kavka.api.responses import NO_THROTTLE, builder_for
from kavka.protocol.errors import ErrorCode
from kavka.security.acl import AclOperation, InvalidAcl

KEY = 31
VERSIONS = (1, 3)


@api(KEY, "DeleteAcls", VERSIONS)
@guarded(AclOperation.ALTER, lambda request, refused: _response(builder_for(request),
                                                                [(*refused, ())] * len(request.body.filters)))
async def handle(request: Request):
    r = builder_for(request)
    current = request.broker.metadata.acls()
    answers, doomed = [], set()
    for wire in request.body.filters:
        wanted = filter_of(wire)
        try:
            wanted.validate()
        except InvalidAcl as exc:
            answers.append((ErrorCode.invalid_request, str(exc), ()))
            continue
        matched = current.matching(wanted)
        doomed.update(matched)
        answers.append((ErrorCode.none, None, matched))
    result = await request.broker.admin.alter_acls((), sorted(doomed))
    if result.error != ErrorCode.none:
        answers = [(result.error, result.message, ()) if code == ErrorCode.none else (code, message, ())
                   for code, message, _ in answers]
    return _response(r, answers)


def _response(r, answers):
    results = tuple(
        r.DeleteAclsFilterResult(error_code=code, error_message=message, matching_acls=tuple(
            r.DeleteAclsMatchingAcl(error_code=ErrorCode.none, error_message=None, **wire_fields(b))
            for b in matched))
        for code, message, matched in answers)
    return r.DeleteAclsResponse(throttle_time=NO_THROTTLE, filter_results=results)
