"""``kavka serve`` with one crash point of the commit path armed, for test_txn_commit_crash.py.

    python txn_crash_launcher.py POINT TRANSACTIONAL_ID serve --data-dir ... (kavka's own arguments)

The broker is started exactly as ``python -m kavka`` starts it, after this launcher has
wrapped one function of kavka so that the process SIGKILLs itself (no shutdown code runs, as
with ``kill -9``) at POINT of TRANSACTIONAL_ID's transaction; production code has no hook.
POINT is one of

* ``prepare`` -- right after the PrepareCommit/PrepareAbort record is appended to
  ``__transaction_state`` (``TransactionStateTopic.append``), before any marker;
* ``marker:N`` -- right after the N-th marker of the transaction is appended to its partition
  (``txn.local_markers.write_marker``), the others not yet written;
* ``complete`` -- when CompleteCommit/CompleteAbort is about to be appended, every marker
  written.
"""

from __future__ import annotations

import os
import signal
import sys


def crash() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _its_records(records, transactional_id: str, states) -> bool:
    return any(tid == transactional_id and meta is not None and meta.state in states for tid, meta in records)


def arm_journal(transactional_id: str, before: bool) -> None:
    """Crash around the journal append of the transaction's Prepare* (after it) or Complete*
    (before it) record."""
    from kavka.txn.model import TxnState
    from kavka.txn.state_topic import TransactionStateTopic
    original = TransactionStateTopic.append
    states = ((TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT) if before
              else (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT))

    def append(self, partition, records):
        if before and _its_records(records, transactional_id, states):
            crash()
        end = original(self, partition, records)
        if not before and _its_records(records, transactional_id, states):
            crash()
        return end

    TransactionStateTopic.append = append


def arm_markers(transactional_id: str, count: int) -> None:
    """Crash once ``count`` markers of the transaction are in their partitions."""
    from kavka.txn import local_markers
    original = local_markers.write_marker
    written = []

    def write_marker(logs, clock, job, tp, *rest):
        code = original(logs, clock, job, tp, *rest)
        if job.transactional_id == transactional_id:
            written.append(tp)
            if len(written) == count:
                crash()
        return code

    local_markers.write_marker = write_marker


def arm(point: str, transactional_id: str) -> None:
    if point == "prepare":
        arm_journal(transactional_id, before=False)
    elif point == "complete":
        arm_journal(transactional_id, before=True)
    elif point.startswith("marker:"):
        arm_markers(transactional_id, int(point.removeprefix("marker:")))
    else:
        raise SystemExit(f"unknown crash point {point!r}")


def main(argv: list[str]) -> int:
    point, transactional_id, *serve = argv
    from kavka.cli import keep_kio_from_loading_hypothesis, run
    keep_kio_from_loading_hypothesis()
    arm(point, transactional_id)
    sys.argv = ["kavka", *serve]
    return run()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
