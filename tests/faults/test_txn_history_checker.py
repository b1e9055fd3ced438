"""The transactional history checker (txn_history.py) on hand-made histories: a valid one
passes, and each anomaly, planted alone into it, is found and named (so the fault tests that
rely on the checker can fail)."""

from __future__ import annotations

import pytest

from txn_history import FAIL, INFO, OK, READ_COMMITTED as RC, READ_UNCOMMITTED as RU, History, check

# A valid run: producer "a" commits t0 (p0, p1) and aborts t1 (p0); "b" commits t2 (p1) and
# has t3 (p0, p1) indeterminate and in fact committed; t4 of "b" is indeterminate and was not.
LOG = {0: [b"a0", b"a1", b"a2", b"b3"], 1: [b"a1x", b"b0", b"b3x"]}
LOG_READ = {0: [(0, b"a0"), (1, b"a1"), (2, b"a2"), (4, b"b3")],      # 3: a's abort marker
            1: [(0, b"a1x"), (2, b"b0"), (4, b"b3x")]}               # 1, 3: markers


def valid_history(reads: dict | None = None, committed: dict | None = None,
                  outcomes: dict | None = None) -> History:
    """The valid run, with its reads (records per partition, per isolation) replaceable."""
    h = History()
    outcomes = {0: OK, 1: FAIL, 2: OK, 3: INFO, 4: INFO, **(outcomes or {})}
    specs = [("a", [(0, b"a0"), (1, b"a1x")], True, {b"a0": (0, 0), b"a1x": (1, 0)}),
             ("a", [(0, b"a1"), (0, b"a2")], False, {b"a1": (0, 1), b"a2": (0, 2)}),
             ("b", [(1, b"b0")], True, {b"b0": (1, 2)}),
             ("b", [(0, b"b3"), (1, b"b3x")], True, {b"b3": (0, 4), b"b3x": (1, 4)}),
             ("b", [(0, b"b4")], True, {})]
    for n, (process, writes, commit, acks) in enumerate(specs):
        txn = h.invoke(process, writes, commit)
        assert txn == n
        h.complete(process, txn, outcomes[n], acks)
    uncommitted = reads if reads is not None else LOG_READ
    if committed is None:
        committed = {0: [(0, b"a0"), (4, b"b3")], 1: [(0, b"a1x"), (2, b"b0"), (4, b"b3x")]}
    h.poll("reader-rc", RC, [(p, o, v) for p, recs in committed.items() for o, v in recs], final=True)
    h.poll("reader-ru", RU, [(p, o, v) for p, recs in uncommitted.items() for o, v in recs], final=True)
    return h


def anomalies(history: History) -> dict[str, list[str]]:
    return {kind: items for kind, items in check(history.ops).anomalies.items() if items}


def test_a_valid_history_passes():
    report = check(valid_history().ops)
    assert report.valid, report.summary()
    assert report.counts == {OK: 2, FAIL: 1, INFO: 2, "readers": 2, "records read": 12}


def test_an_indeterminate_transaction_may_be_invisible_whole():
    committed = {0: [(0, b"a0")], 1: [(0, b"a1x"), (2, b"b0")]}
    assert anomalies(valid_history(committed=committed)) == {}


def test_aborted_read():
    committed = {0: [(0, b"a0"), (1, b"a1"), (2, b"a2"), (4, b"b3")], 1: [(0, b"a1x"), (2, b"b0"), (4, b"b3x")]}
    found = anomalies(valid_history(committed=committed))
    assert list(found) == ["aborted-read"] and len(found["aborted-read"]) == 2


def test_uncommitted_read_of_a_transaction_that_never_completed():
    h = History()
    txn = h.invoke("a", [(0, b"x")], True)
    h.poll("reader", RC, [(0, 0, b"x")], final=False)
    assert list(anomalies(h)) == ["uncommitted-read"]
    assert txn == 0


def test_phantom_read():
    committed = {0: [(0, b"a0"), (4, b"b3"), (5, b"nobody")], 1: [(0, b"a1x"), (2, b"b0"), (4, b"b3x")]}
    assert list(anomalies(valid_history(committed=committed))) == ["phantom-read"]


