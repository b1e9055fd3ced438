"""Compacting __consumer_offsets keeps every group loadable with the same state."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "group"))  # the group tests' Harness

from group_helpers import Harness  # noqa: E402

from kavka.config import BrokerConfig  # noqa: E402
from kavka.group.coordinator import GroupCoordinator  # noqa: E402
from kavka.group.offsets_topic import TOPIC, OffsetsTopic  # noqa: E402
from kavka.log.cleaner import LogCleaner  # noqa: E402
from kavka.log.log_manager import LogManager  # noqa: E402
from cleaner_helpers import read_all  # noqa: E402

BROKER = {"log.cleaner.min.cleanable.ratio": "0", "log.cleaner.delete.retention.ms": "1000"}


@pytest.fixture
def world(tmp_path):
    h = Harness()
    config = BrokerConfig.from_strings(BROKER)
    manager = LogManager(tmp_path / "data", config, h.clock)
    manager.load()
    h.journal = OffsetsTopic(manager, 2, 900, h.clock)
    ids = iter(range(1, 10**6))
    h.coordinator = GroupCoordinator(h.config, h.clock, h.journal, new_uuid=lambda: str(next(ids)),
                                     topics=lambda: h.topics)
    yield h, manager, LogCleaner(manager, config, h.clock)
    manager.close()


def records_on_disk(manager) -> int:
    return sum(len(read_all(manager.partition(TOPIC, i).log)) for i in range(2))


def compact_everything(manager, cleaner) -> int:
    for index in range(2):
        manager.partition(TOPIC, index).log.roll()
    cleanings = 0
    while cleaner.clean_once() is not None and cleanings < 20:
        cleanings += 1
    return cleanings


@pytest.mark.parametrize("seed", range(4))
def test_groups_load_the_same_after_compaction(world, seed):
    h, manager, cleaner = world
    rng = random.Random(seed)
    groups = ["g1", "g2", "g3"]
    ids = h.stable_group("a", "b", group="g1")
    for step in range(120):
        group = rng.choice(groups[1:])
        action = rng.random()
        if action < 0.6:
            h.commit(group=group, offsets=[("t", rng.randrange(3), step)])
        elif action < 0.7:
            h.coordinator.delete_offsets(group, [("t", rng.randrange(3))])
        elif action < 0.75:
            h.coordinator.delete_groups([group])
        else:
            g = h.group("g1")
            h.commit(group="g1", generation=g.generation, member_id=ids["a"],
                     offsets=[("t", rng.randrange(3), step)], metadata=f"m{step}")
    live = h.coordinator.snapshot()
    assert h.rebuilt().snapshot() == live
    before = records_on_disk(manager)
    tombstones = [v for i in range(2) for _, _, v in read_all(manager.partition(TOPIC, i).log) if v is None]
    assert tombstones  # deleted offsets and groups
    assert compact_everything(manager, cleaner) > 0
    assert records_on_disk(manager) < before / 3
    assert h.rebuilt().snapshot() == live
    h.clock.advance(1001)  # tombstones' delete horizon passes; clean again
    expected = h.rebuilt().snapshot()
    assert compact_everything(manager, cleaner) > 0
    assert h.rebuilt().snapshot() == expected
    assert all(v is not None for i in range(2) for _, _, v in read_all(manager.partition(TOPIC, i).log))
