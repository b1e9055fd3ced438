"""Consumer-protocol (KIP-848) groups through the coordinator, on a ManualClock."""

from __future__ import annotations

import uuid

import pytest
from group_helpers import Harness
from hypothesis import given, settings
from hypothesis import strategies as st

from kavka.group.assignors import range_, uniform
from kavka.group.consumer_group import UNRELEASED, UNREVOKED, HeartbeatRequest, TopicMeta
from kavka.group.offsets import OffsetCommit
from kavka.protocol.errors import ErrorCode as E

REBALANCE = 20_000


class CH(Harness):
    """A harness with topics and a ConsumerGroupHeartbeat helper."""

    def __init__(self, **settings) -> None:
        super().__init__(consumer_session_timeout_ms=45_000, consumer_heartbeat_interval_ms=500, **settings)
        self.topics.update({"t": TopicMeta(uuid.uuid4(), 4), "u": TopicMeta(uuid.uuid4(), 2),
                            "__consumer_offsets": TopicMeta(uuid.uuid4(), 3, True)})

    def hb(self, member: str, epoch: int, topics=None, owned=None, *, group="g", version=1, instance=None,
           regex=None, assignor=None, rebalance=REBALANCE):
        if epoch == 0:
            owned = {} if owned is None else owned
            topics = ("t",) if topics is None and regex is None else topics
        request = HeartbeatRequest(group, member, epoch, instance, None, rebalance if epoch == 0 else -1,
                                   tuple(topics) if topics is not None else None, regex, assignor,
                                   None if owned is None else {t: frozenset(ps) for t, ps in owned.items()},
                                   "client-" + member, "/127.0.0.1")
        return self._settle(self.coordinator.consumer_heartbeat(request, version))

    def cgroup(self, group="g"):
        return self.coordinator.consumer_groups.get(group)

    def cstate(self, group="g"):
        return self.cgroup(group).state

    def join_stable(self, *members, topics=("t",)):
        """Members join one by one and heartbeat until nobody's assignment changes."""
        owned = {}
        epochs = {}
        for m in members:
            r = self.hb(m, 0, topics)
            assert r.error == E.none, r
            epochs[m], owned[m] = r.member_epoch, dict(r.assignment or {})
            self.settle(epochs, owned)
        return epochs, owned

    def settle(self, epochs, owned, rounds=10):
        for _ in range(rounds):
            changed = False
            for m in list(epochs):
                r = self.hb(m, epochs[m], owned=owned[m])
                assert r.error == E.none, r
                if r.assignment is not None and r.assignment != owned[m]:
                    owned[m] = dict(r.assignment)
                    changed = True
                if r.member_epoch != epochs[m]:
                    epochs[m] = r.member_epoch
                    changed = True
            if not changed:
                return
        raise AssertionError("did not converge")


@pytest.fixture
def c():
    return CH()


def all_partitions(owned):
    return sorted((t, p) for o in owned.values() for t, ps in o.items() for p in ps)


# -- assignors -----------------------------------------------------------------------------------

def test_range_assigns_contiguous_ranges():
    got = range_({"a": {"t"}, "b": {"t"}, "c": {"t"}}, {"t": 4})
    assert got == {"a": {"t": frozenset({0, 1})}, "b": {"t": frozenset({2})}, "c": {"t": frozenset({3})}}


@settings(max_examples=200, deadline=None)
@given(n_members=st.integers(1, 8), counts=st.lists(st.integers(1, 12), min_size=1, max_size=4),
       joiner=st.booleans())
