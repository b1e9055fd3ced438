"""BROKER_LOGGER through kafka-python's admin client: describe kavka's log levels, set one live.

confluent-kafka 2.16's Python ConfigResource has no BROKER_LOGGER resource type, so kafka-python
(whose ConfigResourceType has it) is the client here.
"""

from __future__ import annotations

import logging

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient


@pytest.fixture
def client(kavka_broker):
    admin = KafkaAdminClient(bootstrap_servers=kavka_broker.bootstrap_servers, request_timeout_ms=10000)
    level = logging.getLogger("kavka.group").level
    yield admin
    admin.close()
    logging.getLogger("kavka.group").setLevel(level)


def _levels(client) -> dict[str, str]:
    described = client.describe_configs([ConfigResource(ConfigResourceType.BROKER_LOGGER, "0")])
    return {name: entry["value"] for name, entry in described["broker_logger"]["0"].items()}


def test_kafka_python_sets_a_log_level_live(client, kavka_broker):
    logging.getLogger("kavka.group")
    before = _levels(client)
    assert "root" in before and "kavka.group" in before
    target = "TRACE" if before["kavka.group"] != "TRACE" else "ERROR"
    resource = ConfigResource(ConfigResourceType.BROKER_LOGGER, "0", configs={"kavka.group": target})
    assert client.alter_configs([resource], incremental=True, raise_on_unknown=False) == {
        "broker_logger": {"0": "OK"}}
    assert _levels(client)["kavka.group"] == target
    assert logging.getLogger("kavka.group").getEffectiveLevel() == (5 if target == "TRACE" else logging.ERROR)
    bad = ConfigResource(ConfigResourceType.BROKER_LOGGER, "0", configs={"kavka.group": "CHATTY"})
    result = client.alter_configs([bad], incremental=True, raise_on_unknown=False)["broker_logger"]["0"]
    assert "InvalidConfiguration" in result and "not a supported log level" in result
    assert _levels(client)["kavka.group"] == target
