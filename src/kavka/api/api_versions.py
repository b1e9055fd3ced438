"""ApiVersions (key 18): what this broker speaks, computed from the API registry."""

from __future__ import annotations

from kavka.api.registry import REGISTRY, Request, api
from kavka.api.responses import Builder, builder_for
from kavka.protocol.errors import ErrorCode

KEY = 18
VERSIONS = (0, 4)


def _api_keys(r: Builder) -> tuple:
    return tuple(
        r.ApiVersion(api_key=spec.key, min_version=spec.min_version, max_version=spec.max_version)
        for spec in sorted(REGISTRY.values(), key=lambda s: s.key)
    )


@api(KEY, "ApiVersions", VERSIONS)
def handle(request: Request):
    r = builder_for(request)
    return r.ApiVersionsResponse(error_code=ErrorCode.none, api_keys=_api_keys(r))


def unsupported_version_response():
    """KIP-511: a too-new ApiVersions request gets a v0 answer naming our own range."""
    r = Builder(KEY, 0)
    own = REGISTRY[KEY]
    keys = (r.ApiVersion(api_key=KEY, min_version=own.min_version, max_version=own.max_version),)
    return r.ApiVersionsResponse(error_code=ErrorCode.unsupported_version, api_keys=keys)
