"""Apache Kafka's ``kafka-configs`` (``kafka.admin.ConfigCommand``) on dynamic broker configs
(KIP-226) and group configs (KIP-848) against a kavka broker with ``broker.id=1``.

The tool runs in a JVM of its own from the Java test client's build, as in test_kafka_tools.py
(whose :func:`tool` runs it).  A test asserts on what the tool printed and reads the values
back through confluent-kafka's or kafka-python's admin client, so a tool that reports success
without the broker keeping the value fails.
"""

from __future__ import annotations

import functools

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource
from kafka.admin import ConfigResourceType, KafkaAdminClient
from kafka.admin import ConfigResource as KafkaPythonResource
from test_kafka_tools import tool

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

CONFIGS = "kafka.admin.ConfigCommand"
TIMEOUT = 15


@pytest.fixture
def configs(client_build, kavka_broker_factory):
    """``configs(*args)``: kafka-configs against a fresh broker 1; what it printed."""
    java = client_build("java")
    broker = kavka_broker_factory({"broker.id": "1", "group.consumer.min.heartbeat.interval.ms": "1000"})
    run = functools.partial(tool, java, CONFIGS, "--bootstrap-server", broker.bootstrap_servers)
    run.broker = broker
    return run


def _broker_configs(bootstrap: str, name: str) -> dict:
    resource = ConfigResource("BROKER", name)
    admin = AdminClient({"bootstrap.servers": bootstrap})   # held until the answer is in
    return admin.describe_configs([resource])[resource].result(TIMEOUT)


def test_broker_and_cluster_default_configs(configs):
    bootstrap = configs.broker.bootstrap_servers
    out = configs("--entity-type", "brokers", "--entity-name", "1", "--alter", "--add-config", "log.cleaner.threads=2")
    assert out.strip() == "Completed updating config for broker 1."
    out = configs("--entity-type", "brokers", "--entity-default", "--alter",
                  "--add-config", "log.cleaner.threads=3,log.retention.ms=3600000")
    assert out.strip() == "Completed updating default config for brokers in the cluster."

    own = configs("--entity-type", "brokers", "--entity-name", "1", "--describe").splitlines()
    assert own[0] == "Dynamic configs for broker 1 are:"
    assert "  log.cleaner.threads=2 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:log.cleaner.threads=2, " \
           "DYNAMIC_DEFAULT_BROKER_CONFIG:log.cleaner.threads=3, DEFAULT_CONFIG:log.cleaner.threads=1}" in own
    cluster = configs("--entity-type", "brokers", "--entity-default", "--describe").splitlines()
    assert cluster[0] == "Default configs for brokers in the cluster are:"
    assert sorted(cluster[1:]) == [
        "  log.cleaner.threads=3 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:log.cleaner.threads=3}",
        "  log.retention.ms=3600000 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:log.retention.ms=3600000}"]

    read = _broker_configs(bootstrap, "1")
    assert (read["log.cleaner.threads"].value, read["log.cleaner.threads"].source) == (
        "2", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    assert (read["log.retention.ms"].value, read["log.retention.ms"].source) == (
        "3600000", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)

    configs("--entity-type", "brokers", "--entity-name", "1", "--alter", "--delete-config", "log.cleaner.threads")
    read = _broker_configs(bootstrap, "1")
    assert (read["log.cleaner.threads"].value, read["log.cleaner.threads"].source) == (
        "3", ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG.value)

    refused = configs("--entity-type", "brokers", "--entity-name", "1", "--alter", "--add-config",
                      "broker.id=5", expect_exit=1)
    assert "Cannot update these configs dynamically: Set(broker.id)" in refused


def test_group_configs(configs):
    out = configs("--entity-type", "groups", "--entity-name", "orders", "--alter",
                  "--add-config", "consumer.heartbeat.interval.ms=2000")
    assert out.strip() == "Completed updating config for group orders."
    described = configs("--entity-type", "groups", "--entity-name", "orders", "--describe").splitlines()
    assert described == ["Dynamic configs for group orders are:",
                         "  consumer.heartbeat.interval.ms=2000 sensitive=false "
                         "synonyms={DYNAMIC_GROUP_CONFIG:consumer.heartbeat.interval.ms=2000}"]
    admin = KafkaAdminClient(bootstrap_servers=configs.broker.bootstrap_servers)
    try:
        read = admin.describe_configs([KafkaPythonResource(ConfigResourceType.GROUP, "orders")], config_filter="all")
    finally:
        admin.close()
    assert read["group"]["orders"]["consumer.heartbeat.interval.ms"]["value"] == "2000"

    refused = configs("--entity-type", "groups", "--entity-name", "orders", "--alter",
                      "--add-config", "consumer.heartbeat.interval.ms=500", expect_exit=1)
    assert "consumer.heartbeat.interval.ms must be greater than or equal to " \
           "group.consumer.min.heartbeat.interval.ms" in refused
