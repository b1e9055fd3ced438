"""Leader epoch cache: assignment rules, OffsetForLeaderEpoch answers, the checkpoint file."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from kavka.log.leader_epoch import LeaderEpochCache


def cache_with(tmp_path, entries):
    cache = LeaderEpochCache(tmp_path / "leader-epoch-checkpoint")
    for epoch, start in entries:
        cache.assign(epoch, start)
    return cache


def test_checkpoint_round_trip_uses_kafkas_text_layout(tmp_path):
    cache = cache_with(tmp_path, [(0, 0), (3, 150), (4, 170)])
    assert cache.path.read_text() == "0\n3\n0 0\n3 150\n4 170\n"
    assert LeaderEpochCache.load(cache.path).entries() == [(0, 0), (3, 150), (4, 170)]


@pytest.mark.parametrize("text", ["", "1\n1\n0 0\n", "0\n2\n0 0\n", "0\n1\nx y\n", "0\n2\n3 5\n2 9\n",
                                  "0\n2\n1 5\n2 5\n"])
def test_malformed_checkpoint_loads_as_none(tmp_path, text):
    path = tmp_path / "leader-epoch-checkpoint"
    path.write_text(text)
    assert LeaderEpochCache.load(path) is None
    assert LeaderEpochCache.load(tmp_path / "missing") is None


def test_assign_ignores_repeats_and_replaces_empty_epochs(tmp_path):
    cache = cache_with(tmp_path, [(1, 0)])
    assert not cache.assign(1, 10)  # same epoch, later offset: nothing new
    assert cache.assign(2, 10)
    assert cache.assign(3, 10)  # epoch 2 wrote nothing: 3 replaces it
    assert cache.entries() == [(1, 0), (3, 10)]
    assert LeaderEpochCache.load(cache.path).entries() == [(1, 0), (3, 10)]
    with pytest.raises(ValueError):
        cache.assign(-1, 5)


def test_end_offset_for_epoch(tmp_path):
    cache = cache_with(tmp_path, [(1, 10), (3, 50), (6, 90)])
    leo = 120
    assert cache.end_offset_for(6, leo) == (6, 120)  # latest epoch: the log end
    assert cache.end_offset_for(3, leo) == (3, 90)
    assert cache.end_offset_for(4, leo) == (3, 90)  # unknown epoch: the largest below it
    assert cache.end_offset_for(1, leo) == (1, 50)
    assert cache.end_offset_for(0, leo) == (0, 10)  # older than all: where our history starts
    assert cache.end_offset_for(7, leo) == (-1, -1)
    assert cache.end_offset_for(-1, leo) == (-1, -1)
    assert LeaderEpochCache(tmp_path / "e").end_offset_for(0, 5) == (-1, -1)


def test_truncation_from_both_ends(tmp_path):
    cache = cache_with(tmp_path, [(1, 10), (3, 50), (6, 90)])
    cache.truncate_from_end(90)
    assert cache.entries() == [(1, 10), (3, 50)]
    cache.truncate_from_start(60)
    assert cache.entries() == [(3, 60)]
    assert LeaderEpochCache.load(cache.path).entries() == [(3, 60)]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 20)), min_size=1, max_size=12),
       st.integers(-1, 40), st.integers(0, 400))
def test_end_offset_for_matches_a_brute_force_oracle(tmp_path_factory, steps, requested, extra):
    epochs, starts, epoch, start = [], [], 0, 0
    for d_epoch, d_start in steps:
        epoch, start = epoch + d_epoch + 1, start + d_start + 1
        epochs.append(epoch)
        starts.append(start)
    cache = LeaderEpochCache(tmp_path_factory.mktemp("e") / "cp")  # no fsync per example
    for entry in zip(epochs, starts):
        cache.assign(*entry, persist=False)
    leo = starts[-1] + extra
    # Oracle: offsets of each epoch are [start, next start); answer the end of the
    # largest epoch <= requested, i.e. the first offset written by a newer epoch.
    if requested < 0 or requested > epochs[-1]:
        expected = (-1, -1)
    elif requested == epochs[-1]:
        expected = (requested, leo)
    else:
        newer = min(i for i, e in enumerate(epochs) if e > requested)
        older = [e for e in epochs if e <= requested]
        expected = (older[-1] if older else requested, starts[newer])
    assert cache.end_offset_for(requested, leo) == expected
