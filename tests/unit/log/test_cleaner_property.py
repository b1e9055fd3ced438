"""Property: any keyed writes, tombstones and rolls, compacted, leave the newest value per live key."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from cleaner_helpers import Env, is_subsequence, latest, read_all
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

KEYS = [b"a", b"b", b"c", b"d", b"e", b"f"]
RETENTION = 1000  # delete.retention.ms of the test topic (cleaner_helpers.COMPACT)

write = st.tuples(st.just("write"), st.sampled_from(KEYS),
                  st.one_of(st.none(), st.binary(min_size=0, max_size=40)), st.sampled_from([0, 0, 1, 3, 4]))
roll = st.tuples(st.just("roll"))
clean = st.tuples(st.just("clean"), st.sampled_from([0, 10, 500, 1001]))
operations = st.lists(st.one_of(write, write, write, roll, clean), min_size=1, max_size=60)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_compaction_keeps_the_newest_value_of_every_live_key(ops):
    with tempfile.TemporaryDirectory() as tmp:
        env = Env(Path(tmp) / "data")
        try:
            run(env, ops)
        finally:
            env.close()


def run(env: Env, ops) -> None:
    written: list[tuple[int, bytes, bytes | None]] = []
    stamped: dict[int, int] = {}  # tombstone offset -> time of the first cleaning that covered it
    for op in ops:
        if op[0] == "write":
            _, key, value, codec = op
            info = env.write((key, value), codec=codec)
            written.append((info.base_offset, key, value))
        elif op[0] == "roll":
            env.log.roll()
        else:
            env.clock.advance(op[1])
            cleaned = env.cleaner.clean_once() is not None
            now = read_all(env.log)
            assert latest(now) == latest(written)
            assert is_subsequence(now, written)
            assert_young_tombstones_kept(env, written, stamped, now)
            if cleaned:
                active = env.log.segments[-1].base_offset
                for offset, _, value in now:
                    if value is None and offset < active:
                        stamped.setdefault(offset, env.clock.now_ms())
    # Finally: everything into closed segments, clean (stamping tombstones), wait out
    # delete.retention.ms, clean again: exactly the newest record of each live key is left.
    env.log.roll()
    env.cleaner.clean_once()
    for offset in (o for o, _, value in read_all(env.log) if value is None):
        stamped.setdefault(offset, env.clock.now_ms())
    env.clock.advance(RETENTION - 1)
    info = env.write((b"other", b"x"))  # something dirty, so that a cleaning runs before the horizon
    written.append((info.base_offset, b"other", b"x"))
    env.log.roll()
    env.cleaner.clean_once()
    assert_young_tombstones_kept(env, written, stamped, read_all(env.log))
    env.clock.advance(2)
    for _ in range(3):
        if env.cleaner.clean_once() is None:
            break
    newest = {key: (offset, value) for offset, key, value in written}
    expected = sorted((o, k, v) for k, (o, v) in newest.items() if v is not None)
    assert read_all(env.log) == expected
    assert env.log.log_end_offset == written[-1][0] + 1
    env.reopen()
    assert read_all(env.log) == expected


def assert_young_tombstones_kept(env: Env, written, stamped: dict[int, int], now) -> None:
    """A key's newest record, if a tombstone, stays until delete.retention.ms after it was first cleaned."""
    present = {offset for offset, _, _ in now}
    newest = {key: (offset, value) for offset, key, value in written}
    for offset, value in newest.values():
        if value is None and env.clock.now_ms() < stamped.get(offset, 2**62) + RETENTION:
            assert offset in present, f"tombstone at {offset} dropped before its delete horizon"
