"""Fixtures for tests that drive real Kafka clients over loopback."""

import pytest


@pytest.fixture
def broker(kavka_broker_factory):
    return kavka_broker_factory({"num.partitions": 3})
