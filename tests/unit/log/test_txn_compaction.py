"""Compaction with transactions: aborted data goes, committed data is deduped by key, open
transactions are not touched, markers stay until their transaction's data is gone and then
delete.retention.ms (KIP-534), and read_committed readers never see an aborted record, before
or after a cleaning, a crash in its swap or a rebuilt .txnindex."""

from __future__ import annotations

import pytest

from kavka.log.partition import Partition
from kavka.log.partition_log import PartitionLog
from kavka.log.txn_index import AbortedTxn
from cleaner_helpers import Env, latest
from txn_log_helpers import Txns, crash_cleaning_at, markers, read_committed, read_uncommitted, stored_batches

FILL = bytes(30)


def fill(env: Env, rounds: int, tag: bytes = b"f") -> None:
    """Plain (non-transactional) keyed writes that roll segments."""
    for r in range(rounds):
        env.write(*[(tag + b"%d" % k, b"%d" % r + FILL) for k in range(3)])


def aborted_values(entries) -> list:
    return [e for e in entries if e[2] is not None and e[2].startswith(b"aborted")]


def assert_entries_have_markers(plog: PartitionLog) -> None:
    """An aborted-transaction entry without its marker would hide the producer's later
    committed batches from read_committed readers."""
    found = {(offset, pid) for offset, pid, commit, _ in markers(plog) if not commit}
    for txn in plog.aborted_txns_overlapping(plog.log_start_offset, plog.log_end_offset):
        assert (txn.last_offset, txn.producer_id) in found, txn


def test_aborted_data_goes_committed_is_deduped_and_open_is_untouched(tmp_path):
    env = Env(tmp_path / "d")
    txns = Txns(env)
    txns.write(1, (b"k0", b"committed-0"), (b"k1", b"committed-1"))
    txns.end(1, commit=True)
    txns.write(2, (b"k0", b"aborted-0"), (b"k1", b"aborted-1"), (b"k2", b"aborted-2"))
    txns.end(2, commit=False)
    fill(env, 10)
    txns.write(3, (b"k2", b"open-2"))
    fill(env, 10, b"g")
    env.log.roll()
    lso = env.log.last_stable_offset
    before_committed, before_all = read_committed(env.log), read_uncommitted(env.log)
    assert aborted_values(before_all) and not aborted_values(before_committed)

    assert env.cleaner.clean_once() is not None
    after_all = read_uncommitted(env.log)
    assert aborted_values(after_all) == [], "the cleaner dropped the aborted records"
    committed = latest(read_committed(env.log))
    assert committed[b"k0"] == b"committed-0", "a newer aborted record does not shadow a committed one"
    assert committed[b"k1"] == b"committed-1"
    assert latest(read_committed(env.log)) == latest(before_committed)
    assert any(v == b"open-2" for _, _, v in after_all), "the open transaction is not cleaned"
    assert env.log.last_stable_offset == lso
    assert_entries_have_markers(env.log)
    env.close()


