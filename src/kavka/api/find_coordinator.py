"""FindCoordinator (key 10): which broker coordinates a group or transactional id.

A lone broker coordinates everything it is asked about.  v0-3 carry one key;
v4+ carry a batch of keys and answer one coordinator each.  Share groups
(key type 2) are not supported.

Advertising this API from v0 matters beyond groups: librdkafka enables LZ4
compression only when FindCoordinator v0 is in the broker's ApiVersions.
"""

from __future__ import annotations

from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode

KEY = 10
VERSIONS = (0, 6)
GROUP, TRANSACTION = 0, 1


@api(KEY, "FindCoordinator", VERSIONS)
def handle(request: Request):
    r = builder_for(request)
    body, broker = request.body, request.broker
    key_type = getattr(body, "key_type", GROUP)
    error = ErrorCode.none if key_type in (GROUP, TRANSACTION) else ErrorCode.invalid_request
    message = None if error == ErrorCode.none else f"coordinator key type {key_type} is not supported"
    node = dict(node_id=broker.node_id if not error else -1, host=broker.host if not error else "",
                port=broker.port if not error else -1, error_code=error, error_message=message)
    if request.version >= 4:
        return r.FindCoordinatorResponse(
            coordinators=tuple(r.Coordinator(key=key, **node) for key in body.coordinator_keys))
    return r.FindCoordinatorResponse(**node)
