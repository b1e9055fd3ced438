"""`kavka serve` as a user runs it: settings, clear one-line errors, clean shutdown."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time

import pytest
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic

from kavka.client import Client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "kavka", "serve", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_to_exit(*args: str) -> tuple[int, str]:
    proc = serve(*args)
    _out, err = proc.communicate(timeout=20)
    return proc.returncode, err


def wait_listening(port: int, proc: subprocess.Popen, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise AssertionError("broker did not listen in time")


def stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=20)
    return proc.returncode, err


def partitions_of(port: int, topic: str) -> int:
    with Client(f"127.0.0.1:{port}") as client:
        response = client.request(MetadataRequest(topics=(MetadataRequestTopic(name=topic, topic_id=None),),
                                                  allow_auto_topic_creation=True,
                                                  include_topic_authorized_operations=False))
    return len(response.topics[0].partitions)


def test_properties_file_and_overrides_then_clean_shutdown(tmp_path):
    config = tmp_path / "server.properties"
    config.write_text("# like Kafka's\nnum.partitions=4\nlog.segment.bytes = 1048576\nsome.unknown.setting=1\n")
    port = free_port()
    proc = serve("--data-dir", str(tmp_path / "data"), "--listen", f"127.0.0.1:{port}",
                 "--config", str(config), "--override", "default.replication.factor=1", "--allow-unknown")
    wait_listening(port, proc)
    assert partitions_of(port, "from-file") == 4
    code, err = stop(proc)
    assert code == 0
    assert "kavka listening on 127.0.0.1:%d" % port in err
    assert "ignoring unknown setting some.unknown.setting" in err
    assert (tmp_path / "data" / ".kafka_cleanshutdown").exists()


def test_override_wins_over_file(tmp_path):
    config = tmp_path / "server.properties"
    config.write_text("num.partitions=4\n")
    port = free_port()
    proc = serve("--data-dir", str(tmp_path / "data"), "--listen", f"127.0.0.1:{port}",
                 "--config", str(config), "--override", "num.partitions=2")
    wait_listening(port, proc)
    assert partitions_of(port, "t") == 2
    assert stop(proc)[0] == 0


@pytest.mark.parametrize("args, message", [
    (["--override", "num.partitions=abc"], "bad setting: num.partitions: 'abc' is not a whole number"),
    (["--override", "log.message.timestamp.type=Wrong"], "bad setting: log.message.timestamp.type"),
    (["--override", "novalue"], "--override wants NAME=VALUE"),
    (["--listen", "nohost"], "--listen must be HOST:PORT"),
    (["--config", "/nonexistent/server.properties"], "cannot read config file"),
])
def test_bad_settings_are_one_clear_line(tmp_path, args, message):
    code, err = run_to_exit("--data-dir", str(tmp_path / "d"), "--listen", f"127.0.0.1:{free_port()}", *args)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err


def test_busy_port(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        code, err = run_to_exit("--data-dir", str(tmp_path / "d"), "--listen", f"127.0.0.1:{s.getsockname()[1]}")
    assert code == 1
    assert "already in use" in err.strip().splitlines()[-1]


def test_unusable_data_dir(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, err = run_to_exit("--data-dir", str(blocker / "data"), "--listen", f"127.0.0.1:{free_port()}")
    assert code == 1
    assert "is not a writable directory" in err.strip().splitlines()[-1]


def test_second_broker_on_same_data_dir_is_refused(tmp_path):
    port = free_port()
    first = serve("--data-dir", str(tmp_path / "d"), "--listen", f"127.0.0.1:{port}")
    wait_listening(port, first)
    try:
        code, err = run_to_exit("--data-dir", str(tmp_path / "d"), "--listen", f"127.0.0.1:{free_port()}")
        assert code == 1
        assert "locked" in err.strip().splitlines()[-1]
    finally:
        assert stop(first)[0] == 0
