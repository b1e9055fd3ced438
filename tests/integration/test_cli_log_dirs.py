"""`kavka log-dirs describe` as a user runs it: a subprocess against an in-process broker,
its sizes checked against the segment files on disk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TIMEOUT = 60


def kavka(broker, *args: str, input: str | None = None):
    environment = dict(os.environ, KAVKA_BOOTSTRAP=broker.bootstrap_servers)
    return subprocess.run([sys.executable, "-m", "kavka", *args], input=input, capture_output=True, text=True,
                          env=environment, timeout=TIMEOUT)


def ok(result) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def on_disk(broker, topic: str, partition: int) -> int:
    return sum(f.stat().st_size for f in (Path(broker.data_dir) / f"{topic}-{partition}").glob("*.log"))


def parse(out: str) -> tuple[list[str], dict[tuple[str, int], tuple[int, int]]]:
    """(the log-dir lines, {(topic, partition): (size, lag)}) of the command's output."""
    dirs, rows = [], {}
    for line in out.splitlines():
        fields = line.split()
        if fields[0] == "broker":
            dirs.append(line)
        elif fields[0] != "TOPIC" and line != "(no partitions)":
            topic, partition, size, lag = fields
            rows[(topic, int(partition))] = (int(size), int(lag))
    return dirs, rows


@pytest.fixture
def loaded(broker):
    ok(kavka(broker, "topics", "create", "big", "--partitions", "1"))
    ok(kavka(broker, "topics", "create", "small", "--partitions", "2"))
    ok(kavka(broker, "produce", "big", input="".join(f"record {i} {'x' * 200}\n" for i in range(100))))
    ok(kavka(broker, "produce", "small", "--partition", "1", input="one\n"))
    return broker


def test_describe_every_partition(loaded):
    dirs, rows = parse(ok(kavka(loaded, "log-dirs", "describe")))
    (line,) = dirs
    assert line.startswith(f"broker 0  {os.path.abspath(loaded.data_dir)}  ") and " usable of " in line
    assert rows[("big", 0)] == (on_disk(loaded, "big", 0), 0)
    assert rows[("big", 0)][0] > 100 * 200
    assert rows[("small", 0)] == (0, 0)
    assert rows[("small", 1)] == (on_disk(loaded, "small", 1), 0) and rows[("small", 1)][0] > 0


def test_describe_one_topic(loaded):
    _, rows = parse(ok(kavka(loaded, "log-dirs", "describe", "--topic", "small")))
    assert set(rows) == {("small", 0), ("small", 1)}


def test_an_unknown_topic_is_one_line_error(loaded):
    result = kavka(loaded, "log-dirs", "describe", "--topic", "nope")
    assert result.returncode == 1
    assert result.stderr.strip() == "kavka log-dirs: UNKNOWN_TOPIC_OR_PARTITION: topic 'nope' does not exist"
