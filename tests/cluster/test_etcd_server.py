"""The local etcd launcher: health, stop by PID, pause/resume, a missing binary."""

from __future__ import annotations

import os
import urllib.request

import pytest

from kavka.cluster.etcd_server import EtcdNotInstalled, EtcdServer, etcd_binary


def _alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_shared_server_is_healthy_on_loopback(etcd):
    assert etcd.endpoint.startswith("127.0.0.1:")
    with urllib.request.urlopen(etcd.client_url + "/health", timeout=2) as resp:
        assert b'"true"' in resp.read()


def test_start_and_stop_by_pid(tmp_path):
    server = EtcdServer(tmp_path / "e").start()
    pid = server.pid
    assert _alive(pid)
    assert (tmp_path / "e" / "etcd.log").exists()
    server.stop()
    assert not _alive(pid)
    assert (tmp_path / "e").exists()  # a caller-given data dir is kept


def test_own_temp_dir_is_removed(tmp_path):
    with EtcdServer() as server:
        data_dir = server.data_dir
        assert data_dir.exists()
    assert not data_dir.exists()


def test_missing_binary_fails_loudly(monkeypatch, tmp_path):
    monkeypatch.setenv("KAVKA_ETCD_BIN", str(tmp_path / "nope"))
    with pytest.raises(EtcdNotInstalled):
        etcd_binary()
    with pytest.raises(EtcdNotInstalled):
        EtcdServer(tmp_path / "e").start()


def test_etcd_dies_with_its_parent(tmp_path):
    """A test run killed before its teardown must not leave etcd running."""
    import subprocess
    import sys
    import time
    code = ("import sys, time; from kavka.cluster.etcd_server import EtcdServer; "
            f"s = EtcdServer({str(tmp_path / 'e')!r}).start(); print(s.pid, flush=True); "
            "time.sleep(60)")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        pid = int(parent.stdout.readline())
        assert _alive(pid)
    finally:
        parent.kill()
        parent.wait(5)
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
