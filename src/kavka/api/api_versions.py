"""ApiVersions (key 18): what this broker speaks, computed from the API registry.

From v3 the answer also carries the feature flags (kavka.metadata.features): the supported
ranges of this broker's software and the cluster's finalized levels with their epoch, from
the metadata boundary.  As Kafka does (KAFKA-17492), v3 leaves out the features whose
supported minimum is 0, which older clients cannot parse; finalized levels are reported as
both their min and max level.
"""

from __future__ import annotations

from kavka.api.registry import REGISTRY, Request, api
from kavka.api.responses import Builder, builder_for
from kavka.metadata.features import SUPPORTED
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
    if request.version < 3:
        return r.ApiVersionsResponse(error_code=ErrorCode.none, api_keys=_api_keys(r))
    finalized = request.broker.metadata.finalized_features()
    return r.ApiVersionsResponse(
        error_code=ErrorCode.none, api_keys=_api_keys(r),
        supported_features=_supported(r, request.version),
        finalized_features=tuple(
            r.FinalizedFeatureKey(name=name, min_version_level=level, max_version_level=level)
            for name, level in sorted(finalized.levels.items())),
        finalized_features_epoch=finalized.epoch)


def _supported(r: Builder, version: int) -> tuple:
    return tuple(
        r.SupportedFeatureKey(name=name, min_version=rng.min_level, max_version=rng.max_level)
        for name, rng in sorted(SUPPORTED.items()) if version >= 4 or rng.min_level > 0)


def unsupported_version_response():
    """KIP-511: a too-new ApiVersions request gets a v0 answer naming our own range."""
    r = Builder(KEY, 0)
    own = REGISTRY[KEY]
    keys = (r.ApiVersion(api_key=KEY, min_version=own.min_version, max_version=own.max_version),)
    return r.ApiVersionsResponse(error_code=ErrorCode.unsupported_version, api_keys=keys)
