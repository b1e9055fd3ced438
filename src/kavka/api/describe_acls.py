"""DescribeAcls (key 29, v1-3): the ACL bindings a filter matches (kavka.security.acl.AclFilter,
MATCH included), grouped by resource pattern.  A filter with an UNKNOWN element is
INVALID_REQUEST; without an authorizer SECURITY_DISABLED; without DESCRIBE on the cluster
CLUSTER_AUTHORIZATION_FAILED (all top-level)."""

from __future__ import annotations

from itertools import groupby

from kavka.api._acls import filter_of, guarded
from kavka.api.registry import Request, api
from kavka.api.responses import NO_THROTTLE, builder_for
from kavka.protocol.errors import ErrorCode
from kavka.security.acl import AclOperation, InvalidAcl

KEY = 29
VERSIONS = (1, 3)


@api(KEY, "DescribeAcls", VERSIONS)
@guarded(AclOperation.DESCRIBE, lambda request, refused: _response(builder_for(request), *refused))
def handle(request: Request):
    r = builder_for(request)
    wanted = filter_of(request.body)
    try:
        wanted.validate()
    except InvalidAcl as exc:
        return _response(r, ErrorCode.invalid_request, str(exc))
    matching = request.broker.metadata.acls().matching(wanted)
    resources = []
    for (kind, name, pattern), bindings in groupby(matching, lambda b: (b.resource_type, b.resource_name,
                                                                         b.pattern_type)):
        acls = tuple(r.AclDescription(principal=b.principal, host=b.host, operation=b.operation,
                                      permission_type=b.permission) for b in bindings)
        resources.append(r.DescribeAclsResource(resource_type=kind, resource_name=name, pattern_type=pattern,
                                                acls=acls))
    return _response(r, ErrorCode.none, None, tuple(resources))


def _response(r, code: ErrorCode, message: str | None, resources=()):
    return r.DescribeAclsResponse(throttle_time=NO_THROTTLE, error_code=code, error_message=message, resources=resources)