def test_markers_stay_until_their_data_is_gone_then_delete_retention(tmp_path):
    """Cleaning 1 drops the data (markers and entries kept: it met their batches); cleaning 2
    finds no batch and stamps the markers with a delete horizon (entries dropped); the first
    cleaning after delete.retention.ms removes them, except what a producer's state needs."""
    env = Env(tmp_path / "d")  # delete.retention.ms = 1000
    txns = Txns(env)
    txns.write(1, (b"k0", b"c-first"))
    commit_1 = txns.end(1, commit=True)
    txns.write(2, (b"x", b"aborted-x"))
    abort_2a = txns.end(2, commit=False)
    txns.write(2, (b"y", b"aborted-y"))
    abort_2b = txns.end(2, commit=False)    # producer 2's last batch is this transaction's
    txns.write(4, (b"z", b"aborted-z"))
    abort_4 = txns.end(4, commit=False, bump=True)  # transactions V2: the marker bumps the epoch
    txns.write(1, (b"k9", b"c-second"))
    commit_1b = txns.end(1, commit=True)
    env.write((b"k0", b"plain"))            # supersedes producer 1's first committed record
    fill(env, 8)
    env.log.roll()
    assert len(env.log.aborted_transactions(0, env.log.log_end_offset)) == 3

    def stage():
        assert not aborted_values(read_committed(env.log))
        assert_entries_have_markers(env.log)
        return {offset: stamped for offset, _, _, stamped in markers(env.log)}

    env.cleaner.clean_once()
    assert not aborted_values(read_uncommitted(env.log))
    assert stage() == {commit_1: False, abort_2a: False, abort_2b: False, abort_4: False, commit_1b: False}
    assert len(env.log.aborted_transactions(0, env.log.log_end_offset)) == 3

    fill(env, 8, b"g")
    env.log.roll()
    env.cleaner.clean_once()
    # producer 2's last batch is kept (emptied) for its sequence, so its marker stays too;
    # producer 1's second transaction keeps its (last) batch and so its marker
    assert stage() == {commit_1: True, abort_2a: True, abort_2b: False, abort_4: True, commit_1b: False}
    entries = env.log.aborted_txns_overlapping(0, env.log.log_end_offset)
    assert [(t.producer_id, t.last_offset) for t in entries] == [(2, abort_2b)]

    env.clock.advance(999)
    fill(env, 2, b"h")
    env.log.roll()
    env.cleaner.clean_once()
    assert stage() == {commit_1: True, abort_2a: True, abort_2b: False, abort_4: True, commit_1b: False}

    env.clock.advance(1)  # the horizon passed: the stamped markers go
    assert env.cleaner.clean_once() is not None
    assert stage() == {abort_2b: False, commit_1b: False}
    tail = [h for h, _ in stored_batches(env.log) if h.base_offset == abort_4]
    assert len(tail) == 1 and tail[0].is_control and tail[0].records_count == 0, \
        "producer 4's last entry is its marker: kept, emptied, for its epoch"
    assert latest(read_committed(env.log))[b"k9"] == b"c-second"

    env.reopen()  # producer state replayed from the cleaned log keeps producer 4's epoch
    assert env.partition.producers.producers[4].epoch == 1
    assert env.log.last_stable_offset == env.log.high_watermark
    env.close()


def scenario_with_removed_markers(env: Env) -> None:
    """A log whose next cleaning (after delete.retention.ms) removes markers."""
    txns = Txns(env)
    for r in range(3):
        txns.write(2, (b"a%d" % r, b"aborted-%d" % r))
        txns.end(2, commit=False)
        txns.write(1, (b"c%d" % r, b"committed-%d" % r))
        txns.end(1, commit=True)
    fill(env, 8)
    env.log.roll()
    env.cleaner.clean_once()
    fill(env, 8, b"g")
    env.log.roll()
    env.cleaner.clean_once()
    env.clock.advance(1000)
    fill(env, 2, b"h")
    env.log.roll()


@pytest.mark.parametrize("recover", [True, False])
@pytest.mark.parametrize("step", ["swap", "deleted", "renamed"])
def test_a_crash_in_the_swap_leaves_no_entry_without_its_marker(tmp_path, step, recover):
    env = Env(tmp_path / "d")
    scenario_with_removed_markers(env)
    committed = latest(read_committed(env.log))
    # What a rebuild from a snapshot taken while the transaction was open gives: an entry
    # for a marker whose data is gone, which this cleaning removes together with the marker.
    offset = next(o for o, pid, commit, stamped in markers(env.log) if stamped and not commit)
    env.log.add_aborted_txn(AbortedTxn(2, offset - 1, offset, offset + 1))
    env.log.flush()
    crash_cleaning_at(env.cleaner, step)
    reopened = PartitionLog.open(env.log.path, "t", 0, env.log.config, env.clock, recover=recover)
    partition = Partition.open("t", 0, reopened)
    try:
        assert_entries_have_markers(reopened)
        assert latest(read_committed(reopened)) == committed
        assert not aborted_values(read_committed(reopened))
    finally:
        partition.close()


def test_a_rebuilt_txnindex_agrees_with_what_the_cleaner_left(tmp_path):
    env = Env(tmp_path / "d")
    scenario_with_removed_markers(env)
    env.cleaner.clean_once()
    committed, stored = read_committed(env.log), markers(env.log)
    env.close()
    for index in (tmp_path / "d" / "t-0").glob("*.txnindex"):
        with open(index, "ab") as f:
            f.write(b"\x00")  # not a whole entry: the index is rebuilt by a producer-state replay
    for snapshot in (tmp_path / "d" / "t-0").glob("*.snapshot"):
        snapshot.unlink()  # replay the whole log
    env = Env(tmp_path / "d")
    assert read_committed(env.log) == committed
    assert markers(env.log) == stored
    assert_entries_have_markers(env.log)
    env.close()
