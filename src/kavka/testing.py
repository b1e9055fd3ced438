"""A pytest plugin: real kavka brokers for your own tests.

Installed with kavka (entry point ``pytest11``), so in any project::

    def test_roundtrip(kavka_broker):
        producer = Producer({"bootstrap.servers": kavka_broker.bootstrap_servers})

``kavka_broker`` is a fresh broker per test on a free loopback port with its data
in the test's tmp_path; ``kavka_broker_factory(**settings)`` starts more, with
Kafka broker settings such as ``{"num.partitions": "3"}``.  They stop at the
end of the test.

These brokers allow tiny segments (``TINY_SEGMENTS``: the broker-level
``internal.segment.bytes.min`` / ``internal.segment.ms.min`` escapes from the
1 MiB / 1 minute floors on client-set ``segment.bytes`` / ``segment.ms``), so
tests can roll segments with a few records; pass other values to override.
"""

from __future__ import annotations

import pytest

# Broker settings that lift the floors on client-set segment.bytes / segment.ms (tests only).
TINY_SEGMENTS = {"internal.segment.bytes.min": "14", "internal.segment.ms.min": "1"}


@pytest.fixture
def kavka_broker_factory(tmp_path):
    from kavka.broker import Broker

    started = []

    def start(settings: dict | None = None, *, data_dir=None, port: int = 0, **broker_args):
        """``broker_args``: more of Broker's keyword arguments (e.g. ``listeners=``)."""
        directory = data_dir or tmp_path / f"kavka-{len(started)}"
        config = {**TINY_SEGMENTS, **{k: str(v) for k, v in (settings or {}).items()}}
        broker = Broker(directory, port=port, config=config, **broker_args)
        broker.start()
        started.append(broker)
        return broker

    yield start
    for broker in reversed(started):
        broker.stop()


@pytest.fixture
def kavka_broker(kavka_broker_factory):
    return kavka_broker_factory()
