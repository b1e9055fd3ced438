"""A broker holding thousands of partitions exits quickly on SIGTERM and starts again (issue 9, item 3)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

PARTITIONS = 3000


@pytest.mark.slow
def test_shutdown_of_thousands_of_partitions_takes_seconds(broker_process):
    admin = AdminClient({"bootstrap.servers": broker_process.bootstrap_servers})
    futures = admin.create_topics([NewTopic(f"t{i:03d}", 100, 1) for i in range(PARTITIONS // 100)],
                                  operation_timeout=120, request_timeout=180)
    for future in futures.values():
        future.result(timeout=180)
    started = time.monotonic()
    assert broker_process.terminate(timeout=60) == 0
    elapsed = time.monotonic() - started
    assert elapsed < 10.0, f"SIGTERM took {elapsed:.1f} s for {PARTITIONS} partitions"
    broker_process.restart(timeout=60)
    topics = AdminClient({"bootstrap.servers": broker_process.bootstrap_servers}).list_topics(timeout=30).topics
    assert sum(len(t.partitions) for name, t in topics.items() if name.startswith("t")) == PARTITIONS
    assert "recovered after an unclean shutdown" not in broker_process.log_text()
