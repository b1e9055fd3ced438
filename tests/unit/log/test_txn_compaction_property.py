"""Property: any interleaving of transactional writes, commits, aborts (with and without an
epoch bump), plain writes, rolls, cleanings and restarts (some with an unreadable .txnindex)
leaves a read_committed reader the same table as on a log never cleaned, without an aborted
record, and no aborted-transaction entry without its marker."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cleaner_helpers import Env, is_subsequence, latest
from test_txn_compaction import assert_entries_have_markers
from txn_log_helpers import Txns, read_committed, read_uncommitted

KEYS = [b"a", b"b", b"c"]
PIDS = [1, 2, 3]

txn_write = st.tuples(st.just("txn"), st.sampled_from(PIDS), st.sampled_from(KEYS))
end = st.tuples(st.just("end"), st.sampled_from(PIDS), st.booleans(), st.booleans())
plain = st.tuples(st.just("write"), st.sampled_from(KEYS))
roll = st.tuples(st.just("roll"))
clean = st.tuples(st.just("clean"), st.sampled_from([0, 10, 600, 1001]))
restart = st.tuples(st.just("restart"), st.booleans())
operations = st.lists(st.one_of(txn_write, txn_write, end, end, plain, roll, clean, clean, restart),
                      min_size=1, max_size=50)


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_read_committed_is_unchanged_by_cleaning(ops):
    with tempfile.TemporaryDirectory() as tmp:
        run(Path(tmp), ops)


class Side:
    """A log with its producers: the one cleaned, or the reference never cleaned."""

    def __init__(self, directory: Path) -> None:
        self.env = Env(directory)
        self.txns = Txns(self.env)

    def restart(self, damage: bool) -> None:
        clock, directory = self.env.clock, self.env.directory
        self.env.close()
        if damage:
            for index in directory.glob("t-0/*.txnindex"):
                with open(index, "ab") as f:
                    f.write(b"\x00")
        self.env = Env(directory, clock=clock)
        self.txns.env = self.env


def apply(side: Side, op, value: bytes) -> None:
    kind = op[0]
    if kind == "txn":
        side.txns.write(op[1], (op[2], value))
    elif kind == "end":
        side.txns.end(op[1], commit=op[2], bump=op[3])
    elif kind == "write":
        side.env.write((op[1], value))
    elif kind == "roll":
        side.env.log.roll()


def run(tmp: Path, ops) -> None:
    cleaned, reference = Side(tmp / "cleaned"), Side(tmp / "reference")
    try:
        for n, op in enumerate(ops):
            for side in (cleaned, reference):
                apply(side, op, b"v%d" % n)
            if op[0] == "clean":
                for side in (cleaned, reference):
                    side.env.log.roll()  # what was written so far may be cleaned
                    side.env.clock.advance(op[1])
                cleaned.env.cleaner.clean_once()
            elif op[0] == "restart":
                cleaned.restart(op[1])
                reference.restart(False)
            check(cleaned.env, reference.env)
    finally:
        cleaned.env.close()
        reference.env.close()


def check(cleaned: Env, reference: Env) -> None:
    assert cleaned.log.last_stable_offset == reference.log.last_stable_offset
    expected = read_committed(reference.log)
    got = read_committed(cleaned.log)
    assert latest(got) == latest(expected)
    assert is_subsequence(got, expected), "only records a read_committed reader of the original sees"
    assert is_subsequence(read_uncommitted(cleaned.log), read_uncommitted(reference.log))
    assert_entries_have_markers(cleaned.log)
