"""UpdateFeatures (key 57): finalize new feature levels (KIP-584, ``kafka-features upgrade``).

Answered as Kafka 4.x's controller answers it: all updates or none.  The first update that
cannot be made fails the whole request with a top-level INVALID_UPDATE_VERSION and no
per-feature results; success answers NONE with one NONE result per feature (v0-1; v2 has no
results).  v0's ``allow_downgrade`` means a safe downgrade, v1+ names the upgrade type.
Which updates are acceptable is kavka.metadata.features' decision; the metadata boundary
keeps the levels (a file of a lone broker's data directory, or etcd), so every broker's
ApiVersions reports them afterwards.  ``validate_only`` (v1+) checks and changes nothing.
"""

from __future__ import annotations

from kavka.api.authorization import Op, Res, requires
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.metadata.features import FeatureUpdate, UpgradeType
from kavka.protocol.errors import ErrorCode

KEY = 57
VERSIONS = (0, 2)
FAILED_PREFIX = "The update failed for all features since the following feature had an error: "


@api(KEY, "UpdateFeatures", VERSIONS)
@requires(Op.ALTER, Res.CLUSTER)
async def handle(request: Request):
    r = builder_for(request)
    body = request.body
    updates = [_update(u, request.version) for u in body.feature_updates]
    result = await request.broker.admin.update_features(updates, getattr(body, "validate_only", False))
    if not result.ok:
        return r.UpdateFeaturesResponse(error_code=result.error, error_message=FAILED_PREFIX + str(result.message),
                                        results=())
    return r.UpdateFeaturesResponse(error_code=ErrorCode.none, error_message=None,
                                    results=_results(r, updates) if request.version <= 1 else ())


def _results(r, updates: list[FeatureUpdate]) -> tuple:
    features = dict.fromkeys(u.feature for u in updates)   # once each, in request order
    return tuple(r.UpdatableFeatureResult(feature=name, error_code=ErrorCode.none, error_message=None)
                 for name in features)


def _update(u, version: int) -> FeatureUpdate:
    if version == 0:
        kind = UpgradeType.SAFE_DOWNGRADE if u.allow_downgrade else UpgradeType.UPGRADE
    else:
        kind = UpgradeType.of(u.upgrade_type)
    return FeatureUpdate(u.feature, u.max_version_level, kind)
