"""``kavka cluster elect-leaders`` against a lone broker, run in process: one line per
partition, exit status 1 only when an election failed."""

from __future__ import annotations

import json

import pytest

from kavka.cli.main import main


def kavka(capsys, broker, *args: str) -> tuple[int, list[str], str]:
    """(exit status, stdout lines, stderr) of one command line."""
    status = main(["cluster", "elect-leaders", "-b", broker.bootstrap_servers, *args])
    out, err = capsys.readouterr()
    return status, out.splitlines(), err


@pytest.fixture
def broker(kavka_broker, capsys):
    assert main(["topics", "create", "t", "--partitions", "3", "-b", kavka_broker.bootstrap_servers]) == 0
    capsys.readouterr()
    return kavka_broker


def test_every_partition_of_a_topic_needs_no_election(broker, capsys):
    assert kavka(capsys, broker, "--topic", "t") == (
        0, ["t-0: no election needed", "t-1: no election needed", "t-2: no election needed"], "")
    assert kavka(capsys, broker, "--topic", "t", "--partition", "1", "--election-type", "UNCLEAN") == (
        0, ["t-1: no election needed"], "")
    assert kavka(capsys, broker, "--all-topic-partitions", "--type", "unclean") == (0, ["No election was needed."], "")


def test_all_partitions_and_a_json_file(broker, capsys, tmp_path):
    assert kavka(capsys, broker, "--all-topic-partitions") == (0, ["No election was needed."], "")
    wanted = tmp_path / "elect.json"
    wanted.write_text(json.dumps({"partitions": [{"topic": "t", "partition": 2}, {"topic": "t", "partition": 0}]}))
    assert kavka(capsys, broker, "--path-to-json-file", str(wanted)) == (
        0, ["t-0: no election needed", "t-2: no election needed"], "")


def test_a_failed_election_is_its_partition_line_and_exit_status_1(broker, capsys):
    status, lines, err = kavka(capsys, broker, "--topic", "t", "--partition", "7")
    assert status == 1
    assert lines == ["t-7: UNKNOWN_TOPIC_OR_PARTITION: The partition t-7 does not exist."]
    assert err == "kavka cluster: 1 of 1 elections failed\n"


@pytest.mark.parametrize("args, message", [
    (["--topic", "nope"], "UNKNOWN_TOPIC_OR_PARTITION: topic 'nope' does not exist"),
    (["--all-topic-partitions", "--partition", "1"], "--partition needs --topic"),
])
def test_usage_errors_are_one_line(broker, capsys, args, message):
    assert kavka(capsys, broker, *args) == (1, [], f"kavka cluster: {message}\n")


def test_a_bad_json_file(broker, capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"partitions": [{"topic": "t"}]}')
    status, lines, err = kavka(capsys, broker, "--path-to-json-file", str(bad))
    assert (status, lines) == (1, []) and err.startswith(f"kavka cluster: {bad}: expected")
