"""``kavka serve`` started with a low soft RLIMIT_NOFILE raises it to the hard limit, logs
it, and then keeps open more files than the original soft limit allowed: a topic with more
partitions than that is written and read back in full.

The child gets (soft 256, hard 4096) before exec; the broker must report 4096 in
/proc/<pid>/limits, say so in one log line, and hold more than 256 descriptors while
serving 300 partitions (log.max.open.files defaults to 10,000, capped at half the limit).
"""

from __future__ import annotations

import os
import resource
import sys

import pytest

from broker_process import BrokerProcess, create_topic, read_all

SOFT, HARD, PARTITIONS = 256, 4096, 300

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _low_limit() -> None:  # in the child, before exec
    resource.setrlimit(resource.RLIMIT_NOFILE, (SOFT, HARD))


def _soft_limit(pid: int) -> int:
    with open(f"/proc/{pid}/limits") as f:
        line = next(line for line in f if line.startswith("Max open files"))
    return int(line.split()[3])


@pytest.mark.timeout(120)
def test_serve_raises_a_low_open_file_limit_and_serves_more_partitions(tmp_path):
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < HARD:
        pytest.skip(f"the hard open file limit is below {HARD}")
    broker = BrokerProcess(tmp_path / "data", overrides={"offsets.topic.num.partitions": 1})
    broker.preexec = _low_limit
    broker.start()
    try:
        assert f"raised the open file limit (RLIMIT_NOFILE) from {SOFT} to {HARD}" in broker.log_text()
        assert _soft_limit(broker.pid) == HARD
        create_topic(broker.bootstrap_servers, "wide", PARTITIONS)
        from confluent_kafka import Producer
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "acks": "all", "linger.ms": 5})
        for p in range(PARTITIONS):
            producer.produce("wide", value=f"p{p}".encode(), partition=p)
        assert producer.flush(30) == 0
        fds = len(os.listdir(f"/proc/{broker.pid}/fd"))
        assert fds > SOFT, f"only {fds} descriptors open: the test did not need the raised limit"
        got = read_all(broker.bootstrap_servers, "wide", PARTITIONS)
        assert {p: [v for _o, _k, v in records] for p, records in got.items()} == \
            {p: [f"p{p}".encode()] for p in range(PARTITIONS)}
        log = broker.log_text()
        assert "Too many open files" not in log and "Traceback" not in log
        assert broker.terminate() == 0
    finally:
        broker.cleanup()