def test_lost_committed_write_under_either_isolation():
    committed = {0: [(4, b"b3")], 1: [(2, b"b0"), (4, b"b3x")]}
    found = anomalies(valid_history(committed=committed))
    assert list(found) == ["lost-write"] and "reader-rc" in found["lost-write"][0]
    uncommitted = {0: [(0, b"a0"), (1, b"a1"), (2, b"a2"), (4, b"b3")], 1: [(0, b"a1x"), (4, b"b3x")]}
    found = anomalies(valid_history(reads=uncommitted))
    assert list(found) == ["lost-write"] and "reader-ru" in found["lost-write"][0]


def test_an_indeterminate_transaction_seen_in_part():
    committed = {0: [(0, b"a0"), (4, b"b3")], 1: [(0, b"a1x"), (2, b"b0")]}
    uncommitted = {0: LOG_READ[0], 1: [(0, b"a1x"), (2, b"b0")]}
    found = anomalies(valid_history(committed=committed, reads=uncommitted))
    assert list(found) == ["partial-txn"] and "info txn 3" in found["partial-txn"][0]


def test_a_committed_transaction_seen_in_part_is_partial_and_lost():
    found = anomalies(valid_history(committed={0: [(0, b"a0"), (4, b"b3")], 1: [(2, b"b0"), (4, b"b3x")]}))
    assert sorted(found) == ["lost-write", "partial-txn"]


def test_duplicate_seen_twice_by_one_reader():
    committed = {0: [(0, b"a0"), (4, b"b3")], 1: [(0, b"a1x"), (2, b"b0"), (4, b"b3x"), (2, b"b0")]}
    found = anomalies(valid_history(committed=committed))
    assert "duplicate" in found
    assert set(found) <= {"duplicate", "nonmonotonic-offset", "producer-order"}


def test_duplicate_stored_twice():
    uncommitted = {0: LOG_READ[0], 1: LOG_READ[1] + [(5, b"b0")]}
    found = anomalies(valid_history(reads=uncommitted))
    assert "duplicate" in found and any("stored at" in item for item in found["duplicate"])
    assert set(found) <= {"duplicate", "inconsistent-offset"}


def test_a_value_read_elsewhere_than_acknowledged():
    uncommitted = {0: LOG_READ[0], 1: [(0, b"a1x"), (3, b"b0"), (4, b"b3x")]}
    committed = {0: [(0, b"a0"), (4, b"b3")], 1: [(0, b"a1x"), (3, b"b0"), (4, b"b3x")]}
    found = anomalies(valid_history(committed=committed, reads=uncommitted))
    assert list(found) == ["inconsistent-offset"]
    assert found["inconsistent-offset"] == ["b'b0' acknowledged at p1@2, read at [(1, 3)]"]


def test_two_values_at_one_offset():
    committed = {0: [(0, b"a0"), (4, b"b3")], 1: [(0, b"a1x"), (2, b"b0"), (4, b"b3x")]}
    uncommitted = {0: LOG_READ[0], 1: [(0, b"a1x"), (2, b"b3x")]}
    found = anomalies(valid_history(committed=committed, reads=uncommitted))
    assert any(item.startswith("p1@2 holds") for item in found["inconsistent-offset"])


def test_nonmonotonic_offsets():
    uncommitted = {0: [(0, b"a0"), (2, b"a2"), (1, b"a1"), (4, b"b3")], 1: LOG_READ[1]}
    found = anomalies(valid_history(reads=uncommitted))
    assert list(found) == ["nonmonotonic-offset"]


def test_producer_order_under_read_committed():
    h = History()
    for n, value in enumerate([b"x0", b"x1"]):
        txn = h.invoke("a", [(0, value)], True)
        h.complete("a", txn, OK, {value: (0, 1 - n)})
    h.poll("reader", RC, [(0, 0, b"x1"), (0, 1, b"x0")], final=True)
    assert list(anomalies(h)) == ["producer-order"]


def test_producer_order_within_a_transaction():
    h = History()
    txn = h.invoke("a", [(0, b"x0"), (0, b"x1")], True)
    h.complete("a", txn, OK, {b"x0": (0, 1), b"x1": (0, 0)})
    h.poll("reader", RC, [(0, 0, b"x1"), (0, 1, b"x0")], final=True)
    assert list(anomalies(h)) == ["producer-order"]


@pytest.mark.parametrize("isolation", [RC, RU])
def test_reads_during_the_run_need_not_be_complete(isolation):
    h = valid_history()
    h.poll("early", isolation, [(0, 0, b"a0")], final=False)
    assert anomalies(h) == {}
