"""BROKER_LOGGER resources through the dispatcher: DescribeConfigs lists kavka's loggers under
log4j's level names, IncrementalAlterConfigs sets and removes levels live, all or nothing."""

from __future__ import annotations

import logging

import pytest

from kavka.protocol.errors import ErrorCode
from test_alter_configs import BROKER_LOGGER, DELETE, APPEND, SET, alter, incremental, one

DESCRIBE = 32


@pytest.fixture
def h(admin):
    return admin()


@pytest.fixture(autouse=True)
def restore_levels():
    names = ("kavka", "kavka.api", "kavka.log")
    saved = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def levels(h, broker="0"):
    q = h.req(DESCRIBE, 4)
    (result,) = h.call(q.DescribeConfigsRequest(
        resources=(q.DescribeConfigsResource(resource_type=BROKER_LOGGER, resource_name=broker,
                                             configuration_keys=None),),
        include_synonyms=False, include_documentation=False)).results
    assert result.error_code == ErrorCode.none, result.error_message
    return {c.name: c.value for c in result.configs}


def test_set_then_delete_a_level_live(h):
    logging.getLogger("kavka.log")
    assert one(incremental(h, (BROKER_LOGGER, "0", [("kavka.log", SET, "TRACE"), ("kavka.api", SET, "warn")]))
               ).error_code == ErrorCode.none
    assert logging.getLogger("kavka.log").isEnabledFor(5) and not logging.getLogger("kavka.log.x").level
    described = levels(h)
    assert (described["kavka.log"], described["kavka.api"]) == ("TRACE", "WARN")
    assert one(incremental(h, (BROKER_LOGGER, "0", [("kavka.log", DELETE, None)]))).error_code == ErrorCode.none
    assert logging.getLogger("kavka.log").level == logging.NOTSET
    described = levels(h)
    assert described["kavka.log"] == described["kavka"] != "TRACE"   # its parent's again


@pytest.mark.parametrize("ops, code, words", [
    ([("kavka.api", SET, "LOUD")], ErrorCode.invalid_config, "not a supported log level"),
    ([("root", DELETE, None)], ErrorCode.invalid_config, "root logger is not allowed"),
    ([("org.apache.kafka", SET, "DEBUG")], ErrorCode.invalid_config, "Logger org.apache.kafka does not exist"),
    ([("kavka.api", APPEND, "DEBUG")], ErrorCode.invalid_request, "APPEND operation is not allowed"),
])
def test_refused_changes_change_nothing(h, ops, code, words):
    """The good change beside the refused one is not made either."""
    before = logging.getLogger("kavka").level
    response = one(incremental(h, (BROKER_LOGGER, "0", [("kavka", SET, "ERROR"), *ops])))
    assert response.error_code == code and words in response.error_message
    assert logging.getLogger("kavka").level == before != logging.ERROR


def test_validate_only_and_other_brokers(h):
    before = logging.getLogger("kavka.api").level
    responses = incremental(h, (BROKER_LOGGER, "0", [("kavka.api", SET, "DEBUG")]), validate_only=True)
    assert one(responses).error_code == ErrorCode.none
    assert logging.getLogger("kavka.api").level == before
    other, empty = incremental(h, (BROKER_LOGGER, "7", [("kavka.api", SET, "DEBUG")]),
                               (BROKER_LOGGER, "", [("kavka.api", SET, "DEBUG")]))
    assert (other.error_code, empty.error_code) == (ErrorCode.invalid_request, ErrorCode.invalid_request)
    assert "Unexpected broker id" in other.error_message and "must not be empty" in empty.error_message


def test_alter_configs_points_to_incremental(h):
    response = one(alter(h, (BROKER_LOGGER, "0", {"kavka": "DEBUG"})))
    assert response.error_code == ErrorCode.invalid_request and "IncrementalAlterConfigs" in response.error_message
