"""A crash at any step of a cleaning leaves a log that opens and still holds the right records."""

from __future__ import annotations

import os

import pytest

from kavka.log.partition_log import PartitionLog
from cleaner_helpers import Env, is_subsequence, latest, read_all

STEPS = ["map", "cleaned", "swap", "deleted", "renamed", "checkpoint"]


class Crash(Exception):
    pass


def scenario(env: Env) -> None:
    for r in range(14):
        env.write(*[(b"k%d" % k, b"%d-%d" % (r, k) + bytes(15)) for k in range(3 + r % 3)])
        if r == 6:
            env.write((b"k1", None))
    env.log.roll()


@pytest.mark.parametrize("step, nth", [(s, 1) for s in STEPS] + [(s, 2) for s in STEPS if s not in ("map", "checkpoint")])
def test_crash_after_each_step(tmp_path, step, nth):
    reference = Env(tmp_path / "reference")
    scenario(reference)
    reference.cleaner.clean_once()
    cleaned = read_all(reference.log)
    reference.close()

    env = Env(tmp_path / "crashing")
    scenario(env)
    original = read_all(env.log)
    seen = []

    def hook(name):
        seen.append(name)
        if name == step and seen.count(name) == nth:
            raise Crash(name)

    try:
        env.cleaner.clean_once(hook=hook)
    except Crash:
        pass
    else:
        raise AssertionError(f"the cleaning had only {seen.count(step)} {step!r} steps: {seen}")
    # kill -9: nothing is closed or flushed; open the directory again from what is on disk
    directory = env.log.path
    config = env.log.config
    reopened = PartitionLog.open(directory, "t", 0, config, env.clock, recover=True)
    try:
        recovered = read_all(reopened)
        assert latest(recovered) == latest(original) == latest(cleaned)
        assert is_subsequence(recovered, original)     # nothing invented, offsets unchanged
        assert is_subsequence(cleaned, recovered)      # nothing the cleaning keeps was lost
        assert reopened.log_end_offset == env.log.log_end_offset
        leftovers = [n for n in os.listdir(directory) if n.endswith((".cleaned", ".swap", ".deleted"))]
        assert not leftovers
    finally:
        reopened.close()
