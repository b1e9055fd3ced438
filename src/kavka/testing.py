"""A pytest plugin: real kavka brokers for your own tests.

Installed with kavka (entry point ``pytest11``), so in any project::

    def test_roundtrip(kavka_broker):
        producer = Producer({"bootstrap.servers": kavka_broker.bootstrap_servers})

``kavka_broker`` is a fresh broker per test on a free loopback port with its data
in the test's tmp_path; ``kavka_broker_factory(**settings)`` starts more, with
Kafka broker settings such as ``{"num.partitions": "3"}``.  They stop at the
end of the test.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def kavka_broker_factory(tmp_path):
    from kavka.broker import Broker

    started = []

    def start(settings: dict | None = None, *, data_dir=None, port: int = 0):
        directory = data_dir or tmp_path / f"kavka-{len(started)}"
        broker = Broker(directory, port=port, config={k: str(v) for k, v in (settings or {}).items()})
        broker.start()
        started.append(broker)
        return broker

    yield start
    for broker in reversed(started):
        broker.stop()


@pytest.fixture
def kavka_broker(kavka_broker_factory):
    return kavka_broker_factory()
