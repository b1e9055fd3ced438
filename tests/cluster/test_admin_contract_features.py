"""The admin contract (see test_admin_contract.py) of feature flags: an UpdateFeatures sent
to any broker changes the finalized levels that every broker's ApiVersions reports, with
one new epoch; a refused update changes nothing anywhere."""

from __future__ import annotations

import pytest
from kio.schema.api_versions.v4.request import ApiVersionsRequest
from kio.schema.update_features.v1.request import FeatureUpdateKey, UpdateFeaturesRequest

from admin_contract_helpers import ask_broker, code_name, eventually, kafka_python_admin

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]
SAFE_DOWNGRADE, UPGRADE = 2, 1


def finalized(target, broker_id: int):
    answer = ask_broker(target, broker_id, ApiVersionsRequest(client_software_name="contract",
                                                              client_software_version="1"))
    return {f.name: f.max_version_level for f in answer.finalized_features}, answer.finalized_features_epoch


def update(target, broker_id: int, feature: str, level: int, kind: int):
    return ask_broker(target, broker_id, UpdateFeaturesRequest(
        feature_updates=(FeatureUpdateKey(feature=feature, max_version_level=level, upgrade_type=kind),)))


def everywhere(target, expected) -> None:
    for broker_id in target.broker_ids:
        eventually(lambda b=broker_id: finalized(target, b) == expected,
                   f"finalized features {expected} at broker {broker_id}")


def test_any_broker_updates_the_features_every_broker_reports(admin_target):
    target = admin_target
    txn = {"transaction.version": 2}   # transactions V2, on a lone broker and a cluster alike
    everywhere(target, ({"metadata.version": 25, "group.version": 1, **txn}, 0))
    last = target.broker_ids[-1]
    answer = update(target, last, "group.version", 0, SAFE_DOWNGRADE)
    assert (code_name(answer.error_code), [r.feature for r in answer.results]) == ("NoError", ["group.version"])
    assert finalized(target, last) == ({"metadata.version": 25, **txn}, 1)   # answered once this broker shows it
    everywhere(target, ({"metadata.version": 25, **txn}, 1))

    refused = update(target, target.broker_ids[0], "group.version", 2, UPGRADE)
    assert code_name(refused.error_code) == "InvalidUpdateVersionError"
    assert refused.error_message.endswith("Invalid update version 2 for feature group.version. "
                                          f"Local controller {target.broker_ids[0]} only supports versions 0-1")

    client = kafka_python_admin(target)
    try:
        assert client.update_features({"group.version": 1}) == {"group.version": "OK"}
    finally:
        client.close()
    everywhere(target, ({"metadata.version": 25, "group.version": 1, **txn}, 2))
