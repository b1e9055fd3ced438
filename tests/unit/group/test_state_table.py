"""The classic group state table, request by request, on a ManualClock."""

from __future__ import annotations

import pytest

from kavka.group.outcome import JoinReply, Parked
from kavka.group.state import VALID_PREVIOUS, GroupState, IllegalTransition, check_transition
from kavka.protocol.errors import ErrorCode as E

from group_helpers import REBALANCE, SESSION, Harness


def test_first_join_v4_plus_asks_for_the_member_id_then_completes(h):
    first = h.join(version=4, client="app")
    assert first == JoinReply(E.member_id_required, "app-1")
    assert h.state() == "Empty" and h.group().pending == {"app-1": SESSION}
    reply = h.answer(h.join("app-1", version=4, client="app"))
    assert (reply.error, reply.member_id, reply.generation, reply.leader) == (E.none, "app-1", 1, "app-1")
    assert reply.protocol_name == "range" and [m.member_id for m in reply.members] == ["app-1"]
    assert h.state() == "CompletingRebalance"


def test_joins_before_v4_get_their_id_at_once(h):
    reply = h.answer(h.join(version=3))
    assert reply.error == E.none and reply.member_id == "c-1" and reply.generation == 1


def test_sync_hands_out_the_leaders_assignment_and_stabilises(h):
    ids = h.stable_group("a", "b")
    group = h.group()
    assert h.state() == "Stable" and group.generation == 2 and group.leader_id == ids["a"]
    reply = h.sync(ids["b"], 2)
    assert reply.error == E.none and reply.assignment == b"assignment-b"
    assert h.heartbeat(ids["a"], 2) == E.none


def test_a_new_member_makes_the_others_rejoin(h):
    ids = h.stable_group("a")
    newcomer = h.new_member(client="b")
    assert h.state() == "PreparingRebalance" and h.answer(newcomer) is None
    assert h.heartbeat(ids["a"], 1) == E.rebalance_in_progress
    assert h.sync(ids["a"], 1).error == E.rebalance_in_progress
    again = h.join(ids["a"], client="a")
    a, b = h.answer(again), h.answer(newcomer)
    assert a.generation == b.generation == 2
    assert a.leader == b.leader == ids["a"], "the old leader stays leader"
    assert len(a.members) == 2 and b.members == ()


def test_protocol_is_the_one_most_members_prefer_among_those_all_support(h):
    both = (("roundrobin", b"r"), ("range", b"g"))
    range_first = (("range", b"g"), ("roundrobin", b"r"), ("sticky", b"s"))
    a_id = h.answer(h.new_member(protocols=both, client="a")).member_id
    b = h.new_member(protocols=both, client="b")
    c = h.new_member(protocols=range_first, client="c")
    a = h.answer(h.join(a_id, protocols=both, client="a"))
    assert {h.answer(b).protocol_name, h.answer(c).protocol_name, a.protocol_name} == {"roundrobin"}
    assert a.leader == a_id and [m.metadata for m in a.members] == [b"r", b"r", b"r"]


def test_wrong_protocol_type_or_no_common_protocol_changes_nothing(h):
    h.stable_group("a")
    before = h.coordinator.snapshot()
    assert h.join(protocol_type="connect").error == E.inconsistent_group_protocol
    assert h.join(protocols=(("sticky", b""),)).error == E.inconsistent_group_protocol
    assert h.coordinator.snapshot() == before and h.state() == "Stable" and h.group().pending == {}


def test_a_lone_member_may_change_protocol_but_not_against_others(h):
    ids = h.stable_group("a", "b")
    state = h.state()
    assert h.join(ids["b"], protocols=(("sticky", b""),), client="b").error == E.inconsistent_group_protocol
    assert h.state() == state


def test_empty_protocol_list_or_type_is_rejected_for_a_new_group(h):
    assert h.join(protocols=()).error == E.inconsistent_group_protocol
    assert h.join(protocol_type="").error == E.inconsistent_group_protocol
    assert h.group() is None, "a failed first join leaves no group behind"


