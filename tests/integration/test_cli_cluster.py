"""``kavka cluster up`` and ``kavka cluster describe`` as a user runs them.

One test starts ``kavka cluster up 3`` as a subprocess (temp data dir, free ports),
describes the cluster, creates an RF=3 topic, kills a broker and sees the partitions
become under-replicated, then stops everything with SIGINT and checks that every child
(etcd and the brokers) is gone, and starts it again on the same directory (topic and records
kept).  Others describe a lone broker, check the one-line errors, and that a SIGKILLed
``cluster up`` leaves no child behind.  Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kavka.cluster.etcd_server import free_port_range

pytestmark = pytest.mark.timeout(90)

CLI_TIMEOUT = 30


def kavka(*args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kavka", *args], capture_output=True, timeout=timeout,
                          env=dict(os.environ, KAVKA_BOOTSTRAP=""))


def ok(result) -> str:
    assert result.returncode == 0, (result.stdout.decode(), result.stderr.decode())
    return result.stdout.decode()


def describe(bootstrap: str, *extra: str) -> dict:
    return json.loads(ok(kavka("cluster", "describe", "-b", bootstrap, "--json", *extra)))




def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


class Up:
    """``kavka cluster up`` in the background; its stdout lines in a queue."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "kavka", "cluster", "up", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        for line in self.lines:
            if m := re.search(pattern, line):
                return m
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            if m := re.search(pattern, line):
                return m
        raise AssertionError(f"no line matching {pattern!r} within {timeout}s; output:\n" + "\n".join(self.lines))

    def child_pids(self) -> dict[str, int]:
        pids = {}
        for line in self.lines:
            if m := re.match(r"(etcd|broker \d+): \S+ \(pid (\d+)", line):
                pids[m.group(1)] = int(m.group(2))
        return pids


def wait_describe(bootstrap: str, predicate, timeout: float, what: str) -> dict:
    deadline = time.monotonic() + timeout
    report = None
    while time.monotonic() < deadline:
        report = describe(bootstrap)
        if predicate(report):
            return report
        time.sleep(0.5)
    raise AssertionError(f"{what} not seen within {timeout}s; last report: {report}")


