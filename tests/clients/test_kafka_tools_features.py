"""Kafka's own ``kafka-features`` tool (``org.apache.kafka.tools.FeatureCommand``) against a real
kavka broker: ``describe`` shows the levels kavka finalizes, ``--dry-run`` validates and changes
nothing, group.version goes down to 0 and back to 1, and a change the broker refuses comes back
as the tool's error and exit code 1.

The JVM, the Java test client's build and a fresh broker per test come from test_kafka_tools.py's
``kafka`` fixture.  Every change is read back with kafka-python's ``describe_features``
(ApiVersions), and group.version's effect with a ConsumerGroupHeartbeat from kavka's own client,
so a tool that reports success without the broker doing it fails.
"""

from __future__ import annotations

import datetime
import uuid

import pytest
from kafka.admin import KafkaAdminClient
from kio.schema.consumer_group_heartbeat.v1 import request as heartbeat
from test_kafka_tools import java, kafka  # noqa: F401 (fixtures)

from kavka.api.responses import make
from kavka.client import Client
from kavka.protocol.errors import ErrorCode

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]



def kafka_features(tools, *args: str, expect_exit: int = 0) -> str:
    """What ``kafka-features --bootstrap-server ... ARGS`` printed (its error too when it fails)."""
    return tools("FeatureCommand", *tools.args, *args, expect_exit=expect_exit)


def described(tools) -> dict[str, dict[str, str]]:
    """``kafka-features describe`` as feature -> {column: value}, from its tab-separated lines."""
    table = {}
    for line in kafka_features(tools, "describe").splitlines():
        fields = dict(part.split(": ", 1) for part in line.split("\t"))
        table[fields.pop("Feature")] = fields
    return table


def finalized(tools) -> tuple[dict[str, int], int]:
    """The finalized levels (max; min equals max) and their epoch, as kafka-python reads them."""
    client = KafkaAdminClient(bootstrap_servers=tools.bootstrap, request_timeout_ms=15_000)
    try:
        features = client.describe_features()
    finally:
        client.close()
    levels = {}
    epochs = set()
    for name, f in features.items():
        if "finalized" in f:
            low, high = f["finalized"]
            assert low == high, (name, f)
            levels[name] = high
            epochs.add(f["finalized_epoch"])
    (epoch,) = epochs
    return levels, epoch


def consumer_protocol_join(tools) -> int:
    """The error code of a new member's first ConsumerGroupHeartbeat (KIP-848) to a new group."""
    request = make(heartbeat.ConsumerGroupHeartbeatRequest, group_id=f"features-{uuid.uuid4()}",
                   member_id=str(uuid.uuid4()), member_epoch=0, instance_id=None, rack_id=None,
                   rebalance_timeout=datetime.timedelta(seconds=10), subscribed_topic_names=("features-t",),
                   subscribed_topic_regex=None, server_assignor=None, topic_partitions=())
    with Client(tools.bootstrap) as client:
        return client.request(request).error_code


def test_describe_shows_the_levels_kavka_finalizes(kafka):  # noqa: F811 (the fixture)
    table = described(kafka)
    assert table["metadata.version"] == {"SupportedMinVersion": "3.3-IV3", "SupportedMaxVersion": "4.0-IV3",
                                         "FinalizedVersionLevel": "4.0-IV3", "Epoch": "0"}
    assert table["group.version"] == {"SupportedMinVersion": "0", "SupportedMaxVersion": "1",
                                      "FinalizedVersionLevel": "1", "Epoch": "0"}
    assert table["transaction.version"] == {"SupportedMinVersion": "0", "SupportedMaxVersion": "2",
                                            "FinalizedVersionLevel": "2", "Epoch": "0"}
    assert set(table) == {"metadata.version", "kraft.version", "group.version", "transaction.version",
                          "eligible.leader.replicas.version", "share.version", "streams.version"}
    assert finalized(kafka) == ({"metadata.version": 25, "group.version": 1, "transaction.version": 2}, 0)


def test_group_version_down_to_0_and_back_up_with_dry_runs(kafka):  # noqa: F811 (the fixture)
    dry = kafka_features(kafka, "downgrade", "--feature", "group.version=0", "--dry-run")
    assert dry == "group.version can be downgraded to 0.\n"
    assert finalized(kafka) == ({"metadata.version": 25, "group.version": 1, "transaction.version": 2}, 0)

    assert kafka_features(kafka, "downgrade", "--feature", "group.version=0") == "group.version was downgraded to 0.\n"
    assert finalized(kafka) == ({"metadata.version": 25, "transaction.version": 2}, 1)
    assert described(kafka)["group.version"] == {"SupportedMinVersion": "0", "SupportedMaxVersion": "1",
                                                 "FinalizedVersionLevel": "0", "Epoch": "1"}
    assert consumer_protocol_join(kafka) == ErrorCode.unsupported_version

    dry = kafka_features(kafka, "upgrade", "--feature", "group.version=1", "--dry-run")
    assert dry == "group.version can be upgraded to 1.\n"
    assert finalized(kafka) == ({"metadata.version": 25, "transaction.version": 2}, 1)
    assert consumer_protocol_join(kafka) == ErrorCode.unsupported_version

    assert kafka_features(kafka, "upgrade", "--feature", "group.version=1") == "group.version was upgraded to 1.\n"
    assert finalized(kafka) == ({"metadata.version": 25, "group.version": 1, "transaction.version": 2}, 2)
    assert described(kafka)["group.version"] == {"SupportedMinVersion": "0", "SupportedMaxVersion": "1",
                                                 "FinalizedVersionLevel": "1", "Epoch": "2"}
    assert consumer_protocol_join(kafka) == ErrorCode.none


REFUSED = "The update failed for all features since the following feature had an error: "


@pytest.mark.parametrize("change, error", [
    (("upgrade", "--feature", "transaction.version=3"),
     "Could not upgrade transaction.version to 3. " + REFUSED + "Invalid update version 3 for feature "
     "transaction.version. Local controller 0 only supports versions 0-2"),
    (("downgrade", "--feature", "metadata.version=7"),
     "Could not downgrade metadata.version to 7. " + REFUSED + "Invalid metadata.version 7. Refusing to perform "
     "the requested downgrade because it might delete metadata information."),
])
def test_refused_changes_are_the_tools_error_and_exit_code_1(kafka, change, error):  # noqa: F811 (the fixture)
    out = kafka_features(kafka, *change, expect_exit=1)
    assert out.splitlines() == [error, "1 out of 1 operation(s) failed."]
    assert finalized(kafka) == ({"metadata.version": 25, "group.version": 1, "transaction.version": 2}, 0)
