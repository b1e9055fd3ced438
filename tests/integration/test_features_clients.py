"""Feature flags through kafka-python's admin client on loopback: ``describe_features``
(ApiVersions v3+) and ``update_features`` (UpdateFeatures), refusals surfaced as Kafka's
InvalidUpdateVersion, and the levels kept across a broker restart."""

from __future__ import annotations

import pytest

kafka_admin = pytest.importorskip("kafka.admin")
from kafka import errors as kafka_errors  # noqa: E402

TIMEOUT_MS = 15_000


def _admin(broker):
    return kafka_admin.KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers,
                                        request_timeout_ms=TIMEOUT_MS)


def test_describe_features_reports_supported_and_finalized(kavka_broker):
    client = _admin(kavka_broker)
    try:
        features = client.describe_features()
    finally:
        client.close()
    assert features["metadata.version"] == {"supported": (7, 25), "finalized": (25, 25), "finalized_epoch": 0}
    assert features["group.version"] == {"supported": (0, 1), "finalized": (1, 1), "finalized_epoch": 0}
    assert features["transaction.version"] == {"supported": (0, 2), "finalized": (2, 2), "finalized_epoch": 0}
    assert features["share.version"] == {"supported": (0, 0)}


def test_update_features_and_restart(kavka_broker_factory, tmp_path):
    data_dir = tmp_path / "features-broker"
    broker = kavka_broker_factory(data_dir=data_dir)
    client = _admin(broker)
    try:
        with pytest.raises(kafka_errors.InvalidUpdateVersionError):
            client.update_features({"group.version": 0})   # a downgrade without a downgrade type
        with pytest.raises(kafka_errors.InvalidUpdateVersionError):
            client.update_features({"transaction.version": 3})
        assert client.update_features({"group.version": ("SAFE_DOWNGRADE", 0)}) == {"group.version": "OK"}
        assert "finalized" not in client.describe_features()["group.version"]
    finally:
        client.close()
    broker.stop()
    again = kavka_broker_factory(data_dir=data_dir)
    client = _admin(again)
    try:
        features = client.describe_features()
        assert "finalized" not in features["group.version"]
        assert features["metadata.version"]["finalized_epoch"] == 1
        assert client.update_features({"group.version": 1}) == {"group.version": "OK"}
        assert client.describe_features()["group.version"]["finalized"] == (1, 1)
    finally:
        client.close()