def test_unknown_member_and_stale_generation_change_nothing(h):
    ids = h.stable_group("a", "b")
    before = h.coordinator.snapshot()
    assert h.join("ghost").error == E.unknown_member_id
    assert h.join("ghost", group="nowhere").error == E.unknown_member_id
    assert h.sync("ghost", 2).error == E.unknown_member_id
    assert h.heartbeat("ghost", 2) == E.unknown_member_id
    assert h.heartbeat(ids["a"], 1) == E.illegal_generation
    assert h.sync(ids["a"], 1).error == E.illegal_generation
    assert h.commit(generation=1, member_id=ids["a"]) == {("t", 0): E.illegal_generation}
    assert h.commit(generation=2, member_id="ghost") == {("t", 0): E.unknown_member_id}
    assert h.leave(("ghost", None)) == (E.none, [E.unknown_member_id])
    assert h.coordinator.snapshot() == before and h.state() == "Stable"


def test_sync_with_other_protocol_names_is_inconsistent(h):
    ids = h.stable_group("a")
    assert h.sync(ids["a"], 1, protocol_type="connect").error == E.inconsistent_group_protocol
    assert h.sync(ids["a"], 1, protocol_name="roundrobin").error == E.inconsistent_group_protocol
    assert h.sync(ids["a"], 1, protocol_type="consumer", protocol_name="range").error == E.none


def test_session_timeout_bounds(h):
    assert h.join(session=999).error == E.invalid_session_timeout
    assert h.join(session=60_001).error == E.invalid_session_timeout
    assert h.join(group="").error == E.invalid_group_id


def test_session_expiry_removes_a_silent_member(h):
    ids = h.stable_group("a", "b")
    h.advance(SESSION - 100)
    h.heartbeat(ids["a"], 2)
    h.advance(100)
    assert h.state() == "PreparingRebalance" and ids["b"] not in h.group().members
    reply = h.answer(h.join(ids["a"], client="a"))
    assert reply.generation == 3 and [m.member_id for m in reply.members] == [ids["a"]]


