"""Committed offsets: who may commit, metadata size, fetch, delete, expiry."""

from __future__ import annotations

from group_helpers import subscription

from kavka.group.offsets import fetch
from kavka.protocol.errors import ErrorCode as E

MINUTE = 60_000


def test_assign_consumers_commit_without_joining(h):
    assert h.commit(group="solo", offsets=[("t", 0, 7), ("t", 1, 9)]) == {("t", 0): E.none, ("t", 1): E.none}
    assert h.state("solo") == "Empty" and h.group("solo").members == {}
    found = dict(fetch(h.coordinator.offsets, "solo", None))
    assert [(p, v.offset, e) for p, v, e in found["t"]] == [(0, 7, E.none), (1, 9, E.none)]


def test_a_generation_on_an_unknown_group_is_illegal(h):
    assert h.commit(group="nobody", generation=3, member_id="m") == {("t", 0): E.illegal_generation}
    assert h.group("nobody") is None


def test_assign_commits_into_an_active_group_are_refused(h):
    h.stable_group("a")
    assert h.commit() == {("t", 0): E.unknown_member_id}


def test_oversized_metadata_fails_only_its_partition(harness):
    h = harness(metadata_max_bytes=10)
    result = h.commit(group="s", offsets=[("t", 0, 1)], metadata="x" * 11)
    assert result == {("t", 0): E.offset_metadata_too_large}
    assert h.group("s") is None and h.journal.count() == 0
    assert h.commit(group="s", offsets=[("t", 0, 1)], metadata="x" * 10) == {("t", 0): E.none}


def test_fetch_of_unknown_partitions_and_groups(h):
    h.commit(group="s", offsets=[("t", 0, 3)])
    assert fetch(h.coordinator.offsets, "s", [("t", [0, 1])]) == [
        ("t", [(0, h.coordinator.offsets.get("s", "t", 0), E.none), (1, None, E.none)])]
    assert fetch(h.coordinator.offsets, "nobody", None) == []


def test_member_commits_refresh_the_session(h):
    ids = h.stable_group("a")
    for _ in range(4):
        h.advance(4_000)
        assert h.commit(generation=1, member_id=ids["a"]) == {("t", 0): E.none}
    assert h.state() == "Stable"


def test_empty_group_offsets_expire_after_retention(harness):
    h = harness(retention_ms=10 * MINUTE, retention_check_interval_ms=MINUTE)
    ids = h.stable_group("a")
    h.commit(generation=1, member_id=ids["a"], offsets=[("t", 0, 5)])
    h.advance(30 * MINUTE)
    h.heartbeat(ids["a"], 1)
    assert h.coordinator.offsets.has_offsets("g"), "a group with members keeps its offsets"
    h.leave((ids["a"], None))
    h.advance(9 * MINUTE)
    assert h.coordinator.offsets.has_offsets("g")
    h.advance(MINUTE)
    assert not h.coordinator.offsets.has_offsets("g") and h.group() is None
    assert h.rebuilt().snapshot() == h.coordinator.snapshot()


def test_simple_group_offsets_expire_per_commit(harness):
    h = harness(retention_ms=10 * MINUTE, retention_check_interval_ms=MINUTE)
    h.commit(group="s", offsets=[("t", 0, 1)])
    h.advance(5 * MINUTE)
    h.commit(group="s", offsets=[("t", 1, 1)])
    h.advance(5 * MINUTE)
    assert set(h.coordinator.offsets.of_group("s")) == {("t", 1)}
    h.advance(5 * MINUTE)
    assert h.group("s") is None


def test_stable_group_offsets_of_unsubscribed_topics_expire(harness):
    h = harness(retention_ms=10 * MINUTE, retention_check_interval_ms=MINUTE)
    ids = h.stable_group("a", protocols=(("range", subscription("t")),))
    h.commit(generation=1, member_id=ids["a"], offsets=[("t", 0, 1), ("old", 0, 1)])
    for _ in range(11 * 12):  # 11 minutes of heartbeats every 5 s
        assert h.heartbeat(ids["a"], 1) == E.none
        h.advance(5_000)
    assert set(h.coordinator.offsets.of_group("g")) == {("t", 0)}


def test_offset_delete(h):
    ids = h.stable_group("a", protocols=(("range", subscription("t")),))
    h.commit(generation=1, member_id=ids["a"], offsets=[("t", 0, 1), ("u", 0, 1)])
    out = h.coordinator.delete_offsets("g", [("t", 0), ("u", 0), ("v", 0)])
    assert out.reply == (E.none, {("t", 0): E.group_subscribed_to_topic, ("u", 0): E.none, ("v", 0): E.none})
    assert set(h.coordinator.offsets.of_group("g")) == {("t", 0)}
    assert h.coordinator.delete_offsets("nobody", [("t", 0)]).reply[0] == E.group_id_not_found


def test_offset_delete_in_a_non_consumer_group_with_members(h):
    h.stable_group("a", protocol_type="connect")
    assert h.coordinator.delete_offsets("g", [("t", 0)]).reply == (E.non_empty_group, {})


def test_delete_groups(h):
    ids = h.stable_group("a")
    h.commit(group="s", offsets=[("t", 0, 1)])
    result = h.coordinator.delete_groups(["g", "s", "nobody", ""]).reply
    assert result == {"g": E.non_empty_group, "s": E.none, "nobody": E.group_id_not_found,
                      "": E.invalid_group_id}
    assert h.group("s") is None and not h.coordinator.offsets.has_offsets("s")
    h.leave((ids["a"], None))
    assert h.coordinator.delete_groups(["g"]).reply == {"g": E.none}
    assert h.coordinator.groups == {} and h.rebuilt().snapshot() == h.coordinator.snapshot()


def test_a_failed_append_changes_nothing(h):
    ids = h.stable_group("a")
    before = h.coordinator.snapshot()
    h.journal.fail = OSError("disk full")
    assert h.commit(generation=1, member_id=ids["a"]) == {("t", 0): E.unknown_server_error}
    assert h.coordinator.snapshot() == before


def test_a_storage_error_answers_not_coordinator_and_changes_nothing(h):
    from kavka.log.errors import LogDirOffline, StorageFull
    ids = h.stable_group("a")
    before = h.coordinator.snapshot()
    for error in (StorageFull("no space", 28), LogDirOffline("EIO", 5)):
        h.journal.fail = error  # as Kafka: KAFKA_STORAGE_ERROR -> NOT_COORDINATOR, which clients retry
        assert h.commit(generation=1, member_id=ids["a"]) == {("t", 0): E.not_coordinator}
        assert h.coordinator.snapshot() == before
    h.journal.fail = None
    assert h.commit(generation=1, member_id=ids["a"]) == {("t", 0): E.none}


def test_not_coordinator(h):
    h.journal.local = False
    assert h.join().error == E.not_coordinator
    assert h.commit(group="s") == {("t", 0): E.not_coordinator}
    assert h.heartbeat("m", 1) == E.not_coordinator
    assert h.coordinator.fetch_offsets("s", None) == (E.not_coordinator, [])
    assert h.coordinator.groups == {}
