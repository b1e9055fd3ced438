"""GROUP config resources (KIP-848) with real clients on loopback: kafka-python's admin client
(ConfigResourceType.GROUP, 32) sets and describes a group's consumer.heartbeat.interval.ms,
the broker's bounds refuse a value outside them, and a confluent-kafka consumer of that group
(group.protocol=consumer) heartbeats at the new interval."""

from __future__ import annotations

import logging
import time

import pytest

confluent_kafka = pytest.importorskip("confluent_kafka")
kafka_admin = pytest.importorskip("kafka.admin")
from confluent_kafka import Consumer  # noqa: E402
from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType, KafkaAdminClient  # noqa: E402

SETTINGS = {"group.consumer.min.heartbeat.interval.ms": "200", "group.consumer.min.session.timeout.ms": "6000"}
INTERVAL_MS = 400


def _resource(group: str, configs=None) -> ConfigResource:
    return ConfigResource(ConfigResourceType.GROUP, group, configs)


def _heartbeat_times(broker, group: str, seconds: float) -> list[float]:
    """When a consumer of ``group`` sent its ConsumerGroupHeartbeats (but the one leaving), from
    librdkafka's debug log."""
    sent: list[float] = []

    class Recorder(logging.Handler):
        def emit(self, record):
            message = record.getMessage()
            if "ConsumerGroupHeartbeat of member" in message and "generation id -1" not in message:  # not the leave
                sent.append(record.created)

    logger = logging.getLogger(f"kavka.test.rdkafka.{group}")
    logger.addHandler(Recorder())
    logger.setLevel(logging.DEBUG)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap_servers, "group.id": group,
                         "group.protocol": "consumer", "debug": "cgrp"}, logger=logger)
    try:
        consumer.subscribe(["events"])
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            consumer.poll(0.1)
    finally:
        consumer.close()
    return sent


def test_a_group_config_reaches_the_groups_consumers(kavka_broker_factory):
    broker = kavka_broker_factory(SETTINGS)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    try:
        result = admin.alter_configs([_resource("fast", {"consumer.heartbeat.interval.ms": str(INTERVAL_MS)})])
        assert result == {"group": {"fast": "OK"}}
        described = admin.describe_configs([_resource("fast")], config_filter="all")["group"]["fast"]
        interval = described["consumer.heartbeat.interval.ms"]
        assert (interval["value"], interval["config_source"], interval["read_only"]) == (
            str(INTERVAL_MS), "DYNAMIC_GROUP_CONFIG", False)
        assert (described["consumer.session.timeout.ms"]["value"],
                described["consumer.session.timeout.ms"]["config_source"]) == ("45000", "DEFAULT_CONFIG")
        assert described["share.record.lock.duration.ms"]["value"] == "30000"

        refused = admin.alter_configs([_resource("fast", {"consumer.heartbeat.interval.ms": "100"})])
        assert refused["group"]["fast"] == ("[Error 40] InvalidConfigurationError: consumer.heartbeat.interval.ms "
                                            "must be greater than or equal to group.consumer.min.heartbeat.interval.ms")
        assert admin.describe_configs([_resource("fast")], config_filter="all")[
            "group"]["fast"]["consumer.heartbeat.interval.ms"]["value"] == str(INTERVAL_MS)
    finally:
        admin.close()

    sent = _heartbeat_times(broker, "fast", 3.0)
    steady = [later - earlier for earlier, later in zip(sent[2:], sent[3:])]   # after joining
    assert len(steady) >= 3, sent
    assert all(0.25 < gap < 1.5 for gap in steady), steady   # the broker's default is 5 s


def test_deleting_the_config_gives_the_group_the_brokers_interval_again(kavka_broker_factory):
    broker = kavka_broker_factory(SETTINGS)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    try:
        admin.alter_configs([_resource("g", {"consumer.heartbeat.interval.ms": str(INTERVAL_MS)})])
        assert admin.alter_configs([_resource("g", {"consumer.heartbeat.interval.ms": (AlterConfigOp.DELETE, None)})]) \
            == {"group": {"g": "OK"}}
        interval = admin.describe_configs([_resource("g")], config_filter="all")["group"]["g"][
            "consumer.heartbeat.interval.ms"]
        assert (interval["value"], interval["config_source"]) == ("5000", "DEFAULT_CONFIG")
    finally:
        admin.close()
    sent = _heartbeat_times(broker, "g", 2.5)
    assert len(sent) <= 3, sent   # joining, then one every 5 s
