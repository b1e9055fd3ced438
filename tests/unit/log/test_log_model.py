"""Random operation sequences against an in-memory model of the log (seeded, reproducible).

The model is a list of batches (bytes as written, with their offsets and record
timestamps) plus the log start offset.  Every operation is applied to both; reads,
timestamp lookups and offsets must agree after each one.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import pytest

from kavka.log.partition_log import PartitionLog
from kavka.protocol import records
from log_helpers import T0, make_batch, topic_config


@dataclass
class ModelBatch:
    base: int
    last: int
    data: bytes
    stamps: list[tuple[int, int]]  # (offset, timestamp) of each record


class Model:
    def __init__(self) -> None:
        self.batches: list[ModelBatch] = []
        self.log_start = 0
        self.leo = 0

    def expected_read(self, offset, max_bytes, max_offset, min_one) -> list[bytes]:
        end = self.leo if max_offset is None else min(max_offset, self.leo)
        out, used = [], 0
        for b in self.batches:
            if b.last < offset:
                continue
            if b.last >= end or (used + len(b.data) > max_bytes and (out or not min_one)):
                break
            out.append(b.data)
            used += len(b.data)
        return out if offset < end else []

    def offset_for_timestamp(self, target):
        stamps = (s for b in self.batches for s in b.stamps)
        return next(((o, t) for o, t in stamps if o >= self.log_start and t >= target), None)

    def truncate_to(self, offset) -> None:
        dropped = [b for b in self.batches if b.last >= offset]
        if dropped:
            self.leo = dropped[0].base
            self.batches = self.batches[: len(self.batches) - len(dropped)]
            self.log_start = min(self.log_start, self.leo)

    def drop_below(self, first_segment_base) -> None:
        self.batches = [b for b in self.batches if b.base >= first_segment_base]


def read_all(plog, offset, max_bytes, max_offset=None, min_one=True) -> list[bytes]:
    data = b"".join(s.read() for s in plog.read(offset, max_bytes, max_offset, min_one).slices)
    return [data[p : p + h.size] for p, h in records.iter_batches(data)]


class Runner:
    def __init__(self, rnd: random.Random, directory, clock) -> None:
        self.rnd, self.directory, self.clock = rnd, directory, clock
        self.config = topic_config(segment_bytes=rnd.choice([300, 700, 2000]),
                                   index_interval_bytes=rnd.choice([0, 64, 300]))
        self.model = Model()
        self.log = self.open(recover=False)

    def open(self, recover):
        return PartitionLog.open(self.directory, "t", 0, self.config, self.clock, recover)

    def append(self):
        rnd = self.rnd
        stamps = [T0 + rnd.randint(0, 2000) for _ in range(rnd.randint(1, 4))]
        batch = make_batch(len(stamps), timestamps=stamps, value_size=rnd.choice([0, 20, 120, 900]))
        info = self.log.append(batch)
        assert info.base_offset == self.model.leo
        self.model.batches.append(ModelBatch(info.base_offset, info.last_offset, bytes(batch),
                                             [(info.base_offset + i, t) for i, t in enumerate(stamps)]))
        self.model.leo = info.last_offset + 1

    def read(self):
        rnd, m = self.rnd, self.model
        offset = rnd.randint(m.log_start, m.leo)
        max_bytes = rnd.choice([1, 100, 500, 3000, 10**6])
        max_offset = rnd.choice([None, rnd.randint(m.log_start, m.leo + 3)])
        min_one = rnd.random() < 0.8
        assert read_all(self.log, offset, max_bytes, max_offset, min_one) == \
            m.expected_read(offset, max_bytes, max_offset, min_one)

    def timestamp(self):
        target = T0 + self.rnd.randint(-5, 2005)
        assert self.log.offset_for_timestamp(target) == self.model.offset_for_timestamp(target)

    def truncate(self):
        offset = self.rnd.randint(self.model.log_start, self.model.leo)
        self.log.truncate_to(offset)
        self.model.truncate_to(offset)

    def roll(self):
        self.log.roll()

    def reopen(self):
        self.log.close()
        self.log = self.open(recover=self.rnd.random() < 0.5)

    def crash(self):
        for segment in self.log.segments:
            segment.close()  # kill -9: no flush, no recovery point
        logs = sorted(p for p in self.directory.iterdir() if p.suffix == ".log")
        if self.rnd.random() < 0.5:
            with open(logs[-1], "ab") as f:
                f.write(os.urandom(self.rnd.randint(1, 200)))  # a torn write after the last batch
        if self.rnd.random() < 0.3:
            index = logs[-1].with_suffix(".index")
            index.write_bytes(index.read_bytes()[:-3])
        self.log = self.open(recover=True)

    def retention(self):
        m = self.model
        old_log_start = m.log_start
        self.log.delete_segments_before(self.rnd.randint(m.log_start, m.leo))
        first_base = self.log.segments[0].base_offset
        m.drop_below(first_base)
        m.log_start = max(old_log_start, first_base)

    def delete_records(self):
        m = self.model
        m.log_start = self.rnd.randint(m.log_start, m.leo)
        self.log.set_log_start_offset(m.log_start)
        m.drop_below(self.log.segments[0].base_offset)

    def check(self):
        m, log = self.model, self.log
        assert (log.log_start_offset, log.high_watermark, log.log_end_offset) == (m.log_start, m.leo, m.leo)
        assert read_all(log, m.log_start, 10**9) == [b.data for b in m.batches if b.last >= m.log_start]


OPERATIONS = [("append", 45), ("read", 20), ("timestamp", 6), ("truncate", 5), ("roll", 3),
              ("reopen", 5), ("crash", 5), ("retention", 4), ("delete_records", 3)]


@pytest.mark.parametrize("seed", range(12))
def test_random_operations_agree_with_the_model(tmp_path, clock, seed):
    rnd = random.Random(seed)
    runner = Runner(rnd, tmp_path / "t-0", clock)
    names, weights = zip(*OPERATIONS)
    for step in range(250):
        name = rnd.choices(names, weights)[0]
        getattr(runner, name)()
        clock.advance(rnd.randint(0, 50))
        if step % 10 == 0:
            runner.check()
    runner.check()
    runner.log.close()
