"""Apache Kafka's ``kafka-configs`` (``kafka.admin.ConfigCommand``) on client quotas: users,
clients, users with clients, and ips, named or ``--entity-default``, altered and described
against kavka.  What the tool printed is asserted on, and the values are read back with
DescribeClientQuotas apart from the tool (kavka.client), so a tool that reports success
without the broker keeping the value fails."""

from __future__ import annotations

import functools

import pytest
from kio.schema.describe_client_quotas.v1 import request as describe_quotas
from test_kafka_tools import tool

from kavka.api.responses import make
from kavka.client import Client

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

CONFIGS = "kafka.admin.ConfigCommand"


@pytest.fixture
def configs(client_build, kavka_broker_factory):
    java = client_build("java")
    broker = kavka_broker_factory()
    run = functools.partial(tool, java, CONFIGS, "--bootstrap-server", broker.bootstrap_servers)
    run.broker = broker
    return run


def stored(broker) -> dict:
    with Client(broker.bootstrap_servers) as client:
        answer = client.request(make(describe_quotas.DescribeClientQuotasRequest, components=(), strict=False))
    assert answer.error_code == 0
    return {tuple((e.entity_type, e.entity_name) for e in entry.entity): {v.key: v.value for v in entry.values}
            for entry in answer.entries}


def test_kafka_configs_alters_and_describes_quotas(configs):
    out = configs("--entity-type", "users", "--entity-name", "alice", "--alter",
                  "--add-config", "producer_byte_rate=1048576,consumer_byte_rate=2097152")
    assert "Completed updating config for user alice." in out
    out = configs("--entity-type", "clients", "--entity-default", "--alter", "--add-config", "request_percentage=50")
    assert "Completed updating default config for clients in the cluster." in out
    configs("--entity-type", "users", "--entity-name", "bob", "--entity-type", "clients", "--entity-name", "app",
            "--alter", "--add-config", "producer_byte_rate=1000")
    configs("--entity-type", "ips", "--entity-name", "10.0.0.1", "--alter", "--add-config",
            "connection_creation_rate=5")
    assert stored(configs.broker) == {
        (("user", "alice"),): {"producer_byte_rate": 1048576.0, "consumer_byte_rate": 2097152.0},
        (("client-id", None),): {"request_percentage": 50.0},
        (("user", "bob"), ("client-id", "app")): {"producer_byte_rate": 1000.0},
        (("ip", "10.0.0.1"),): {"connection_creation_rate": 5.0},
    }
    # --describe of a user alone also asks DescribeUserScramCredentials (alice has none)
    out = configs("--entity-type", "users", "--entity-name", "alice", "--describe")
    assert "Quota configs for user-principal 'alice' are" in out and "producer_byte_rate=1048576.0" in out
    out = configs("--entity-type", "users", "--entity-name", "bob", "--entity-type", "clients", "--entity-name",
                  "app", "--describe")
    assert "Quota configs for user-principal 'bob', client-id 'app' are producer_byte_rate=1000.0" in out
    out = configs("--entity-type", "clients", "--entity-default", "--describe")
    assert "Quota configs for the default client-id are request_percentage=50.0" in out
    out = configs("--entity-type", "ips", "--entity-name", "10.0.0.1", "--describe")
    assert "connection_creation_rate=5.0" in out

    configs("--entity-type", "users", "--entity-name", "alice", "--alter", "--delete-config", "producer_byte_rate")
    assert stored(configs.broker)[(("user", "alice"),)] == {"consumer_byte_rate": 2097152.0}


def test_kafka_configs_refused_quota(configs):
    out = configs("--entity-type", "ips", "--entity-name", "10.0.0.1", "--alter", "--add-config",
                  "producer_byte_rate=5", expect_exit=1)
    assert "producer_byte_rate" in out
    assert stored(configs.broker) == {}
