"""The coordinator against a reference model, over random request sequences (Hypothesis).

The reference is a direct transcription of Kafka's rules for transactions V1 (no epoch
exhaustion, no timeouts), kept deliberately naive.  After every request the coordinator's
answer must match the model's, and a coordinator rebuilt from the journal must hold exactly
the live state: load and live handling share ``replay``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from kavka.protocol.errors import ErrorCode as E
from kavka.txn.model import TxnState as S

from txn_helpers import make_coordinator

IDS = ["a", "b", "c"]
TPS = [("x", 0), ("x", 1), ("y", 0)]


@dataclass
class Ref:
    pid: int
    epoch: int = 0
    state: S = S.EMPTY
    parts: set = field(default_factory=set)


class Model:
    def __init__(self) -> None:
        self.ids: dict[str, Ref] = {}
        self.next_pid = 1000

    def init(self, tid):
        ref = self.ids.get(tid)
        if ref is None:
            self.ids[tid] = Ref(self.next_pid)
            self.next_pid += 1
            return E.none
        if ref.state in (S.PREPARE_COMMIT, S.PREPARE_ABORT):
            return E.concurrent_transactions
        ref.epoch += 1
        if ref.state == S.ONGOING:
            ref.state = S.PREPARE_ABORT
            return E.concurrent_transactions
        ref.state, ref.parts = S.EMPTY, set()
        return E.none

    def _check(self, tid, epoch):
        ref = self.ids.get(tid)
        if ref is None:
            return None, E.invalid_producer_id_mapping
        return ref, (E.producer_fenced if epoch != ref.epoch else None)

    def add(self, tid, epoch, tp):
        ref, error = self._check(tid, epoch)
        if error is None and ref.state in (S.PREPARE_COMMIT, S.PREPARE_ABORT):
            error = E.concurrent_transactions
        if error is not None:
            return error
        ref.state = S.ONGOING
        ref.parts.add(tp)
        return E.none

    def end(self, tid, epoch, commit):
        ref, error = self._check(tid, epoch)
        if error is not None:
            return error
        prepare, complete = (S.PREPARE_COMMIT, S.COMPLETE_COMMIT) if commit else (S.PREPARE_ABORT, S.COMPLETE_ABORT)
        if ref.state == S.ONGOING:
            ref.state = prepare
            return E.none
        if ref.state == prepare:
            return E.concurrent_transactions
        if ref.state == complete:
            return E.none
        return E.invalid_txn_state

    def complete(self, tid):
        ref = self.ids.get(tid)
        if ref is not None and ref.state in (S.PREPARE_COMMIT, S.PREPARE_ABORT):
            ref.state = S.COMPLETE_COMMIT if ref.state == S.PREPARE_COMMIT else S.COMPLETE_ABORT
            ref.parts = set()


requests = st.lists(st.tuples(
    st.sampled_from(["init", "add", "end", "complete", "reload"]),
    st.sampled_from(IDS), st.integers(-1, 0), st.sampled_from(TPS), st.booleans()), max_size=60)


@settings(max_examples=300, deadline=None)
@given(requests)
def test_coordinator_matches_the_reference_and_its_journal(ops):
    coordinator, journal, _ = make_coordinator()
    model = Model()
    jobs = {}
    for op, tid, delta, tp, commit in ops:
        ref = model.ids.get(tid)
        epoch = (ref.epoch if ref else 0) + delta
        pid = ref.pid if ref else 1000
        if op == "init":
            out = coordinator.init_producer_id(tid, 60_000)
            got, want = out.reply.error, model.init(tid)
        elif op == "add":
            out = coordinator.add_partitions(tid, pid, epoch, [tp])
            got, want = out.reply[tp], model.add(tid, epoch, tp)
        elif op == "end":
            out = coordinator.end_txn(tid, pid, epoch, commit)
            got, want = out.reply.error, model.end(tid, epoch, commit)
        elif op == "complete":
            job = jobs.pop(tid, None)
            if job is not None:
                coordinator.markers_written(job)
                model.complete(tid)
            continue
        else:
            rebuilt, _, _ = make_coordinator(journal=journal)
            assert rebuilt.ids == coordinator.ids
            continue
        assert got == want, (op, tid, delta)
        for job in out.markers:
            jobs[job.transactional_id] = job
        for name, ref in model.ids.items():
            meta = coordinator.ids[name]
            assert (meta.producer_id, meta.producer_epoch, meta.state, set(meta.partitions)) == \
                (ref.pid, ref.epoch, ref.state, ref.parts), name
