from kavka.clock import ManualClock
from kavka.group.consumer_group import ConsumerGroup, range_assign, uniform_assign

P = {"t": 4}


def test_assignors_cover_all_partitions():
    members = {"a": {"t"}, "b": {"t"}, "c": {"t"}}
    for fn in (uniform_assign, range_assign):
        got = fn(members, P)
        assert sorted(p for tp in got.values() for p in tp.get("t", ())) == [0, 1, 2, 3]
    assert range_assign(members, P)["a"]["t"] == frozenset({0, 1})


def test_join_share_revoke_leave():
    clock = ManualClock()
    now = clock.now_ms()
    g = ConsumerGroup("g")
    ea, a = g.heartbeat("a", 0, {"t"}, {}, P, now)
    assert a == {"t": frozenset(range(4))} and ea == 1
    g.heartbeat("a", ea, None, a, P, now)
    eb, b = g.heartbeat("b", 0, {"t"}, {}, P, now)
    assert b == {} and eb == 0            # a still owns everything
    ea2, a2 = g.heartbeat("a", ea, None, a, P, now)
    assert ea2 == ea and len(a2["t"]) == 2  # told to revoke first
    ea3, a3 = g.heartbeat("a", ea2, None, a2, P, now)
    assert ea3 == g.group_epoch
    eb, b = g.heartbeat("b", eb, None, {}, P, now)
    assert eb == g.group_epoch and b["t"] | a3["t"] == frozenset(range(4))
    g.heartbeat("b", eb, None, b, P, now)
    assert g.heartbeat("b", -1, None, None, P, now) == (-1, {})
    ea4, a4 = g.heartbeat("a", ea3, None, a3, P, now)
    assert a4 == {"t": frozenset(range(4))} and ea4 == g.group_epoch


def test_session_expiry():
    g = ConsumerGroup("g")
    g.heartbeat("a", 0, {"t"}, {}, P, 0)
    assert g.expire(44_999, P) == []
    assert g.expire(45_000, P) == ["a"] and not g.members
