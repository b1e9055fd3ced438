"""Compaction keeps the aborted-transaction index: the first cleaning, which drops the aborted
records, keeps the entries of the markers it keeps, also when a crash interrupts the swap."""

from __future__ import annotations

import pytest

from kavka.log.partition_log import PartitionLog
from kavka.protocol.record_codec import encode_batch
from cleaner_helpers import Env
from txn_log_helpers import crash_cleaning_at

STEPS = ["swap", "deleted", "renamed"]


def scenario(env: Env) -> list[tuple[int, int]]:
    """Committed keys rewritten many times, with aborted transactions among them; returns
    the aborted transactions."""
    p, now = env.partition, env.clock.now_ms()
    for r in range(12):
        env.write(*[(b"k%d" % k, b"%d-%d" % (r, k) + bytes(15)) for k in range(3)])
        if r % 4 == 1:
            batch = encode_batch([(b"aborted-%d" % r, b"x" * 20, now, ())], producer_id=7, producer_epoch=0,
                                 base_sequence=r // 4, transactional=True)
            p.append_records(bytearray(batch), 9, now)
            p.append_marker(7, 0, commit=False, coordinator_epoch=0, now_ms=now)
    env.log.roll()
    aborted = env.log.aborted_transactions(0, env.log.log_end_offset)
    assert len(aborted) == 3
    return aborted


def test_a_cleaning_keeps_the_aborted_transactions(tmp_path):
    env = Env(tmp_path / "d")
    aborted = scenario(env)
    size = env.log.size_bytes
    env.cleaner.clean_once()
    assert env.log.size_bytes < size
    assert env.log.aborted_transactions(0, env.log.log_end_offset) == aborted
    env.reopen()
    assert env.log.aborted_transactions(0, env.log.log_end_offset) == aborted
    env.close()


@pytest.mark.parametrize("step", STEPS)
def test_a_crash_during_the_swap_keeps_the_aborted_transactions(tmp_path, step):
    env = Env(tmp_path / "d")
    aborted = scenario(env)
    crash_cleaning_at(env.cleaner, step)
    # kill -9: nothing is closed; open the directory again from what is on disk
    reopened = PartitionLog.open(env.log.path, "t", 0, env.log.config, env.clock, recover=False)
    try:
        assert reopened.aborted_transactions(0, reopened.log_end_offset) == aborted
    finally:
        reopened.close()
