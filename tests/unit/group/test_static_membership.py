"""group.instance.id (KIP-345): restarts without rebalances, fencing of stale ids."""

from __future__ import annotations

from group_helpers import SESSION

from kavka.group.outcome import JoinReply, Parked
from kavka.protocol.errors import ErrorCode as E


def static_group(h, *names):
    """Static members named by their instance id, joined and synced."""
    ids = {}
    for name in names:
        pending = {name: h.join(instance=name, client=name)}
        for other, member_id in ids.items():
            pending[other] = h.join(member_id, instance=other, client=other)
        replies = {n: h.answer(p) for n, p in pending.items()}
        ids = {n: r.member_id for n, r in replies.items()}
        leader = next(r for r in replies.values() if r.leader == r.member_id)
        plan = {r.member_id: f"plan-{n}".encode() for n, r in replies.items()}
        for n, r in replies.items():
            h.sync(r.member_id, r.generation, instance=n, assignments=plan if r is leader else None)
    return ids


def test_static_members_skip_member_id_required(h):
    reply = h.answer(h.join(instance="i1", version=5))
    assert reply.error == E.none and reply.member_id == "i1-1"


def test_restart_keeps_the_generation_and_the_assignment(h):
    ids = static_group(h, "i1", "i2")
    generation = h.group().generation
    journal_before = h.journal.count()
    reply = h.join(instance="i2", client="i2")  # i2 restarted: no member id
    assert isinstance(reply, JoinReply), "answered at once, no rebalance"
    assert reply.error == E.none and reply.generation == generation and reply.member_id != ids["i2"]
    assert reply.leader == ids["i1"] and reply.members == ()
    assert h.state() == "Stable" and h.journal.count() == journal_before + 1, "the new id is persisted"
    synced = h.sync(reply.member_id, generation, instance="i2")
    assert synced.assignment == b"plan-i2"
    assert h.heartbeat(ids["i1"], generation, instance="i1") == E.none


def test_the_old_member_id_is_fenced(h):
    ids = static_group(h, "i1")
    new = h.join(instance="i1", client="i1")
    before = h.coordinator.snapshot()
    assert h.heartbeat(ids["i1"], 1, instance="i1") == E.fenced_instance_id
    assert h.sync(ids["i1"], 1, instance="i1").error == E.fenced_instance_id
    assert h.commit(generation=1, member_id=ids["i1"], instance="i1") == {("t", 0): E.fenced_instance_id}
    assert h.join(ids["i1"], instance="i1").error == E.fenced_instance_id
    assert h.leave((ids["i1"], "i1")) == (E.none, [E.fenced_instance_id])
    assert h.coordinator.snapshot() == before and new.member_id in h.group().members


def test_a_restarted_static_leader_skips_the_assignment_from_v9(h):
    static_group(h, "i1", "i2")
    reply = h.join(instance="i1", client="i1", version=9)
    assert reply.skip_assignment and reply.leader == reply.member_id and len(reply.members) == 2


def test_before_v9_a_restarted_static_leader_is_sent_the_old_leader_id(h):
    ids = static_group(h, "i1", "i2")
    reply = h.join(instance="i1", client="i1", version=8)
    assert not reply.skip_assignment and reply.leader == ids["i1"] != reply.member_id


def test_a_changed_protocol_choice_rebalances(h):
    static_group(h, "i1")
    reply = h.join(instance="i1", protocols=(("roundrobin", b""),))
    assert isinstance(reply, Parked)
    assert h.answer(reply).protocol_name == "roundrobin"


def test_a_static_member_gone_past_its_session_is_removed(h):
    ids = static_group(h, "i1", "i2")
    for _ in range(3):
        h.heartbeat(ids["i1"], 2, instance="i1")
        h.advance(SESSION // 3 + 1)
    assert ids["i2"] not in h.group().members and "i2" not in h.group().static_members


def test_leave_by_instance_id_alone(h):
    ids = static_group(h, "i1", "i2")
    assert h.leave(("", "i2")) == (E.none, [E.none])
    assert ids["i2"] not in h.group().members
