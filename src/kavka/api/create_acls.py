"""CreateAcls (key 30, v1-3): add ACL bindings, each checked as Kafka checks a new one
(kavka.security.acl.AclBinding.validate: INVALID_REQUEST), the valid ones stored in one
change through the metadata boundary (a lone broker's data directory, or etcd), so every
broker enforces them.  Adding a binding that exists succeeds and changes nothing.  Needs
ALTER on the cluster (CLUSTER_AUTHORIZATION_FAILED for each creation) and an authorizer
(SECURITY_DISABLED)."""

from __future__ import annotations

from kavka.api._acls import binding_of, guarded
from kavka.api.registry import Request, api
from kavka.api.responses import NO_THROTTLE, builder_for
from kavka.protocol.errors import ErrorCode
from kavka.security.acl import AclOperation, InvalidAcl

KEY = 30
VERSIONS = (1, 3)


@api(KEY, "CreateAcls", VERSIONS)
@guarded(AclOperation.ALTER, lambda request, refused: _response(builder_for(request),
                                                                [refused] * len(request.body.creations)))
async def handle(request: Request):
    r = builder_for(request)
    answers, valid = [], []
    for wire in request.body.creations:
        binding = binding_of(wire)
        try:
            binding.validate()
        except InvalidAcl as exc:
            answers.append((ErrorCode.invalid_request, str(exc)))
            continue
        answers.append(None)
        valid.append(binding)
    result = await request.broker.admin.alter_acls(valid, ())
    stored = (result.error, result.message) if result.error != ErrorCode.none else (ErrorCode.none, None)
    return _response(r, [stored if a is None else a for a in answers])


def _response(r, answers):
    return r.CreateAclsResponse(throttle_time=NO_THROTTLE, results=tuple(
        r.AclCreationResult(error_code=code, error_message=message) for code, message in answers))
