"""Feature flags through the dispatcher with wire bytes: ApiVersions v3/v4's supported and
finalized features, UpdateFeatures v0-2 (upgrade, downgrade types, validate-only, Kafka's
refusals), and the levels surviving a restart of the lone broker."""

from __future__ import annotations

import datetime

import pytest

from kavka.api.context import BrokerContext, RandomProducerIds
from kavka.log.log_manager import LogManager
from kavka.protocol.errors import ErrorCode

API_VERSIONS, UPDATE_FEATURES = 18, 57
UPGRADE, SAFE_DOWNGRADE, UNSAFE_DOWNGRADE = 1, 2, 3


def versions(h, version=4):
    q = h.req(API_VERSIONS, version)
    return h.call(q.ApiVersionsRequest(client_software_name="t", client_software_version="1"))


def supported(response):
    return {f.name: (f.min_version, f.max_version) for f in response.supported_features}


def finalized(response):
    return {f.name: (f.min_version_level, f.max_version_level) for f in response.finalized_features}


def update(h, *updates, version=1, validate_only=False):
    """``updates``: (feature, level, upgrade type) — for v0 the type's downgrade-ness."""
    q = h.req(UPDATE_FEATURES, version)
    keys = tuple(q.FeatureUpdateKey(feature=f, max_version_level=level, upgrade_type=kind,
                                    allow_downgrade=kind != UPGRADE) for f, level, kind in updates)
    return h.call(q.UpdateFeaturesRequest(feature_updates=keys, validate_only=validate_only))


@pytest.fixture
def h(admin):
    return admin()


def test_api_versions_v4_reports_every_feature_and_the_defaults(h):
    r = versions(h, 4)
    assert supported(r) == {
        "metadata.version": (7, 25), "kraft.version": (0, 0), "group.version": (0, 1),
        "transaction.version": (0, 2), "eligible.leader.replicas.version": (0, 0),
        "share.version": (0, 0), "streams.version": (0, 0)}
    assert finalized(r) == {"metadata.version": (25, 25), "group.version": (1, 1), "transaction.version": (2, 2)}
    assert r.finalized_features_epoch == 0
    assert any(k.api_key == UPDATE_FEATURES and (k.min_version, k.max_version) == (0, 2) for k in r.api_keys)


def test_api_versions_v3_leaves_out_features_with_minimum_zero(h):
    r = versions(h, 3)
    assert supported(r) == {"metadata.version": (7, 25)}
    assert finalized(r) == {"metadata.version": (25, 25), "group.version": (1, 1), "transaction.version": (2, 2)}


def test_api_versions_before_v3_has_no_features(h):
    q = h.req(API_VERSIONS, 2)
    r = h.call(q.ApiVersionsRequest())
    assert r.error_code == ErrorCode.none and not hasattr(r, "supported_features")


def test_downgrade_and_upgrade_bump_the_epoch(h):
    r = update(h, ("group.version", 0, SAFE_DOWNGRADE))
    assert r.error_code == ErrorCode.none and r.error_message is None
    assert [(x.feature, x.error_code) for x in r.results] == [("group.version", ErrorCode.none)]
    after = versions(h)
    assert finalized(after) == {"metadata.version": (25, 25), "transaction.version": (2, 2)}
    assert after.finalized_features_epoch == 1
    assert update(h, ("group.version", 1, UPGRADE)).error_code == ErrorCode.none
    after = versions(h)
    assert finalized(after)["group.version"] == (1, 1)
    assert after.finalized_features_epoch == 2


def test_same_level_is_no_change(h):
    assert update(h, ("group.version", 1, UPGRADE)).error_code == ErrorCode.none
    assert versions(h).finalized_features_epoch == 0


def test_v0_allow_downgrade_is_a_safe_downgrade(h):
    r = update(h, ("group.version", 0, SAFE_DOWNGRADE), version=0)
    assert r.error_code == ErrorCode.none
    assert "group.version" not in finalized(versions(h))


def test_v2_answers_without_results(h):
    r = update(h, ("group.version", 0, SAFE_DOWNGRADE), version=2)
    assert r.error_code == ErrorCode.none and not hasattr(r, "results")
    assert "group.version" not in finalized(versions(h))


def test_downgrade_without_downgrade_type_is_refused(h):
    r = update(h, ("group.version", 0, UPGRADE))
    assert r.error_code == ErrorCode.invalid_update_version
    assert r.error_message == (
        "The update failed for all features since the following feature had an error: Invalid update "
        "version 0 for feature group.version. Can't downgrade the version of this feature without "
        "setting the upgrade type to either safe or unsafe downgrade.")
    assert r.results == ()
    assert finalized(versions(h))["group.version"] == (1, 1)


