"""Reassignment plans for ``kavka cluster reassign`` and ``kavka cluster rebalance``; pure.

A plan maps (topic, partition) to its target replicas, first the preferred leader.  It is
read from and written as kafka-reassign-partitions' JSON
(``{"version":1,"partitions":[{"topic":..,"partition":..,"replicas":[..]}]}``, an optional
``log_dirs`` of ``"any"`` only: kavka has one log directory per broker).

:func:`balance` spreads replicas evenly over a set of brokers while moving as few as it
can: replicas on brokers outside the set move first, then one replica at a time from the
most to the least loaded broker until the counts differ by at most one, then preferred
leaders (first replicas) are evened out by reordering replicas within a partition, which
moves no data.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Iterable, Mapping

from kavka.client_session import ToolError

Partition = tuple[str, int]
Plan = dict[Partition, list[int]]


def parse_plan(text: str, source: str) -> Plan:
    """A kafka-reassign-partitions JSON plan; ToolError naming what is wrong."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ToolError(f"{source} is not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("partitions"), list):
        raise ToolError(f'{source} wants {{"version":1,"partitions":[{{"topic":..,"partition":..,"replicas":[..]}}]}}')
    if document.get("version", 1) != 1:
        raise ToolError(f"{source}: version {document.get('version')!r} is not supported (only 1)")
    plan: Plan = {}
    for i, entry in enumerate(document["partitions"]):
        where = f"{source}: partitions[{i}]"
        if not isinstance(entry, dict):
            raise ToolError(f"{where} is not an object")
        topic, partition, replicas = entry.get("topic"), entry.get("partition"), entry.get("replicas")
        if not isinstance(topic, str) or not topic:
            raise ToolError(f"{where} has no topic")
        if not _is_int(partition) or partition < 0:
            raise ToolError(f"{where} has no partition number")
        if not isinstance(replicas, list) or not all(_is_int(r) for r in replicas):
            raise ToolError(f"{where} wants replicas as a list of broker ids")
        if any(d != "any" for d in entry.get("log_dirs", [])):
            raise ToolError(f"{where}: log_dirs other than \"any\" are not supported (one log dir per broker)")
        if (topic, partition) in plan:
            raise ToolError(f"{where}: {topic}-{partition} is listed twice")
        plan[(topic, partition)] = list(replicas)
    return plan


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def plan_json(plan: Mapping[Partition, Iterable[int]]) -> str:
    """The plan in kafka-reassign-partitions' format, one partition a line, sorted."""
    entries = [json.dumps({"topic": t, "partition": p, "replicas": list(r)}) for (t, p), r in sorted(plan.items())]
    return '{"version":1,"partitions":[' + ",\n".join(entries) + "]}"


def parse_ids(text: str, option: str) -> list[int]:
    try:
        ids = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ToolError(f"{option} wants broker ids separated by commas, e.g. 1,2,4, not {text!r}") from None
    if not ids:
        raise ToolError(f"{option} names no broker")
    return ids


# -- balancing --------------------------------------------------------------------------------

def balance(current: Mapping[Partition, list[int]], brokers: Iterable[int]) -> Plan:
    """The partitions whose replicas change, each with its new replicas, so that every broker
    of ``brokers`` holds as many replicas (and leads as many partitions) as another, give or
    take one."""
    brokers = sorted(set(brokers))
    for tp, replicas in sorted(current.items()):
        if len(replicas) > len(brokers):
            raise ToolError(f"{tp[0]}-{tp[1]} has {len(replicas)} replicas but only {len(brokers)} brokers "
                            f"are to hold them")
    target = {tp: list(r) for tp, r in current.items()}
    load = Counter({b: 0 for b in brokers})
    load.update(b for r in target.values() for b in r if b in load)
    _evacuate(target, load)
    _even_out(target, load)
    _even_out_leaders(target, brokers)
    return {tp: r for tp, r in sorted(target.items()) if r != list(current[tp])}


def _evacuate(target: Plan, load: Counter) -> None:
    """Each replica on a broker outside the set goes, in its place, to the least loaded
    broker that does not hold the partition yet."""
    for tp in sorted(target):
        replicas = target[tp]
        for i, b in enumerate(replicas):
            if b not in load:
                chosen = min((x for x in load if x not in replicas), key=lambda x: (load[x], x))
                replicas[i] = chosen
                load[chosen] += 1


def _even_out(target: Plan, load: Counter) -> None:
    """Move one replica at a time from a broker above the mean to one below it (a follower
    rather than a leader where one can), until no two brokers differ by more than one."""
    for _ in range(sum(load.values()) + 1):
        move = _best_move(target, load)
        if move is None:
            return
        tp, i, to = move
        load[target[tp][i]] -= 1
        load[to] += 1
        target[tp][i] = to


def _best_move(target: Plan, load: Counter) -> tuple[Partition, int, int] | None:
    by_load = sorted(load, key=lambda b: (load[b], b))
    for over in reversed(by_load):
        for under in by_load:
            if load[over] - load[under] <= 1:
                break
            held = [(tp, r.index(over)) for tp, r in sorted(target.items()) if over in r and under not in r]
            if held:
                tp, i = max(held, key=lambda h: (h[1] > 0, h[1]))   # a follower's place first
                return tp, i, under
    return None


def _even_out_leaders(target: Plan, brokers: list[int]) -> None:
    """Swap a partition's first replica with another of its replicas while that makes the
    preferred leaders more even."""
    leads = Counter({b: 0 for b in brokers})
    leads.update(r[0] for r in target.values() if r)
    for _ in range(len(target) + 1):
        swap = _best_swap(target, leads)
        if swap is None:
            return
        tp, i = swap
        replicas = target[tp]
        leads[replicas[0]] -= 1
        leads[replicas[i]] += 1
        replicas[0], replicas[i] = replicas[i], replicas[0]


def _best_swap(target: Plan, leads: Counter) -> tuple[Partition, int] | None:
    for leader in sorted(leads, key=lambda b: (-leads[b], b)):
        for tp, replicas in sorted(target.items()):
            if not replicas or replicas[0] != leader:
                continue
            others = [(leads[b], b, i) for i, b in enumerate(replicas) if i > 0 and leads[b] < leads[leader] - 1]
            if others:
                return tp, min(others)[2]
    return None


def loads(assignment: Mapping[Partition, list[int]], brokers: Iterable[int]) -> dict[int, tuple[int, int]]:
    """broker -> (replicas held, partitions preferred to lead)."""
    held = Counter(b for r in assignment.values() for b in r)
    led = Counter(r[0] for r in assignment.values() if r)
    return {b: (held[b], led[b]) for b in sorted(set(brokers) | set(held))}