def test_uniform_is_complete_balanced_and_sticky(n_members, counts, joiner):
    topics = {f"t{i}": n for i, n in enumerate(counts)}
    members = {f"m{i}": set(topics) for i in range(n_members)}
    first = uniform(members, topics)
    total = sum(counts)
    owned = sorted((t, p) for a in first.values() for t, ps in a.items() for p in ps)
    assert owned == sorted((t, p) for t, n in topics.items() for p in range(n))
    loads = [sum(len(ps) for ps in a.values()) for a in first.values()]
    assert max(loads) - min(loads) <= 1
    # One member more (or fewer): only the partitions needed for balance move.
    changed = dict(members)
    if joiner:
        changed["new"] = set(topics)
    elif n_members > 1:
        del changed["m0"]
    second = uniform(changed, topics, first)
    loads2 = [sum(len(ps) for ps in a.values()) for a in second.values()]
    assert sum(loads2) == total and max(loads2) - min(loads2) <= 1
    moved = sum(len(ps - first.get(m, {}).get(t, frozenset())) for m, a in second.items() for t, ps in a.items())
    assert moved <= -(-total // len(changed)) + (0 if joiner else max(loads))


# -- the heartbeat ---------------------------------------------------------------------------------

def test_first_member_gets_everything(c):
    r = c.hb("a", 0, ("t", "u"))
    assert (r.error, r.member_id, r.member_epoch) == (E.none, "a", 1)
    assert r.assignment == {"t": frozenset(range(4)), "u": frozenset({0, 1})}
    assert r.heartbeat_interval_ms == 500
    assert c.cstate() == "Stable"
    again = c.hb("a", 1, owned=r.assignment)
    assert again.member_epoch == 1 and again.assignment is None  # nothing changed: not sent


def test_partition_moves_only_after_its_owner_revoked_it(c):
    a = c.hb("a", 0)
    c.hb("a", 1, owned=a.assignment)
    b = c.hb("b", 0)
    assert b.member_epoch == 2 and b.assignment == {}          # a still owns everything
    assert c.cgroup().members["b"].state == UNRELEASED
    assert c.cstate() == "Reconciling"
    a2 = c.hb("a", 1, owned=a.assignment)
    assert a2.member_epoch == 1 and len(a2.assignment["t"]) == 2   # revoke first, epoch unchanged
    assert c.cgroup().members["a"].state == UNREVOKED
    assert c.hb("b", 2, owned={}).assignment is None            # still held by a
    a3 = c.hb("a", 1, owned=a2.assignment)                      # revocation acknowledged
    assert a3.member_epoch == 2 and a3.assignment == a2.assignment
    b2 = c.hb("b", 2, owned={})
    assert b2.assignment["t"] | a2.assignment["t"] == frozenset(range(4))
    assert not b2.assignment["t"] & a2.assignment["t"]
    c.hb("b", 2, owned=b2.assignment)
    assert c.cstate() == "Stable"


def test_three_members_own_every_partition_once_and_a_leaver_gives_them_back(c):
    epochs, owned = c.join_stable("a", "b", "c", topics=("t", "u"))
    assert all_partitions(owned) == [("t", p) for p in range(4)] + [("u", 0), ("u", 1)]
    assert sorted(sum(len(ps) for ps in o.values()) for o in owned.values()) == [2, 2, 2]
    r = c.hb("b", -1)
    assert (r.error, r.member_epoch) == (E.none, -1)
    del epochs["b"], owned["b"]
    c.settle(epochs, owned)
    assert all_partitions(owned) == [("t", p) for p in range(4)] + [("u", 0), ("u", 1)]
    assert c.cstate() == "Stable"


def test_session_timeout_removes_a_silent_member(c):
    epochs, owned = c.join_stable("a", "b")
    c.clock.advance(30_000)
    c.hb("a", epochs["a"], owned=owned["a"])
    c.advance(15_001)                         # b: 45 s without a heartbeat
    assert set(c.cgroup().members) == {"a"}
    del epochs["b"], owned["b"]
    c.settle(epochs, owned)
    assert owned["a"] == {"t": frozenset(range(4))}


def test_a_group_config_sets_that_groups_heartbeat_interval_and_session_timeout(c):
    c.coordinator.set_group_config("g", {"consumer_heartbeat_interval_ms": 3000, "consumer_session_timeout_ms": 10_000})
    epochs, owned = c.join_stable("a", "b")
    assert c.hb("a", epochs["a"], owned=owned["a"]).heartbeat_interval_ms == 3000
    assert c.hb("x", 0, group="other").heartbeat_interval_ms == 500   # the broker's, for another group
    c.clock.advance(6_000)
    c.hb("a", epochs["a"], owned=owned["a"])
    c.advance(4_001)                          # b: 10 s without a heartbeat
    assert set(c.cgroup().members) == {"a"}
    c.coordinator.set_group_config("g", {})
    assert c.hb("a", c.cgroup().members["a"].member_epoch).heartbeat_interval_ms == 500

def test_a_member_that_does_not_revoke_in_time_is_removed(c):
    a = c.hb("a", 0)
    c.hb("b", 0)
    c.hb("a", 1, owned=a.assignment)           # told to revoke; never acknowledges
    for _ in range(3):
        c.advance(REBALANCE // 4)
        c.hb("a", 1, owned=a.assignment)
        c.hb("b", 2, owned={})
    c.advance(REBALANCE // 4 + 1)
    assert set(c.cgroup().members) == {"b"}
    r = c.hb("b", c.cgroup().members["b"].member_epoch, owned={})
    assert r.assignment == {"t": frozenset(range(4))}
    assert c.hb("a", 1, owned=a.assignment).error == E.unknown_member_id


def test_member_epoch_errors(c):
    a = c.hb("a", 0)
    assert c.hb("x", 1).error == E.unknown_member_id
    assert c.hb("a", 5).error == E.fenced_member_epoch
    c.hb("b", 0)                                 # epoch 2; a revokes and moves to epoch 2
    a2 = c.hb("a", 1, owned=a.assignment)
    c.hb("a", 1, owned=a2.assignment)
    assert c.cgroup().members["a"].member_epoch == 2
    # The previous epoch with owned partitions inside the assignment: a lost response, accepted.
    lost = c.hb("a", 1, owned=a2.assignment)
    assert lost.error == E.none and lost.member_epoch == 2 and lost.assignment is not None
    assert c.hb("a", 1, owned=a.assignment).error == E.fenced_member_epoch   # owns more than assigned
    assert c.hb("a", 0).member_epoch == 2           # rejoin


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(member=""), E.invalid_request, "MemberId can't be empty."),
    (dict(group=" "), E.invalid_request, "GroupId can't be empty."),
    (dict(rebalance=-1), E.invalid_request, "RebalanceTimeoutMs must be provided in first request."),
    (dict(owned={"t": [0]}), E.invalid_request, "TopicPartitions must be empty when (re-)joining."),
    (dict(assignor="sticky"), E.unsupported_assignor, None),
    (dict(regex="(", topics=()), E.invalid_regular_expression, None),
])
def test_invalid_requests_change_nothing(c, kwargs, error, message):
    args = dict(member="a", epoch=0)
    args.update(kwargs)
    r = c.hb(args.pop("member"), args.pop("epoch"), **args)
    assert r.error == error
    if message:
        assert r.message == message
    assert not c.coordinator.consumer_groups and c.journal.count() == 0