@pytest.mark.slow  # kavka cluster up: etcd and 3 broker processes (~10 s)
def test_cluster_up_describe_kill_and_stop(tmp_path):
    base = free_port_range(3)
    data_dir = tmp_path / "cluster"
    up = Up("3", "--data-dir", str(data_dir), "--base-port", str(base), "--session-timeout-ms", "2000",
            "--override", "replica.lag.time.max.ms=2000", "--broker-log-level", "INFO")
    pids: dict[str, int] = {}
    try:
        bootstrap = up.wait_for(r"^bootstrap: (\S+)$", 40).group(1)
        assert bootstrap == f"127.0.0.1:{base},127.0.0.1:{base + 1},127.0.0.1:{base + 2}"
        pids = up.child_pids()
        assert sorted(pids) == ["broker 0", "broker 1", "broker 2", "etcd"]
        for i in range(3):  # each broker dir has its PID
            assert int((data_dir / f"broker-{i}" / "broker.pid").read_text()) == pids[f"broker {i}"]
            assert (data_dir / f"broker-{i}" / "broker.log").is_file()
        assert all(alive(pid) for pid in pids.values())

        first = f"127.0.0.1:{base}"
        report = describe(first)
        assert [b["id"] for b in report["brokers"]] == [0, 1, 2]
        assert [b["port"] for b in report["brokers"]] == [base, base + 1, base + 2]
        assert report["controller"] in (0, 1, 2)
        text = ok(kavka("cluster", "describe", "-b", first))
        assert f"Controller: {report['controller']}" in text and "Brokers: 3" in text
        # DescribeCluster in cluster mode, as a real admin client sees it, from another broker.
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{base + 1}"})
        seen = admin.describe_cluster(request_timeout=10).result(15)
        assert sorted((n.id, n.port) for n in seen.nodes) == [(i, base + i) for i in range(3)]
        assert seen.controller.id == report["controller"]

        out = ok(kavka("topics", "create", "t", "--partitions", "3", "--replication-factor", "3", "-b", first))
        assert "Created topic t" in out
        report = wait_describe(first, lambda r: any(t["name"] == "t" for t in r["topics"]), 10, "topic t")
        (t,) = [t for t in report["topics"] if t["name"] == "t"]
        assert (t["partitions"], t["replication_factor"], t["under_replicated"], t["offline"]) == (3, 3, 0, 0)
        assert report["summary"]["under_replicated"] == 0
        only_t = describe(f"127.0.0.1:{base + 2}", "--topic", "t")
        assert [x["name"] for x in only_t["topics"]] == ["t"]
        values = [f"v{i}" for i in range(20)]
        ok(subprocess.run([sys.executable, "-m", "kavka", "produce", "t", "-b", first],
                          input="\n".join(values).encode(), capture_output=True, timeout=CLI_TIMEOUT))

        victim = pids["broker 1"]
        os.kill(victim, signal.SIGKILL)
        up.wait_for(r"^broker 1 \(pid \d+\) exited with signal SIGKILL", 10)
        assert not (data_dir / "broker-1" / "broker.pid").exists()
        report = wait_describe(
            first, lambda r: len(r["brokers"]) == 2 and r["summary"]["under_replicated"] >= 1, 20,
            "under-replicated partitions after broker 1 died")
        assert [b["id"] for b in report["brokers"]] == [0, 2]
        (t,) = [t for t in report["topics"] if t["name"] == "t"]
        assert t["under_replicated"] >= 1 and t["offline"] == 0
        for p in t["problems"]:
            assert p["state"] == "under-replicated" and 1 not in p["isr"] and p["offline_replicas"] == [1]
        # The printed bootstrap string works while one of its brokers is down (here the first tried).
        dead_first = f"127.0.0.1:{base + 1},127.0.0.1:{base},127.0.0.1:{base + 2}"
        deadline = time.monotonic() + 10
        while True:
            text = ok(kavka("cluster", "describe", "-b", dead_first))
            if "(DEGRADED)" in text or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert "under-replicated" in text and "(DEGRADED)" in text and "Brokers: 2" in text

        up.proc.send_signal(signal.SIGINT)
        assert up.proc.wait(30) == 0
        up.wait_for(r"^cluster stopped$", 5)
        assert not any(alive(pid) for pid in pids.values()), {k: alive(p) for k, p in pids.items()}
        assert not (data_dir / "cluster.pid").exists()
        for i in (0, 2):  # stopped by SIGTERM, cleanly (not by the kernel when `cluster up` exited)
            assert "shutting down" in (data_dir / f"broker-{i}" / "broker.log").read_text()

        # Again on the same directory: etcd's data (the topic) and the brokers' logs (records) are kept.
        up = Up("3", "--data-dir", str(data_dir), "--base-port", str(base), "--session-timeout-ms", "2000")
        up.wait_for(r"^bootstrap: ", 40)
        pids = up.child_pids()
        assert all("reused" in line for line in up.lines if re.match(r"(etcd|broker \d+): ", line))
        report = wait_describe(first, lambda r: any(t["name"] == "t" for t in r["topics"]), 10, "topic t again")
        assert len(report["brokers"]) == 3
        out = ok(kavka("consume", "t", "--from-beginning", "--timeout", "3", "-b", first))
        assert sorted(out.split()) == sorted(values)
        up.proc.send_signal(signal.SIGTERM)
        assert up.proc.wait(30) == 0
        assert not any(alive(pid) for pid in pids.values())
    finally:
        if up.proc.poll() is None:
            up.proc.kill()
            up.proc.wait(10)
        for pid in pids.values():  # only the children this test's `cluster up` started
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_cluster_describe_of_a_lone_broker(broker):
    ok(kavka("topics", "create", "solo", "--partitions", "2", "-b", broker.bootstrap_servers))
    report = describe(broker.bootstrap_servers)
    assert [(b["id"], b["port"]) for b in report["brokers"]] == [(0, broker.port)]
    assert report["controller"] == 0
    (t,) = [t for t in report["topics"] if t["name"] == "solo"]
    assert (t["partitions"], t["replication_factor"], t["problems"]) == (2, 1, [])
    text = ok(kavka("cluster", "describe", "-b", broker.bootstrap_servers))
    assert "Topic solo: 2 partitions, replication factor 1: all in sync" in text
    assert "0 under-replicated, 0 offline (healthy)" in text


def test_cluster_describe_unknown_topic_is_one_line(broker):
    result = kavka("cluster", "describe", "-b", broker.bootstrap_servers, "--topic", "nope")
    assert result.returncode == 1
    assert result.stderr.decode().strip().splitlines() == [
        "kavka cluster: UNKNOWN_TOPIC_OR_PARTITION: topic 'nope' does not exist"]


def test_cluster_up_port_in_use_is_one_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        result = kavka("cluster", "up", "2", "--data-dir", str(tmp_path / "c"), "--base-port", str(port))
    assert result.returncode == 1
    err = result.stderr.decode().strip().splitlines()
    assert len(err) == 1 and f"cannot listen on 127.0.0.1:{port} for broker 0" in err[0], err


def test_a_killed_cluster_up_leaves_no_process_behind(tmp_path):
    up = Up("1", "--data-dir", str(tmp_path / "c"), "--base-port", str(free_port_range(1)))
    pids: dict[str, int] = {}
    try:
        up.wait_for(r"^bootstrap: ", 40)
        pids = up.child_pids()
        assert sorted(pids) == ["broker 0", "etcd"] and all(alive(p) for p in pids.values())
        up.proc.kill()  # no chance to clean up: the kernel ends the children (PR_SET_PDEATHSIG)
        up.proc.wait(10)
        deadline = time.monotonic() + 10
        while any(alive(p) for p in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(p) for p in pids.values())
    finally:
        if up.proc.poll() is None:
            up.proc.kill()
            up.proc.wait(10)
        for pid in pids.values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
