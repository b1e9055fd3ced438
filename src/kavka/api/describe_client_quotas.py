"""DescribeClientQuotas (key 48, v0-1): the stored client quotas (kavka.security.quota) of the
entities a filter matches.  Each component matches one entity type by exact name, the default
entity, or any specified name; ``strict`` leaves out entities with other component types too.
A bad filter is INVALID_REQUEST (top-level, no entries); needs DESCRIBE_CONFIGS on the cluster
(CLUSTER_AUTHORIZATION_FAILED), as Kafka."""

from __future__ import annotations

from kavka.api.authorization import Op, Res, requires
from kavka.api.registry import Request, api
from kavka.api.responses import NO_THROTTLE, builder_for
from kavka.protocol.errors import ErrorCode
from kavka.security.quota import FilterComponent, InvalidQuota, check_filter

KEY = 48
VERSIONS = (0, 1)


@api(KEY, "DescribeClientQuotas", VERSIONS)
@requires(Op.DESCRIBE_CONFIGS, Res.CLUSTER)
def handle(request: Request):
    r = builder_for(request)
    components = [FilterComponent(c.entity_type, c.match_type, c.match) for c in request.body.components]
    try:
        check_filter(components)
    except InvalidQuota as exc:
        return r.DescribeClientQuotasResponse(throttle_time=NO_THROTTLE, error_code=ErrorCode.invalid_request,
                                              error_message=str(exc), entries=None)
    found = request.broker.metadata.client_quotas().matching(components, request.body.strict)
    entries = tuple(
        r.EntryData(entity=tuple(r.EntityData(entity_type=k, entity_name=n) for k, n in entity),
                    values=tuple(r.ValueData(key=key, value=value) for key, value in sorted(values.items())))
        for entity, values in found)
    return r.DescribeClientQuotasResponse(throttle_time=NO_THROTTLE, error_code=ErrorCode.none,
                                          error_message=None, entries=entries)