def test_members_that_do_not_rejoin_are_dropped_at_the_rebalance_timeout(h):
    ids = h.stable_group("a", "b")
    c = h.new_member(client="c")
    h.advance(5_000)
    a = h.join(ids["a"], client="a")  # b never rejoins, but keeps heartbeating
    for _ in range(REBALANCE // 5_000 - 2):  # to 5 s before the deadline
        assert h.heartbeat(ids["b"], 2) == E.rebalance_in_progress
        h.advance(5_000)
    assert h.answer(a) is None
    h.advance(5_000)
    assert h.answer(a).generation == 3 and h.answer(c).generation == 3
    assert set(h.group().members) == {ids["a"], h.answer(c).member_id}
    assert h.heartbeat(ids["b"], 2) == E.unknown_member_id


def test_members_that_do_not_sync_are_dropped_at_the_rebalance_timeout(h):
    ids = h.stable_group("a")
    b = h.new_member(client="b")
    h.join(ids["a"], client="a")
    b_id = h.answer(b).member_id
    assert h.answer(h.sync(ids["a"], 2, assignments={ids["a"]: b"x", b_id: b"y"})).error == E.none
    assert h.group().pending_sync == {b_id}
    for _ in range(REBALANCE // 5_000):  # both heartbeat; b never syncs
        assert h.heartbeat(ids["a"], 2) == h.heartbeat(b_id, 2) == E.none
        h.advance(5_000)
    assert b_id not in h.group().members and h.state() == "PreparingRebalance"


def test_parked_members_do_not_expire_while_they_wait(h):
    ids = h.stable_group("a", "b")
    a = h.join(ids["a"], client="a")  # the leader rejoins: rebalance, b must come back
    h.advance(SESSION + 1)           # b did not heartbeat: gone; a waited on us: kept
    assert ids["a"] in h.group().members and ids["b"] not in h.group().members
    assert h.answer(a).generation == 3


def test_initial_rebalance_delay_waits_for_more_members():
    h = Harness(initial_rebalance_delay_ms=3_000)
    a = h.new_member(client="a")
    h.advance(1_000)
    b = h.new_member(client="b")
    h.advance(1_999)
    assert h.answer(a) is None and h.state() == "PreparingRebalance"
    h.advance(1)        # 3 s: b joined meanwhile, so the delay is extended once more
    assert h.answer(a) is None
    h.advance(3_000)
    assert h.answer(a).generation == h.answer(b).generation == 1


def test_initial_delay_alone_completes_after_one_delay():
    h = Harness(initial_rebalance_delay_ms=3_000)
    a = h.new_member()
    h.advance(2_999)
    assert h.answer(a) is None
    h.advance(1)
    assert h.answer(a).generation == 1


def test_group_max_size(harness):
    h = harness(max_size=2)
    h.stable_group("a", "b")
    assert h.join(client="c").error == E.group_max_size_reached
    assert h.group().pending == {}


def test_leave_batch_answers_each_member(h):
    ids = h.stable_group("a", "b", "c")
    result = h.leave((ids["b"], None), ("nobody", None), ("", "no-such-instance"))
    assert result == (E.none, [E.none, E.unknown_member_id, E.unknown_member_id])
    assert h.state() == "PreparingRebalance"
    assert h.leave(("x", None), group="unknown") == (E.none, [E.unknown_member_id])


def test_last_member_leaving_empties_the_group_with_a_new_generation(h):
    ids = h.stable_group("a")
    h.leave((ids["a"], None))
    group = h.group()
    assert (h.state(), group.generation, group.protocol_name, group.leader_id) == ("Empty", 2, None, None)


def test_leave_of_a_pending_member_id(h):
    first = h.join()
    assert h.leave((first.member_id, None)) == (E.none, [E.none])
    assert h.group().pending == {}


def test_commit_in_completing_rebalance_is_refused(h):
    a = h.answer(h.new_member())
    assert h.state() == "CompletingRebalance"
    assert h.commit(generation=1, member_id=a.member_id) == {("t", 0): E.rebalance_in_progress}


def test_members_may_commit_while_preparing_a_rebalance(h):
    ids = h.stable_group("a")
    h.new_member(client="b")
    assert h.state() == "PreparingRebalance"
    assert h.commit(generation=1, member_id=ids["a"]) == {("t", 0): E.none}


def test_join_retry_after_a_lost_answer_returns_the_current_generation(h):
    ids = h.stable_group("a", "b")
    reply = h.join(ids["b"], client="b")
    assert isinstance(reply, JoinReply) and reply.generation == 2 and reply.members == ()
    assert h.state() == "Stable"


def test_leader_rejoin_in_stable_rebalances(h):
    ids = h.stable_group("a", "b")
    assert isinstance(h.join(ids["a"], client="a"), Parked)
    assert h.state() == "PreparingRebalance"


def test_transitions_follow_the_table():
    check_transition(GroupState.PREPARING_REBALANCE, GroupState.COMPLETING_REBALANCE)
    with pytest.raises(IllegalTransition):
        check_transition(GroupState.EMPTY, GroupState.STABLE)
    assert set(VALID_PREVIOUS) == set(GroupState)



def test_a_failed_append_of_the_assignment_rebalances(h):
    a = h.answer(h.new_member(client="a"))
    h.journal.fail = OSError("disk full")
    parked = h.sync(a.member_id, a.generation, assignments={a.member_id: b"x"})
    assert h.answer(parked).error == E.unknown_server_error
    assert h.state() == "PreparingRebalance" and h.group().members[a.member_id].assignment == b""
    h.journal.fail = None
    again = h.answer(h.join(a.member_id, client="a"))
    assert again.generation == 2
    assert h.answer(h.sync(a.member_id, 2, assignments={a.member_id: b"y"})).assignment == b"y"
    assert h.rebuilt().snapshot() == h.coordinator.snapshot()
