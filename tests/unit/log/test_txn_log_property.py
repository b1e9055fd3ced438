"""Random histories of transactions against a model: a read_committed reader that follows
Kafka's consumer algorithm (the fetch's aborted-transaction list, abort markers) over the
log's reads gets exactly the committed and plain records below the model's LSO, through
restarts, crashes with damaged .txnindex files, and follower truncations."""

from __future__ import annotations

import random

import pytest

from kavka.log.partition import Partition
from kavka.log.partition_log import PartitionLog
from kavka.protocol import records
from kavka.protocol.control_records import read_marker
from kavka.protocol.record_codec import decode_records, encode_batch
from log_helpers import T0, topic_config

V = 9
TXN_PIDS = (1, 2, 3)
PLAIN_PID = 50


class Model:
    """The batches written, in order, and what read_committed must see of them."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, int, int, str, list[bytes]]] = []  # base, last, pid, kind, values

    def add(self, base: int, pid: int, kind: str, values: list[bytes]) -> None:
        self.batches.append((base, base + max(len(values), 1) - 1, pid, kind, values))

    def truncate(self, offset: int) -> None:
        self.batches = [b for b in self.batches if b[1] < offset]

    def next_sequence(self, pid: int) -> int:
        return sum(len(b[4]) for b in self.batches if b[2] == pid and b[3] in ("txn", "plain"))

    def open_transactions(self) -> dict[int, int]:
        first: dict[int, int] = {}
        for base, _last, pid, kind, _values in self.batches:
            if kind == "txn":
                first.setdefault(pid, base)
            elif kind in ("commit", "abort"):
                first.pop(pid, None)
        return first

    def lso(self, leo: int) -> int:
        return min(self.open_transactions().values(), default=leo)

    def committed(self, leo: int) -> list[bytes]:
        lso, pending, seen = self.lso(leo), {}, []
        for base, _last, pid, kind, values in self.batches:
            if kind == "plain":
                seen += [(base + i, v) for i, v in enumerate(values)]
            elif kind == "txn":
                pending.setdefault(pid, []).extend((base + i, v) for i, v in enumerate(values))
            elif kind == "commit":
                seen += pending.pop(pid, [])
            elif kind == "abort":
                pending.pop(pid, None)
        return [v for offset, v in sorted(seen) if offset < lso]


def read_committed(plog: PartitionLog, rng: random.Random) -> list[bytes]:
    """Kafka's consumer: fetch from the log start to the LSO in random-sized reads; in each,
    a producer's batches are aborted from its listed first offset until its abort marker."""
    position, values = plog.log_start_offset, []
    while position < plog.last_stable_offset:
        read = plog.read(position, rng.choice([100, 300, 1 << 20]), max_offset=plog.last_stable_offset)
        aborted = sorted(plog.aborted_transactions(position, read.upper_bound), key=lambda a: a[1])
        aborting: set[int] = set()
        data = b"".join(s.read() for s in read.slices)
        for pos, h in records.iter_batches(data):
            while aborted and aborted[0][1] <= h.last_offset:
                aborting.add(aborted.pop(0)[0])
            if h.is_control:
                marker = read_marker(data[pos:pos + h.size])
                if marker is not None and not marker.commit:
                    aborting.discard(h.producer_id)
            elif not (h.is_transactional and h.producer_id in aborting):
                values += [r.value for r in decode_records(data, pos) if r.offset >= position]
            position = max(position, h.next_offset)
    return values


def _open(directory, clock, segment_bytes: int, recover: bool = False) -> Partition:
    config = topic_config(segment_bytes=segment_bytes, index_interval_bytes=100)
    return Partition.open("t", 0, PartitionLog.open(directory, "t", 0, config, clock, recover))


def _crash(p: Partition, rng: random.Random) -> None:
    for segment in p.log.segments:
        segment.close()
    for path in p.log.path.glob("*.txnindex"):
        damage = rng.random()
        if damage < 0.3:
            path.unlink()
        elif damage < 0.5:
            path.write_bytes(path.read_bytes()[:-3])


@pytest.mark.parametrize("seed", range(25))
def test_read_committed_matches_the_model(tmp_path, clock, seed):
    rng = random.Random(seed)
    segment_bytes = rng.choice([300, 700, 5000])
    directory = tmp_path / "t-0"
    p, model = _open(directory, clock, segment_bytes), Model()
    for step in range(70):
        op = rng.random()
        pid = rng.choice(TXN_PIDS)
        if op < 0.45:
            values = [b"%d-%d-%d" % (pid, step, i) for i in range(rng.randint(1, 3))]
            batch = encode_batch([(b"k", v, T0, ()) for v in values], producer_id=pid, producer_epoch=0,
                                 base_sequence=model.next_sequence(pid), transactional=True)
            model.add(p.append_records(bytearray(batch), V, T0).base_offset, pid, "txn", values)
        elif op < 0.6:
            values = [b"plain-%d" % step]
            batch = encode_batch([(b"k", values[0], T0, ())], producer_id=PLAIN_PID, producer_epoch=0,
                                 base_sequence=model.next_sequence(PLAIN_PID))
            model.add(p.append_records(bytearray(batch), V, T0).base_offset, PLAIN_PID, "plain", values)
        elif op < 0.85:
            commit = rng.random() < 0.5
            offset = p.append_marker(pid, 0, commit, coordinator_epoch=0, now_ms=T0)
            model.add(offset, pid, "commit" if commit else "abort", [])
        elif op < 0.9:
            p.close()
            p = _open(directory, clock, segment_bytes)
        elif op < 0.95:
            _crash(p, rng)
            p = _open(directory, clock, segment_bytes, recover=True)
        elif model.batches:
            cut = rng.choice(model.batches)[0]
            p.truncate_to(cut)
            model.truncate(cut)
        leo = p.log.log_end_offset
        assert p.last_stable_offset == model.lso(leo), step
    assert read_committed(p.log, rng) == model.committed(p.log.log_end_offset)
    p.close()
