"""State rebuilt from __consumer_offsets equals live state (one code path: replay)."""

from __future__ import annotations

import random

import pytest
from group_helpers import Harness, subscription

from kavka.group.log_format import GroupKey, OffsetKey
from kavka.protocol.errors import ErrorCode as E


def assert_rebuilt_equals_live(h: Harness) -> None:
    assert h.rebuilt().snapshot() == h.coordinator.snapshot()


def test_scenario_of_every_kind_of_record(h):
    ids = h.stable_group("a", "b", protocols=(("range", subscription("t", "u")),))
    assert_rebuilt_equals_live(h)
    h.commit(generation=2, member_id=ids["a"], offsets=[("t", 0, 10), ("u", 1, 4)], metadata="m")
    h.commit(group="simple", offsets=[("t", 0, 3)])
    assert_rebuilt_equals_live(h)
    reply = h.join(instance=None, client="c")  # a pending member: in memory only
    assert reply.error == E.member_id_required
    h.leave((reply.member_id, None))
    h.leave((ids["b"], None))
    h.answer(h.join(ids["a"], client="a", protocols=(("range", subscription("t", "u")),)))
    h.sync(ids["a"], 3, assignments={ids["a"]: b"all"})
    assert h.state() == "Stable"
    assert_rebuilt_equals_live(h)
    h.coordinator.delete_offsets("simple", [("t", 0)])
    h.coordinator.delete_groups(["simple"])
    h.leave((ids["a"], None))
    assert h.state() == "Empty"
    assert_rebuilt_equals_live(h)


def test_loaded_members_expire_unless_they_come_back(h):
    ids = h.stable_group("a", "b")
    loaded = h.rebuilt()
    group = loaded.groups["g"]
    assert group.state.value == "Stable" and group.generation == 2 and set(group.members) == set(ids.values())
    assert group.members[ids["b"]].assignment == b"assignment-b"
    h.clock.advance(5_000)
    loaded.heartbeat("g", ids["a"], None, 2)   # a came back after the restart, b did not
    h.clock.advance(5_001)
    loaded.tick()
    assert loaded.groups["g"].state.value == "PreparingRebalance" and set(loaded.groups["g"].members) == {ids["a"]}
    h.clock.advance(30_000)
    loaded.tick()
    assert loaded.groups["g"].state.value == "Empty" and loaded.groups["g"].generation == 3


def test_tombstones(h):
    h.commit(group="s", offsets=[("t", 0, 1)])
    h.journal.append("s", [(OffsetKey("s", "t", 0), None), (GroupKey("s"), None)])
    loaded = h.rebuilt()
    assert loaded.groups == {} and loaded.offsets.snapshot() == {}


@pytest.mark.parametrize("seed", range(8))
def test_random_operations(seed):
    """Random joins, leaves, restarts, commits and time; compare whenever every group is at rest."""
    rng = random.Random(seed)
    h = Harness(retention_ms=600_000, retention_check_interval_ms=60_000)
    members: dict[str, list[str]] = {"g1": [], "g2": []}
    for step in range(40):
        group = rng.choice(["g1", "g2"])
        action = rng.choice(["grow", "shrink", "commit", "simple", "time"])
        if action == "grow" and len(members[group]) < 4:
            names = members[group] + [f"m{step}"]
            members[group] = list(h.stable_group(*names, group=group).keys()) if not members[group] else \
                _grow(h, group, names)
        elif action == "shrink" and members[group]:
            members[group] = _shrink(h, group, members[group], rng)
        elif action == "commit" and members[group]:
            g = h.group(group)
            leader = g.leader_id
            h.commit(group=group, generation=g.generation, member_id=leader,
                     offsets=[("t", rng.randrange(4), rng.randrange(1000))], metadata=f"s{step}")
        elif action == "simple":
            h.commit(group="solo", offsets=[("t", rng.randrange(4), step)])
        elif action == "time":
            h.clock.advance(rng.choice([1_000, 60_000]))
            _keep_alive(h, members)
            h._settle(h.coordinator.tick())
        assert_rebuilt_equals_live(h)


def _grow(h, group, names):
    """Rebuild the group with one more member (everyone rejoins, then syncs)."""
    for member_id in list(h.group(group).members):
        h.leave((member_id, None), group=group)
    return list(h.stable_group(*names, group=group).keys())


def _shrink(h, group, names, rng):
    g = h.group(group)
    gone = rng.choice(list(g.members))
    h.leave((gone, None), group=group)
    left = list(g.members)
    if not left:
        return []
    parked = {mid: h.join(mid, group) for mid in left}
    replies = {mid: h.answer(p) for mid, p in parked.items()}
    leader = next(r for r in replies.values() if r.leader == r.member_id)
    for mid, reply in replies.items():
        h.sync(mid, reply.generation, group, {m: b"x" for m in left} if reply is leader else None)
    assert h.group(group).state.value == "Stable"
    return names[: len(left)]


def _keep_alive(h, members):
    for group in members:
        g = h.group(group)
        if g is not None:
            for member_id in g.members:
                h.heartbeat(member_id, g.generation, group)


def test_partitions_unload_and_load_as_leadership_moves(h):
    """In a cluster the coordinator holds only the groups of the partitions it leads."""
    from kavka.group.log_format import partition_for
    names = [f"g{i}" for i in range(12)]
    for name in names:
        h.commit(group=name, offsets=[("t", 0, len(name))])
    ids = h.stable_group("a", "b", group="g0", protocols=(("range", subscription("t")),))
    live = h.coordinator.snapshot()
    index = partition_for("g0", h.journal.partitions)
    moved = [n for n in names if partition_for(n, h.journal.partitions) == index]
    assert 0 < len(moved) < len(names)
    parked = h.join(ids["a"], "g0", protocols=(("range", subscription("t", "u")),))  # waits for b
    h._settle(h.coordinator.unload_partition(index))
    assert h.answer(parked).error == E.not_coordinator
    assert not any(n in h.coordinator.groups for n in moved)
    assert all(h.coordinator.offsets.has_offsets(n) for n in names if n not in moved)
    h.coordinator.load_partition(index)
    reloaded = h.coordinator.snapshot()
    assert reloaded["offsets"] == live["offsets"]
    assert reloaded["groups"]["g0"]["generation"] == live["groups"]["g0"]["generation"]
