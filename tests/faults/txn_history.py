"""A Jepsen-style history of transactional writes and reads, and the checker over it.

The workload (``txn_workload.py``) records every operation in a :class:`History`, as Jepsen
does: a transaction is an ``invoke`` (the values it will write, each to a partition, and
whether it means to commit) followed by one completion of the same transaction, ``ok``
(committed: ``commit_transaction`` returned), ``fail`` (definitely not committed: aborted,
or never sent to commit) or ``info`` (indeterminate: a commit was attempted and its answer
was lost); a completion carries the (partition, offset) each delivery report gave.  A read
is a ``poll`` op: what one reader (read_committed or read_uncommitted) consumed, in
consumption order; ``final`` reads ran after every transaction completed and read every
partition to its end.

:func:`check` judges a history and returns every anomaly it finds, by kind:

* ``aborted-read`` -- read_committed saw a value of a failed (aborted) transaction;
* ``uncommitted-read`` -- read_committed saw a value of a transaction that never completed
  (only invoked), so it cannot have been committed;
* ``phantom-read`` -- a reader saw a value no transaction wrote;
* ``lost-write`` -- a final read (either isolation) misses a value of a committed transaction;
* ``partial-txn`` -- a final read_committed read shows some, not all, values of a transaction
  (committed or indeterminate: either way it is all or nothing);
* ``duplicate`` -- one reader saw a value twice, or a value sits at two places of the log;
* ``inconsistent-offset`` -- two values at one (partition, offset), or a value read at
  another place than its delivery report named;
* ``nonmonotonic-offset`` -- a reader's offsets in a partition do not strictly increase;
* ``producer-order`` -- under read_committed, one producer's values in a partition are not in
  the order it wrote them (transaction after transaction, send after send).

The history knows nothing of brokers: a lone broker and a cluster are checked alike.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

READ_COMMITTED, READ_UNCOMMITTED = "read_committed", "read_uncommitted"
INVOKE, OK, FAIL, INFO = "invoke", "ok", "fail", "info"
KINDS = ("aborted-read", "uncommitted-read", "phantom-read", "lost-write", "partial-txn", "duplicate",
         "inconsistent-offset", "nonmonotonic-offset", "producer-order")


@dataclass(frozen=True)
class Write:
    partition: int
    value: bytes


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    value: bytes


@dataclass
class Op:
    """One line of the history.  ``f`` is "txn" (``txn`` names the transaction) or "poll"."""

    index: int
    time: float
    process: str
    type: str
    f: str
    txn: int | None = None
    writes: tuple[Write, ...] = ()
    commit: bool = True                                    # txn invoke: the intent
    acks: dict[bytes, tuple[int, int]] = field(default_factory=dict)   # txn completion
    records: tuple[Record, ...] = ()                       # poll: what was read
    isolation: str | None = None
    final: bool = False
    error: str | None = None


@dataclass
class Txn:
    """A transaction as the checker sees it: its invoke and (if any) its completion."""

    txn: int
    process: str
    seq: int                       # its place among the process's transactions
    writes: tuple[Write, ...]
    status: str = INVOKE
    acks: dict[bytes, tuple[int, int]] = field(default_factory=dict)


class History:
    """The ops of a run, appended from any thread."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self._lock = threading.Lock()
        self._next_txn = 0

    def _append(self, **fields) -> Op:
        with self._lock:
            op = Op(index=len(self.ops), time=time.monotonic(), **fields)
            self.ops.append(op)
            return op

    def invoke(self, process: str, writes, commit: bool) -> int:
        with self._lock:
            txn, self._next_txn = self._next_txn, self._next_txn + 1
        self._append(process=process, type=INVOKE, f="txn", txn=txn,
                     writes=tuple(Write(p, v) for p, v in writes), commit=commit)
        return txn

    def complete(self, process: str, txn: int, outcome: str, acks: dict | None = None,
                 error: str | None = None) -> None:
        assert outcome in (OK, FAIL, INFO), outcome
        self._append(process=process, type=outcome, f="txn", txn=txn, acks=dict(acks or {}), error=error)

    def poll(self, process: str, isolation: str, records, final: bool) -> None:
        self._append(process=process, type=OK, f="poll", isolation=isolation, final=final,
                     records=tuple(Record(p, o, v) for p, o, v in records))

    def transactions(self) -> dict[int, Txn]:
        return transactions(self.ops)


def transactions(ops: list[Op]) -> dict[int, Txn]:
    """The transactions of ``ops``, each with its final status."""
    txns: dict[int, Txn] = {}
    seqs: Counter = Counter()
    for op in ops:
        if op.f != "txn":
            continue
        if op.type == INVOKE:
            txns[op.txn] = Txn(op.txn, op.process, seqs[op.process], op.writes)
            seqs[op.process] += 1
        else:
            txns[op.txn].status = op.type
            txns[op.txn].acks = op.acks
    return txns