def test_v0_member_without_id_gets_one_from_the_coordinator(c):
    r = c.hb("", 0, version=0)
    assert r.error == E.none and r.member_id and r.member_id in c.cgroup().members
    assert c.hb("", 3, version=0).error == E.invalid_request


def test_new_partitions_and_new_topics_bump_the_epoch(c):
    r = c.hb("a", 0, ("t", "later"))
    assert r.assignment == {"t": frozenset(range(4))}
    c.topics["t"] = TopicMeta(c.topics["t"].topic_id, 6)
    c.topics["later"] = TopicMeta(uuid.uuid4(), 1)
    r2 = c.hb("a", 1, owned=r.assignment)
    assert r2.member_epoch == 2
    assert r2.assignment == {"t": frozenset(range(6)), "later": frozenset({0})}


def test_regex_subscription_skips_internal_topics(c):
    r = c.hb("a", 0, topics=(), regex=".*")
    assert set(r.assignment) == {"t", "u"}


def test_range_assignor_on_request(c):
    c.hb("a", 0, assignor="range")
    assert c.cgroup().value.assignor == "range"


def test_static_member_restart_keeps_its_partitions_without_a_rebalance(c):
    a = c.hb("a", 0, instance="i-a")
    epochs, owned = {"a": a.member_epoch}, {"a": dict(a.assignment)}
    b = c.hb("b", 0, instance="i-b")
    epochs["b"], owned["b"] = b.member_epoch, dict(b.assignment)
    c.settle(epochs, owned)
    epoch_before = c.cgroup().value.group_epoch
    assert c.hb("b", -2, instance="i-b").member_epoch == -2
    assert c.hb("b2", 0, instance="i-a").error == E.unreleased_instance_id
    back = c.hb("b-restarted", 0, instance="i-b")
    assert back.error == E.none and back.member_epoch == epochs["b"]
    assert back.assignment == owned["b"]
    assert c.cgroup().value.group_epoch == epoch_before
    assert c.hb("b", epochs["b"], instance="i-b").error == E.fenced_instance_id


def test_static_member_that_does_not_come_back_expires(c):
    c.hb("a", 0, instance="i-a")
    c.hb("a", -2, instance="i-a")
    c.advance(45_001)
    assert not c.cgroup().members


# -- living together with classic groups and offsets -------------------------------------------------

