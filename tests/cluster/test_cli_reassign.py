"""``kavka cluster reassign`` and ``kavka cluster rebalance`` as a user runs them.

Subprocesses of the command line against three brokers on etcd that a fourth, empty one has
joined: one partition moves onto broker 4 and the command waits for it; a JSON plan moves
two; a move that cannot finish (onto a registered broker that never fetches) prints progress
lines, times out with status 1, is listed and cancelled; a refused target is one line and
status 1; rebalance --dry-run prints a plan and moves nothing, rebalance gives the new
broker its share, rebalance --brokers drains the broker left out, and a rebalance of
every topic (``__consumer_offsets`` too) keeps a group's committed offset.  What the commands
claim is checked against the cluster's metadata as a Kafka client reads it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewTopic

from admin_contract_helpers import (OFFSETS, admin, commit_offset, create, eventually, ready_everywhere,
                                    topic_metadata)
from admin_targets import register_fake_broker, revoke_lease
from cluster_helpers import run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CLI_TIMEOUT = 90
FAKE_BROKER = 9
FAKE_LEASE_S = 60


def kavka(target, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kavka", "cluster", *args, "-b", target.bootstrap(2, 3)],
                          capture_output=True, text=True, timeout=CLI_TIMEOUT, env=dict(os.environ, KAVKA_BOOTSTRAP=""))


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result.stdout


def replicas(target, topic: str) -> dict[int, list[int]]:
    return {i: list(p.replicas) for i, p in topic_metadata(target, 2, topic).partitions.items()}


def make_topic(target, name: str, layout: list[list[int]]) -> None:
    create(admin(target), NewTopic(name, len(layout), replica_assignment=layout))
    ready_everywhere(target, name, len(layout))


def test_one_partition_moves_onto_the_new_broker(four):
    make_topic(four, "cli-one", [[1, 2, 3]])
    out = ok(kavka(four, "reassign", "--topic", "cli-one", "--partition", "0", "--replicas", "4,2,3",
                   "--wait", "--timeout", "60"))
    rollback = out.split("Current partition replica assignment (a plan to roll back with):\n", 1)[1]
    assert json.JSONDecoder().raw_decode(rollback)[0] == {
        "version": 1, "partitions": [{"topic": "cli-one", "partition": 0, "replicas": [1, 2, 3]}]}
    assert "cli-one-0: 1,2,3 -> 4,2,3: started" in out
    assert re.search(r"\] all 1 reassignments done$", out.strip())
    assert replicas(four, "cli-one") == {0: [4, 2, 3]}
    assert ok(kavka(four, "reassign", "--list")).strip() == "No reassignment in progress."


def test_a_json_plan_moves_its_partitions(four, tmp_path):
    make_topic(four, "cli-plan", [[1, 2], [2, 3]])
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({"version": 1, "partitions": [
        {"topic": "cli-plan", "partition": 0, "replicas": [3, 4]},
        {"topic": "cli-plan", "partition": 1, "replicas": [4, 1], "log_dirs": ["any", "any"]}]}))
    out = ok(kavka(four, "reassign", "--plan", str(plan), "--wait", "--timeout", "60"))
    assert "cli-plan-0: 1,2 -> 3,4: started" in out and "cli-plan-1: 2,3 -> 4,1: started" in out
    assert "all 2 reassignments done" in out
    assert replicas(four, "cli-plan") == {0: [3, 4], 1: [4, 1]}


def test_a_stuck_move_shows_progress_times_out_and_is_cancelled(four):
    make_topic(four, "cli-stuck", [[1, 2, 3]])
    lease = run(register_fake_broker(four, FAKE_BROKER, FAKE_LEASE_S))
    try:
        eventually(lambda: all(FAKE_BROKER in b.node.view.brokers for b in four.brokers.values()), "the fake broker")
        waited = kavka(four, "reassign", "--topic", "cli-stuck", "--partition", "0", "--replicas", f"1,2,{FAKE_BROKER}",
                       "--wait", "--timeout", "2")
        assert waited.returncode == 1, (waited.stdout, waited.stderr)
        progress = re.findall(r"^\[\d+\.\d s\] 1 of 1 partitions reassigning: (.*)$", waited.stdout, re.M)
        assert progress and all(p.startswith(f"cli-stuck-0 (adding {FAKE_BROKER}, removing 3, isr ") for p in progress)
        assert re.search(r"still reassigning after 2 s: cli-stuck-0", waited.stdout)
        listed = ok(kavka(four, "reassign", "--list")).splitlines()
        assert listed[0].split() == ["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"]
        assert listed[1].split() == ["cli-stuck", "0", f"1,2,{FAKE_BROKER},3", str(FAKE_BROKER), "3"]
        assert ok(kavka(four, "reassign", "--list", "--topic", "cli-one")).strip() == "No reassignment in progress."
        unsure = kavka(four, "reassign", "--cancel", "--partition", "0")
        assert unsure.returncode == 1 and "--partition needs --topic" in unsure.stderr
        assert ok(kavka(four, "reassign", "--cancel", "--topic", "cli-stuck")).strip() == "cli-stuck-0: cancelled"
        assert ok(kavka(four, "reassign", "--list")).strip() == "No reassignment in progress."
        assert sorted(replicas(four, "cli-stuck")[0]) == [1, 2, 3]
        again = kavka(four, "reassign", "--cancel", "--topic", "cli-stuck", "--partition", "0")
        assert again.returncode == 1 and "cli-stuck-0: cancel refused: NO_REASSIGNMENT_IN_PROGRESS" in again.stdout
    finally:
        run(revoke_lease(four, lease))


def test_a_refused_target_is_one_line_and_status_1(four):
    make_topic(four, "cli-refused", [[1, 2]])
    result = kavka(four, "reassign", "--topic", "cli-refused", "--partition", "0", "--replicas", "1,42")
    assert result.returncode == 1
    assert "cli-refused-0: refused: INVALID_REPLICA_ASSIGNMENT" in result.stdout
    missing = kavka(four, "reassign", "--topic", "cli-refused", "--partition", "5", "--replicas", "1,2")
    assert missing.returncode == 1 and "cli-refused-5: refused: UNKNOWN_TOPIC_OR_PARTITION" in missing.stdout
    bad = kavka(four, "reassign", "--topic", "cli-refused", "--partition", "0", "--replicas", "1,x")
    assert bad.returncode == 1 and bad.stderr.strip().startswith("kavka cluster: --replicas wants broker ids")
    assert replicas(four, "cli-refused") == {0: [1, 2]}


def _spread(layout: dict[int, list[int]], brokers) -> tuple[list[int], list[int]]:
    held = Counter(b for r in layout.values() for b in r)
    led = Counter(r[0] for r in layout.values())
    return [held[b] for b in brokers], [led[b] for b in brokers]


def test_rebalance_gives_the_new_broker_its_share(four, tmp_path):
    layout = [[(p + i) % 3 + 1 for i in range(2)] for p in range(6)]   # 12 replicas on brokers 1-3
    make_topic(four, "cli-spread", layout)
    before = replicas(four, "cli-spread")
    saved = tmp_path / "plan.json"
    dry = ok(kavka(four, "rebalance", "--topic", "cli-spread", "--dry-run", "--output", str(saved)))
    assert dry.startswith("Plan: ") and "over brokers 1,2,3,4" in dry
    planned = {e["partition"]: e["replicas"] for e in json.loads(saved.read_text())["partitions"]}
    assert _spread({**before, **planned}, [1, 2, 3, 4])[0] == [3, 3, 3, 3]
    assert replicas(four, "cli-spread") == before
    assert ok(kavka(four, "reassign", "--list")).strip() == "No reassignment in progress."
    out = ok(kavka(four, "rebalance", "--topic", "cli-spread", "--wait", "--timeout", "60"))
    assert f"all {len(planned)} reassignments done" in out
    after = replicas(four, "cli-spread")
    assert after == {**before, **planned}
    held, led = _spread(after, [1, 2, 3, 4])
    assert held == [3, 3, 3, 3] and max(led) - min(led) <= 1
    again = ok(kavka(four, "rebalance", "--topic", "cli-spread", "--dry-run"))
    assert again.startswith("Nothing to move")


def test_rebalance_without_a_broker_drains_it(four):
    make_topic(four, "cli-drain", [[1, 2], [2, 1], [3, 1]])
    out = ok(kavka(four, "rebalance", "--topic", "cli-drain", "--brokers", "2,3,4", "--wait", "--timeout", "60"))
    assert "all 3 reassignments done" in out
    after = replicas(four, "cli-drain")
    assert all(1 not in r and len(set(r)) == 2 for r in after.values())
    assert _spread(after, [2, 3, 4])[0] == [2, 2, 2]
    refused = kavka(four, "rebalance", "--brokers", "2,7")
    assert refused.returncode == 1 and "broker 7 is not a live broker" in refused.stderr


def test_rebalance_of_every_topic_keeps_committed_offsets(four):
    make_topic(four, "cli-all", [[1, 2, 3], [1, 2, 3]])
    commit_offset(four, "cli-group", "cli-all", 42)
    out = ok(kavka(four, "rebalance", "--wait", "--timeout", "90"))
    assert OFFSETS in out and re.search(r"all \d+ reassignments done", out)
    everything = {}
    for name in admin(four).list_topics(timeout=10).topics:
        everything.update({(name, p): r for p, r in replicas(four, name).items()})
    held, led = _spread(dict(enumerate(everything.values())), [1, 2, 3, 4])
    assert max(held) - min(held) <= 1 and max(led) - min(led) <= 1, (held, led)
    consumer = Consumer({"bootstrap.servers": four.bootstrap(), "group.id": "cli-group"})
    try:
        committed = consumer.committed([TopicPartition("cli-all", 0)], timeout=15)
    finally:
        consumer.close()
    assert [(c.topic, c.offset) for c in committed] == [("cli-all", 42)]