def test_upgrade_with_a_downgrade_type_is_refused(h):
    update(h, ("group.version", 0, SAFE_DOWNGRADE))
    r = update(h, ("group.version", 1, SAFE_DOWNGRADE))
    assert r.error_code == ErrorCode.invalid_update_version
    assert r.error_message.endswith("Can't downgrade to a newer version.")


@pytest.mark.parametrize("feature, level, reason", [
    ("group.version", 2, "Local controller 0 only supports versions 0-1"),
    ("transaction.version", 3, "Local controller 0 only supports versions 0-2"),
    ("share.version", 1, "Local controller 0 does not support this feature."),
    ("no.such.feature", 1, "Local controller 0 does not support this feature."),
    ("metadata.version", 26, "Local controller 0 only supports versions 7-25"),
    ("group.version", -1, "A feature version cannot be less than 0."),
])
def test_levels_outside_the_supported_range(h, feature, level, reason):
    r = update(h, (feature, level, UPGRADE))
    assert r.error_code == ErrorCode.invalid_update_version
    assert r.error_message.endswith(f"Invalid update version {level} for feature {feature}. {reason}")


def test_unknown_upgrade_type_is_refused(h):
    r = update(h, ("group.version", 1, 7))
    assert r.error_code == ErrorCode.invalid_update_version
    assert r.error_message.endswith("The controller does not support the given upgrade type.")


def test_one_bad_update_fails_them_all(h):
    r = update(h, ("group.version", 0, SAFE_DOWNGRADE), ("share.version", 1, UPGRADE))
    assert r.error_code == ErrorCode.invalid_update_version
    after = versions(h)
    assert finalized(after)["group.version"] == (1, 1) and after.finalized_features_epoch == 0


def test_validate_only_changes_nothing(h):
    r = update(h, ("group.version", 0, SAFE_DOWNGRADE), validate_only=True)
    assert r.error_code == ErrorCode.none
    assert [x.feature for x in r.results] == ["group.version"]
    after = versions(h)
    assert finalized(after)["group.version"] == (1, 1) and after.finalized_features_epoch == 0


def test_metadata_version_downgrades_as_kafka_allows(h):
    # 4.0-IV3 -> 4.0-IV2 changes no metadata; -> 4.0-IV0 crosses 4.0-IV1, which did
    assert update(h, ("metadata.version", 24, SAFE_DOWNGRADE)).error_code == ErrorCode.none
    assert finalized(versions(h))["metadata.version"] == (24, 24)
    r = update(h, ("metadata.version", 22, SAFE_DOWNGRADE))
    assert r.error_code == ErrorCode.invalid_update_version
    assert r.error_message.endswith("Invalid metadata.version 22. Refusing to perform the requested "
                                    "downgrade because it might delete metadata information.")
    r = update(h, ("metadata.version", 22, UNSAFE_DOWNGRADE))
    assert r.error_message.endswith("Invalid metadata.version 22. Unsafe metadata downgrade is not "
                                    "supported in this version.")
    assert update(h, ("metadata.version", 25, UPGRADE)).error_code == ErrorCode.none


def test_levels_survive_a_restart(h):
    assert update(h, ("group.version", 0, SAFE_DOWNGRADE)).error_code == ErrorCode.none
    old = h.context
    old.logs.close()
    logs = LogManager(old.logs.data_dir, old.config, old.clock)
    logs.load()
    try:
        again = type(h)(BrokerContext(logs=logs, config=old.config, clock=old.clock, node_id=0,
                                           host="127.0.0.1", port=9092, producer_ids=RandomProducerIds()))
        after = versions(again)
        assert finalized(after) == {"metadata.version": (25, 25), "transaction.version": (2, 2)}
        assert after.finalized_features_epoch == 1
    finally:
        logs.close()


def heartbeat_and_describe(h):
    q = h.req(68, 1)
    beat = h.call(q.ConsumerGroupHeartbeatRequest(
        group_id="g", member_id="m-1", member_epoch=0, instance_id=None, rack_id=None,
        rebalance_timeout=datetime.timedelta(seconds=30), subscribed_topic_names=("t",),
        subscribed_topic_regex=None, server_assignor=None, topic_partitions=()))
    q = h.req(69, 1)
    described = h.call(q.ConsumerGroupDescribeRequest(group_ids=("g", "h"), include_authorized_operations=False))
    return beat.error_code, [(g.group_id, g.error_code) for g in described.groups]


def test_group_version_0_turns_the_consumer_protocol_off(h):
    beat, groups = heartbeat_and_describe(h)
    assert beat != ErrorCode.unsupported_version   # this context has no coordinator: not available
    assert ErrorCode.unsupported_version not in [code for _, code in groups]
    update(h, ("group.version", 0, SAFE_DOWNGRADE))
    beat, groups = heartbeat_and_describe(h)
    assert beat == ErrorCode.unsupported_version
    assert groups == [("g", ErrorCode.unsupported_version), ("h", ErrorCode.unsupported_version)]
