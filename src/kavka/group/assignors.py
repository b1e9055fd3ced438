"""Server-side assignors of consumer-protocol (KIP-848) groups: ``uniform`` and ``range``.

An assignor maps members (with the topics each subscribes to) and the topics'
partition counts to a target assignment: member -> {topic: partitions}.  Both
cover every partition of every subscribed topic exactly once.

``uniform`` balances the number of partitions per member and is sticky: it
starts from the previous target, keeps what each member may keep without
overloading it, and hands out only the rest, so adding or removing a member
moves as few partitions as possible (each move costs a revocation round trip
in KIP-848).  With every member on the same topics the counts differ by at
most one.  ``range`` gives each member contiguous partition ranges per topic
(co-partitioned topics line up), and is not sticky.
"""

from __future__ import annotations

from typing import Callable, Mapping

Target = dict[str, dict[str, frozenset[int]]]
Assignor = Callable[[Mapping[str, set[str]], Mapping[str, int], Mapping[str, Mapping[str, frozenset[int]]]], Target]


def uniform(members: Mapping[str, set[str]], partitions: Mapping[str, int],
            previous: Mapping[str, Mapping[str, frozenset[int]]] | None = None) -> Target:
    previous = previous or {}
    wanted = [(t, p) for t in sorted(partitions) if any(t in subs for subs in members.values())
              for p in range(partitions[t])]
    owners: dict[tuple[str, int], str] = {}
    if members:
        base, extra = divmod(len(wanted), len(members))
        # Keep previous partitions that are still valid, up to base+1 each ...
        kept: dict[str, list[tuple[str, int]]] = {}
        valid = set(wanted)
        for m in sorted(members):
            mine = sorted((t, p) for t, ps in previous.get(m, {}).items() if t in members[m]
                          for p in ps if (t, p) in valid and (t, p) not in owners)
            kept[m] = mine[: base + 1]
            for tp in kept[m]:
                owners[tp] = m
        # ... and only ``extra`` members may stay at base+1.
        over = [m for m in sorted(members, key=lambda m: (-len(kept[m]), m)) if len(kept[m]) > base]
        for m in over[extra:]:
            for tp in kept[m][base:]:
                del owners[tp]
            kept[m] = kept[m][:base]
        load = {m: len(kept[m]) for m in members}
        for tp in wanted:
            if tp in owners:
                continue
            eligible = [m for m in members if tp[0] in members[m]]
            m = min(eligible, key=lambda x: (load[x], x))
            owners[tp] = m
            load[m] += 1
    return _collect(members, owners)


def range_(members: Mapping[str, set[str]], partitions: Mapping[str, int],
           previous: Mapping[str, Mapping[str, frozenset[int]]] | None = None) -> Target:
    owners: dict[tuple[str, int], str] = {}
    for topic in sorted(partitions):
        subs = sorted(m for m, topics in members.items() if topic in topics)
        if not subs:
            continue
        size, extra = divmod(partitions[topic], len(subs))
        start = 0
        for i, m in enumerate(subs):
            n = size + (1 if i < extra else 0)
            for p in range(start, start + n):
                owners[(topic, p)] = m
            start += n
    return _collect(members, owners)


def _collect(members: Mapping[str, set[str]], owners: Mapping[tuple[str, int], str]) -> Target:
    out: dict[str, dict[str, set[int]]] = {m: {} for m in members}
    for (topic, p), m in owners.items():
        out[m].setdefault(topic, set()).add(p)
    return {m: {t: frozenset(ps) for t, ps in tps.items()} for m, tps in out.items()}


ASSIGNORS: dict[str, Assignor] = {"uniform": uniform, "range": range_}
DEFAULT = "uniform"