@dataclass
class Report:
    anomalies: dict[str, list[str]]
    counts: dict[str, int]

    @property
    def valid(self) -> bool:
        return not any(self.anomalies.values())

    def summary(self) -> str:
        found = {k: v for k, v in self.anomalies.items() if v}
        lines = [f"history: {self.counts}"]
        for kind, items in found.items():
            lines.append(f"{kind}: {len(items)}, e.g. " + "; ".join(items[:5]))
        return "\n".join(lines)


def check(ops: list[Op]) -> Report:
    """Every anomaly of the history ``ops`` (see the module docstring)."""
    txns = transactions(ops)
    owner = {w.value: (t, i) for t in txns.values() for i, w in enumerate(t.writes)}
    readers: dict[str, list[Op]] = defaultdict(list)
    for op in ops:
        if op.f == "poll":
            readers[op.process].append(op)
    found: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for process, polls in readers.items():
        _check_reader(process, polls, owner, found)
    _check_places(readers, txns, found)
    _check_final(readers, txns, found)
    counts = dict(Counter(t.status for t in txns.values()))
    counts["readers"] = len(readers)
    counts["records read"] = sum(len(op.records) for polls in readers.values() for op in polls)
    return Report(found, counts)


def _check_reader(process: str, polls: list[Op], owner: dict, found: dict) -> None:
    """What one reader saw, in order: visibility, duplicates, offsets, producer order."""
    isolation = polls[0].isolation
    seen: Counter = Counter()
    last_offset: dict[int, int] = {}
    last_write: dict[tuple[int, str], tuple[int, int]] = {}   # (partition, process) -> (seq, index)
    for op in polls:
        for rec in op.records:
            where = f"{process} p{rec.partition}@{rec.offset} {rec.value!r}"
            seen[rec.value] += 1
            if seen[rec.value] == 2:
                found["duplicate"].append(f"{where} seen again")
            previous = last_offset.get(rec.partition)
            if previous is not None and rec.offset <= previous:
                found["nonmonotonic-offset"].append(f"{where} after offset {previous}")
            last_offset[rec.partition] = rec.offset
            if rec.value not in owner:
                found["phantom-read"].append(f"{where}: no transaction wrote it")
                continue
            txn, index = owner[rec.value]
            if isolation != READ_COMMITTED:
                continue
            if txn.status == FAIL:
                found["aborted-read"].append(f"{where} of aborted txn {txn.txn}")
            elif txn.status == INVOKE:
                found["uncommitted-read"].append(f"{where} of txn {txn.txn}, which never completed")
            key = (rec.partition, txn.process)
            position = (txn.seq, index)
            if key in last_write and position <= last_write[key]:
                found["producer-order"].append(f"{where} (txn {txn.seq} of {txn.process}, write {index}) "
                                               f"after write {last_write[key]}")
            last_write[key] = max(position, last_write.get(key, position))


def _check_places(readers: dict[str, list[Op]], txns: dict[int, Txn], found: dict) -> None:
    """One value per (partition, offset), one place per value, and that place is its ack's."""
    values_at: dict[tuple[int, int], set] = defaultdict(set)
    places_of: dict[bytes, set] = defaultdict(set)
    for polls in readers.values():
        for op in polls:
            for rec in op.records:
                values_at[(rec.partition, rec.offset)].add(rec.value)
                places_of[rec.value].add((rec.partition, rec.offset))
    for (partition, offset), values in sorted(values_at.items()):
        if len(values) > 1:
            found["inconsistent-offset"].append(f"p{partition}@{offset} holds {sorted(values)!r}")
    for value, places in places_of.items():
        if len(places) > 1:
            found["duplicate"].append(f"{value!r} stored at {sorted(places)}")
    for txn in txns.values():
        for value, place in txn.acks.items():
            if places_of.get(value, {tuple(place)}) != {tuple(place)}:
                found["inconsistent-offset"].append(
                    f"{value!r} acknowledged at p{place[0]}@{place[1]}, read at {sorted(places_of[value])}")


def _check_final(readers: dict[str, list[Op]], txns: dict[int, Txn], found: dict) -> None:
    """Final reads: every committed value is there; read_committed shows each transaction
    whole or not at all."""
    for process, polls in readers.items():
        finals = [op for op in polls if op.final]
        if not finals:
            continue
        seen = {rec.value for op in finals for rec in op.records}
        committed = polls[0].isolation == READ_COMMITTED
        for txn in txns.values():
            missing = [w.value for w in txn.writes if w.value not in seen]
            if txn.status == OK and missing:
                found["lost-write"].append(f"{process} misses {len(missing)} of committed txn {txn.txn}, "
                                           f"e.g. {missing[0]!r}")
            if committed and txn.status in (OK, INFO) and 0 < len(missing) < len(txn.writes):
                found["partial-txn"].append(f"{process} sees {len(txn.writes) - len(missing)} of "
                                            f"{len(txn.writes)} values of {txn.status} txn {txn.txn}")
