"""kavka.cli.reassign_plan: kafka-reassign-partitions' JSON plans, and the even spread
``kavka cluster rebalance`` plans (how many replicas move, where they go, who leads)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from kavka.cli.reassign_plan import balance, loads, parse_ids, parse_plan, plan_json
from kavka.client_session import ToolError


def test_a_kafka_plan_round_trips():
    text = json.dumps({"version": 1, "partitions": [
        {"topic": "a", "partition": 1, "replicas": [4, 2, 3], "log_dirs": ["any", "any", "any"]},
        {"topic": "a", "partition": 0, "replicas": [2, 3, 4]}]})
    plan = parse_plan(text, "plan.json")
    assert plan == {("a", 1): [4, 2, 3], ("a", 0): [2, 3, 4]}
    assert parse_plan(plan_json(plan), "again") == plan
    assert json.loads(plan_json(plan))["partitions"][0] == {"topic": "a", "partition": 0, "replicas": [2, 3, 4]}


@pytest.mark.parametrize("text, wanted", [
    ("{", "is not JSON"),
    ('{"version":1}', '"partitions"'),
    ('{"version":2,"partitions":[]}', "version 2"),
    ('{"partitions":[{"partition":0,"replicas":[1]}]}', "partitions[0] has no topic"),
    ('{"partitions":[{"topic":"a","partition":-1,"replicas":[1]}]}', "no partition number"),
    ('{"partitions":[{"topic":"a","partition":0,"replicas":"1,2"}]}', "list of broker ids"),
    ('{"partitions":[{"topic":"a","partition":0,"replicas":[1],"log_dirs":["/d"]}]}', "log_dirs"),
    ('{"partitions":[{"topic":"a","partition":0,"replicas":[1]},{"topic":"a","partition":0,"replicas":[2]}]}',
     "a-0 is listed twice"),
])
def test_a_bad_plan_is_one_line_naming_the_problem(text, wanted):
    with pytest.raises(ToolError) as caught:
        parse_plan(text, "p.json")
    assert wanted in str(caught.value) and "\n" not in str(caught.value)


def test_broker_ids():
    assert parse_ids("1,2, 4", "--replicas") == [1, 2, 4]
    for bad in ("1,x", ",", ""):
        with pytest.raises(ToolError, match="--replicas"):
            parse_ids(bad, "--replicas")


def _spread(assignment, brokers):
    held = Counter(b for r in assignment.values() for b in r)
    led = Counter(r[0] for r in assignment.values())
    return [held[b] for b in brokers], [led[b] for b in brokers]


def test_a_new_empty_broker_gets_its_share_with_few_moves():
    current = {("t", p): [(p + i) % 3 + 1 for i in range(3)] for p in range(8)}   # 24 replicas on 1-3
    plan = balance(current, [1, 2, 3, 4])
    after = {**current, **plan}
    held, led = _spread(after, [1, 2, 3, 4])
    assert held == [6, 6, 6, 6] and max(led) - min(led) <= 1
    assert all(len(set(r)) == 3 for r in after.values())
    moved = sum(len(set(r) - set(current[tp])) for tp, r in plan.items())
    assert moved == 6                                   # exactly broker 4's share moves


def test_a_broker_left_out_is_drained():
    current = {("t", p): [(p + i) % 4 + 1 for i in range(3)] for p in range(4)}
    plan = balance(current, [2, 3, 4])
    after = {**current, **plan}
    assert all(1 not in r for r in after.values())
    held, led = _spread(after, [2, 3, 4])
    assert held == [4, 4, 4] and max(led) - min(led) <= 1
    assert all(tp in plan for tp, r in current.items() if 1 in r)


def test_a_balanced_assignment_moves_nothing():
    current = {("t", p): [(p + i) % 3 + 1 for i in range(2)] for p in range(6)}
    assert balance(current, [1, 2, 3]) == {}


def test_uneven_leaders_only_reorder_replicas():
    current = {("t", p): [1, 2, 3] for p in range(3)}
    plan = balance(current, [1, 2, 3])
    assert all(sorted(r) == [1, 2, 3] for r in plan.values())
    assert _spread({**current, **plan}, [1, 2, 3])[1] == [1, 1, 1]


def test_more_replicas_than_brokers_is_refused():
    with pytest.raises(ToolError, match="t-0 has 3 replicas but only 2 brokers"):
        balance({("t", 0): [1, 2, 3]}, [1, 2])


def test_loads_count_replicas_and_preferred_leaders():
    assert loads({("t", 0): [1, 2], ("t", 1): [2, 3]}, [1, 2, 3, 4]) == {
        1: (1, 1), 2: (2, 1), 3: (1, 0), 4: (0, 0)}
