"""Fixtures for fault-injection tests: brokers as real processes that can be killed.

``broker_process_factory(data_dir=None, port=None, overrides=None, advertised=None, launch=True)``
returns a started :class:`broker_process.BrokerProcess` (not yet started with
``launch=False``); every process it made is killed (SIGKILL) at the end of the
test if the test left it running.
``broker_process`` is one such broker with ``num.partitions=3``.
"""

from __future__ import annotations

import pytest

from broker_process import BrokerProcess


@pytest.fixture
def broker_process_factory(tmp_path):
    started: list[BrokerProcess] = []

    def start(data_dir=None, *, port: int | None = None, overrides: dict | None = None,
              advertised: str | None = None, launch: bool = True) -> BrokerProcess:
        broker = BrokerProcess(data_dir or tmp_path / f"kavka-{len(started)}", port=port,
                               overrides=overrides, log_dir=tmp_path / "logs", advertised=advertised)
        started.append(broker)
        return broker.start() if launch else broker

    yield start
    for broker in reversed(started):
        broker.cleanup()


@pytest.fixture
def broker_process(broker_process_factory):
    return broker_process_factory(overrides={"num.partitions": 3})
