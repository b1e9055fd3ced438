"""GROUP config resources (type 32, KIP-848) through the dispatcher with wire bytes:
DescribeConfigs with the broker's defaults and the group's own values, IncrementalAlterConfigs
checked against the broker's group.consumer.min/max.* bounds, and persistence across a restart."""

from __future__ import annotations

import pytest
import test_broker_configs as broker_configs_test

from kavka.log.log_manager import LogManager
from kavka.protocol.errors import ErrorCode

DESCRIBE = 32
GROUP = 32
SET, DELETE, APPEND = 0, 1, 2
GROUP_CONFIG, DEFAULT = 8, 5
INT, STRING = 3, 2
OK = (ErrorCode.none, None)
BOUNDS = {"group.consumer.min.heartbeat.interval.ms": "1000", "group.consumer.max.heartbeat.interval.ms": "8000",
          "group.consumer.min.session.timeout.ms": "6000", "group.consumer.session.timeout.ms": "30000"}


@pytest.fixture
def h(admin):
    return admin(BOUNDS)


def describe(h, name, keys=None):
    q = h.req(DESCRIBE, 4)
    (result,) = h.call(q.DescribeConfigsRequest(resources=(q.DescribeConfigsResource(
        resource_type=GROUP, resource_name=name, configuration_keys=keys),),
        include_synonyms=True, include_documentation=True)).results
    return result


def configs(h, name="g"):
    result = describe(h, name)
    assert (result.error_code, result.error_message) == OK
    return {c.name: c for c in result.configs}


def incremental(h, name, ops, validate_only=False):
    return broker_configs_test.incremental(h, name, ops, validate_only, resource_type=GROUP)


def shown(entry):
    return entry.value, entry.config_source, entry.read_only, [(s.name, s.value, s.source) for s in entry.synonyms]


def test_a_group_without_configs_has_the_brokers_defaults(h):
    every = configs(h, "never-seen")
    assert sorted(every) == ["consumer.heartbeat.interval.ms", "consumer.session.timeout.ms",
                             "share.auto.offset.reset", "share.heartbeat.interval.ms", "share.isolation.level",
                             "share.record.lock.duration.ms", "share.session.timeout.ms"]
    assert shown(every["consumer.session.timeout.ms"]) == (
        "30000", DEFAULT, False, [("consumer.session.timeout.ms", "30000", DEFAULT)])
    assert (every["consumer.heartbeat.interval.ms"].value, every["consumer.heartbeat.interval.ms"].config_type) == (
        "5000", INT)
    assert (every["share.auto.offset.reset"].value, every["share.auto.offset.reset"].config_type) == ("latest", STRING)
    assert every["share.record.lock.duration.ms"].value == "30000"
    assert every["share.isolation.level"].value == "read_uncommitted"
    assert every["consumer.session.timeout.ms"].documentation
    only = describe(h, "g", keys=("consumer.session.timeout.ms",))
    assert [c.name for c in only.configs] == ["consumer.session.timeout.ms"]


def test_set_and_delete_a_groups_configs(h):
    assert incremental(h, "g", [("consumer.heartbeat.interval.ms", SET, "2000"),
                                ("consumer.session.timeout.ms", SET, "7000")]) == OK
    every = configs(h)
    assert shown(every["consumer.heartbeat.interval.ms"]) == (
        "2000", GROUP_CONFIG, False, [("consumer.heartbeat.interval.ms", "2000", GROUP_CONFIG)])
    assert every["consumer.session.timeout.ms"].value == "7000"
    assert configs(h, "other")["consumer.heartbeat.interval.ms"].value == "5000"

    assert incremental(h, "g", [("consumer.session.timeout.ms", DELETE, None)]) == OK
    every = configs(h)
    assert (every["consumer.session.timeout.ms"].value, every["consumer.session.timeout.ms"].config_source) == (
        "30000", DEFAULT)
    assert every["consumer.heartbeat.interval.ms"].config_source == GROUP_CONFIG

    assert incremental(h, "g", [("consumer.heartbeat.interval.ms", SET, "3000")], validate_only=True) == OK
    assert configs(h)["consumer.heartbeat.interval.ms"].value == "2000"


@pytest.mark.parametrize("ops, message", [
    ([("consumer.heartbeat.interval.ms", SET, "500")],
     "consumer.heartbeat.interval.ms must be greater than or equal to group.consumer.min.heartbeat.interval.ms"),
    ([("consumer.heartbeat.interval.ms", SET, "9000")],
     "consumer.heartbeat.interval.ms must be less than or equal to group.consumer.max.heartbeat.interval.ms"),
    ([("consumer.session.timeout.ms", SET, "5000")],
     "consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms"),
    ([("consumer.session.timeout.ms", SET, "61000")],
     "consumer.session.timeout.ms must be less than or equal to group.consumer.max.session.timeout.ms"),
    ([("consumer.session.timeout.ms", SET, "7000"), ("consumer.heartbeat.interval.ms", SET, "7000")],
     "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"),
    ([("share.record.lock.duration.ms", SET, "70000")],
     "share.record.lock.duration.ms must be less than or equal to group.share.max.record.lock.duration.ms"),
    ([("no.such.config", SET, "1")], "Unknown group config name: no.such.config"),
    ([("consumer.session.timeout.ms", APPEND, "1")],
     "Can't APPEND to key consumer.session.timeout.ms because its type is not LIST."),
])
def test_invalid_group_configs_are_refused_and_change_nothing(h, ops, message):
    assert incremental(h, "g", ops) == (ErrorCode.invalid_config, message)
    assert all(c.config_source == DEFAULT for c in configs(h).values())


def test_bad_values_and_the_empty_name(h):
    code, message = incremental(h, "g", [("share.auto.offset.reset", SET, "soonest")])
    assert code == ErrorCode.invalid_config and "share.auto.offset.reset" in message
    assert incremental(h, "g", [("share.auto.offset.reset", SET, "by_duration:PT1H")]) == OK
    code, _ = incremental(h, "g", [("share.isolation.level", SET, "dirty")])
    assert code == ErrorCode.invalid_config
    assert incremental(h, "", [("consumer.session.timeout.ms", SET, "7000")]) == (
        ErrorCode.invalid_request, "Group name must not be empty")
    empty = describe(h, "")
    assert (empty.error_code, empty.error_message) == (ErrorCode.invalid_request, "Group name must not be empty")


def test_group_configs_survive_a_restart(admin, tmp_path):
    h = admin(BOUNDS)
    assert incremental(h, "g", [("consumer.heartbeat.interval.ms", SET, "2500")]) == OK
    h.context.logs.close()
    logs = LogManager(h.context.logs.data_dir, h.context.config, h.context.clock)
    logs.load()
    try:
        assert logs.group_configs() == {"g": {"consumer.heartbeat.interval.ms": "2500"}}
    finally:
        logs.close()
