"""The read_committed rule of ``kavka export`` and ``kavka consume``
(kavka.client_session.AbortedTransactions, through export.select_records) without a broker: the batches of an aborted transaction
are dropped from its first offset to its producer's abort marker, the same producer's later
committed transaction is kept, markers are never records, and batches below the fetch
position still move the rule along."""

from __future__ import annotations

import struct

import pytest

from kavka import export
from kavka.client_session import AbortedTransactions, ToolError, isolation_level
from kavka.protocol.record_codec import encode_batch

T = 1_000_000
ABORTER, COMMITTER = 7, 8


def data_batch(base: int, count: int, producer_id: int = -1) -> bytes:
    return encode_batch([(None, b"v%d" % (base + i), T, []) for i in range(count)], base_offset=base,
                        producer_id=producer_id, producer_epoch=0 if producer_id >= 0 else -1,
                        base_sequence=0 if producer_id >= 0 else -1, transactional=producer_id >= 0)


def marker(base: int, producer_id: int, commit: bool) -> bytes:
    return encode_batch([(struct.pack(">hh", 0, int(commit)), struct.pack(">hi", 0, 0), T, [])], base_offset=base,
                        producer_id=producer_id, producer_epoch=0, transactional=True, control=True)


# 0-1 aborted (ABORTER), 2 committed (COMMITTER), 3 ABORTER's abort marker, 4 COMMITTER's commit
# marker, 5 ABORTER's next transaction, 6 its commit marker, 7-8 not transactional.
LOG = (data_batch(0, 2, ABORTER) + data_batch(2, 1, COMMITTER) + marker(3, ABORTER, False)
       + marker(4, COMMITTER, True) + data_batch(5, 1, ABORTER) + marker(6, ABORTER, True) + data_batch(7, 2))


def kept(position: int, aborted) -> tuple[list[int], int]:
    scan = export.select_records(LOG, position, 100, None, None, aborted=aborted)
    offsets = []
    while True:
        try:
            offsets += [r.offset for r in next(scan)[1]]
        except StopIteration as stop:
            return offsets, stop.value


def test_aborted_records_are_dropped_and_committed_ones_kept():
    assert kept(0, AbortedTransactions([(ABORTER, 0)])) == ([2, 5, 7, 8], 9)


def test_read_uncommitted_keeps_every_record_and_no_marker():
    assert kept(0, None) == ([0, 1, 2, 5, 7, 8], 9)


def test_the_abort_marker_below_the_fetch_position_still_ends_the_aborted_transaction():
    assert kept(4, AbortedTransactions([(ABORTER, 0)])) == ([5, 7, 8], 9)


def test_a_commit_marker_does_not_end_an_aborted_transaction():
    """An aborted transaction listed from offset 5 (as if ABORTER's second one had been
    aborted): the commit marker at 6 is not its end, the batch at 5 is dropped."""
    rule = AbortedTransactions([(ABORTER, 5)])
    assert kept(0, rule) == ([0, 1, 2, 7, 8], 9)
    assert rule.aborting == {ABORTER}


def test_an_unknown_isolation_level_is_one_line():
    with pytest.raises(ToolError, match="read_uncommitted or read_committed, not 'snapshot'"):
        isolation_level("snapshot")