def test_classic_and_consumer_groups_of_one_id(c):
    from group_helpers import subscription
    ids = c.stable_group("x", group="classic", protocols=(("range", subscription("t")),))
    r = c.hb("a", 0, group="classic")
    assert r.error == E.group_id_not_found and "not a consumer group" in r.message
    c.hb("a", 0, group="new")
    assert c.join("", "new").error == E.inconsistent_group_protocol
    c.hb("a", -1, group="new")
    assert c.join("", "new").error == E.member_id_required      # empty: becomes a classic group
    assert "new" not in c.coordinator.consumer_groups
    assert ids


def test_offset_commit_rules(c):
    a = c.hb("a", 0)
    commit = [OffsetCommit("t", 0, 7, -1, "")]
    ok = c._settle(c.coordinator.commit_offsets("g", a.member_epoch, "a", None, commit))
    assert ok == {("t", 0): E.none}
    stale = c._settle(c.coordinator.commit_offsets("g", a.member_epoch + 1, "a", None, commit))
    assert stale == {("t", 0): E.stale_member_epoch}
    unknown = c._settle(c.coordinator.commit_offsets("g", 1, "zz", None, commit))
    assert unknown == {("t", 0): E.unknown_member_id}
    old = c._settle(c.coordinator.commit_offsets("g", 1, "a", None, commit, version=8))
    assert old == {("t", 0): E.unsupported_version}
    assert c._settle(c.coordinator.commit_offsets("g", -1, "", None, commit)) == {("t", 0): E.unknown_member_id}
    c.hb("a", -1)
    assert c._settle(c.coordinator.commit_offsets("g", -1, "", None, commit)) == {("t", 0): E.none}
    # OffsetFetch v9 of a member checks its epoch.
    c.hb("b", 0)
    assert c.coordinator.fetch_offsets("g", None, "b", 99)[0] == E.stale_member_epoch
    assert c.coordinator.fetch_offsets("g", None, "nobody", 1)[0] == E.unknown_member_id
    error, found = c.coordinator.fetch_offsets("g", None, "b", c.cgroup().members["b"].member_epoch)
    assert error == E.none and found[0][1][0][1].offset == 7


def test_delete_list_and_expire(c):
    from kavka.group.describe import list_groups
    c.hb("a", 0)
    c._settle(c.coordinator.commit_offsets("g", 1, "a", None, [OffsetCommit("t", 0, 1, -1, "")]))
    listed = list_groups(c.coordinator.groups, None, {"consumer"}, c.coordinator.consumer_groups)
    assert [(g.group_id, g.state, g.group_type, g.protocol_type) for g in listed] == \
        [("g", "Stable", "consumer", "consumer")]
    assert c.coordinator.delete_groups(["g"]).reply == {"g": E.non_empty_group}
    assert c.coordinator.delete_offsets("g", [("t", 0)]).reply[1] == {("t", 0): E.group_subscribed_to_topic}
    c.hb("a", -1)
    assert c.cstate() == "Empty"
    c.clock.advance(c.config.retention_ms + c.config.retention_check_interval_ms)
    c._settle(c.coordinator.tick())
    assert "g" not in c.coordinator.consumer_groups and not c.coordinator.offsets.has_offsets("g")


def test_delete_an_empty_consumer_group(c):
    c.hb("a", 0)
    c.hb("a", -1)
    assert c.coordinator.delete_groups(["g"]).reply == {"g": E.none}
    assert "g" not in c.coordinator.consumer_groups and c.rebuilt().snapshot() == c.coordinator.snapshot()


def test_rebuilt_from_the_journal_equals_live_state(c):
    epochs, owned = c.join_stable("a", "b", "c", topics=("t", "u"))
    c.hb("d", 0, instance="i-d")
    c.hb("d", -2, instance="i-d")
    c.hb("a", -1)
    c._settle(c.coordinator.commit_offsets("g", epochs["b"], "b", None, [OffsetCommit("u", 1, 3, 2, "m")]))
    c.hb("b", epochs["b"], owned={"t": [0, 1, 2, 3], "u": [0, 1]})  # mid-reconciliation
    live = c.coordinator.snapshot()
    rebuilt = c.rebuilt()
    assert rebuilt.snapshot() == live
    # And the rebuilt coordinator carries on: members keep their epochs.
    group = rebuilt.consumer_groups["g"]
    assert {m: v.member_epoch for m, v in group.members.items()} == \
        {m: v.member_epoch for m, v in c.cgroup().members.items()}
