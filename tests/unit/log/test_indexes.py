"""Offset and time indexes against a sorted-list oracle."""

from __future__ import annotations

import bisect

import pytest
from hypothesis import given, settings, strategies as st

from kavka.log.index_file import CorruptIndex
from kavka.log.offset_index import OffsetIndex
from kavka.log.time_index import TimeIndex

BASE = 1000


@st.composite
def offset_entries(draw):
    """Strictly increasing (offset, position) pairs above BASE."""
    gaps = draw(st.lists(st.tuples(st.integers(1, 50), st.integers(1, 5000)), max_size=60))
    entries, offset, position = [], BASE, 0
    for d_off, d_pos in gaps:
        offset += d_off
        position += d_pos
        entries.append((offset, position))
    return entries


@settings(max_examples=60, deadline=None)
@given(entries=offset_entries(), targets=st.lists(st.integers(BASE - 5, BASE + 4000), max_size=30),
       cut=st.integers(BASE - 5, BASE + 4000))
def test_offset_index_matches_oracle(tmp_path_factory, entries, targets, cut):
    path = tmp_path_factory.mktemp("oi") / "00000000000000001000.index"
    index = OffsetIndex.create(path, BASE)
    for offset, position in entries:
        index.append(offset, position)
    offsets = [o for o, _ in entries]

    def oracle(target, entries=entries, offsets=offsets):
        i = bisect.bisect_right(offsets, target) - 1
        return entries[i] if i >= 0 else (BASE, 0)

    for target in targets + offsets:
        assert index.lookup(target) == oracle(target)
    index.close()
    reloaded = OffsetIndex.load(path, BASE)
    assert reloaded.entries() == entries
    reloaded.truncate_to(cut)
    kept = [e for e in entries if e[0] < cut]
    assert reloaded.entries() == kept
    reloaded.close()
    assert OffsetIndex.load(path, BASE).entries() == kept


def test_offset_index_floor_position(tmp_path):
    index = OffsetIndex.create(tmp_path / "x.index", 0)
    for offset, position in [(5, 100), (9, 250), (20, 900)]:
        index.append(offset, position)
    assert [index.floor_position(p) for p in (0, 99, 100, 249, 250, 5000)] == [0, 0, 100, 100, 250, 900]
    index.close()


@pytest.mark.parametrize("payload", [b"\x00" * 7, (b"\x00\x00\x00\x05\x00\x00\x00\x10" * 2),
                                     b"\x00\x00\x00\x05\x00\x00\x00\x10\x00\x00\x00\x04\x00\x00\x00\x20",
                                     b"\xff\xff\xff\xff\x00\x00\x00\x10"])
def test_offset_index_rejects_corrupt_files(tmp_path, payload):
    path = tmp_path / "x.index"
    path.write_bytes(payload)
    with pytest.raises(CorruptIndex):
        OffsetIndex.load(path, 0)


def test_offset_index_refuses_out_of_order_append(tmp_path):
    index = OffsetIndex.create(tmp_path / "x.index", 10)
    index.append(12, 100)
    for bad in [(12, 200), (13, 100), (9, 300), (10 + 2**31, 400)]:
        with pytest.raises(ValueError):
            index.append(*bad)
    index.close()


@st.composite
def time_entries(draw):
    """Candidate (timestamp, offset) appends; the index keeps only growing timestamps."""
    steps = draw(st.lists(st.tuples(st.integers(-20, 40), st.integers(0, 10)), max_size=60))
    out, ts, offset = [], 5000, BASE
    for d_ts, d_off in steps:
        ts += d_ts
        offset += d_off
        out.append((ts, offset))
    return out


@settings(max_examples=60, deadline=None)
@given(candidates=time_entries(), targets=st.lists(st.integers(4900, 6500), max_size=30),
       cut=st.integers(BASE, BASE + 700))
def test_time_index_matches_oracle(tmp_path_factory, candidates, targets, cut):
    path = tmp_path_factory.mktemp("ti") / "00000000000000001000.timeindex"
    index = TimeIndex.create(path, BASE)
    kept = []
    for ts, offset in candidates:
        appended = index.maybe_append(ts, offset)
        assert appended == (not kept or ts > kept[-1][0])
        if appended:
            kept.append((ts, offset))
    stamps = [t for t, _ in kept]

    def oracle(target):
        i = bisect.bisect_left(stamps, target) - 1  # greatest entry with T < target
        return kept[i] if i >= 0 else (-1, BASE)

    for target in targets + stamps:
        assert index.lookup(target) == oracle(target)
    index.close()
    reloaded = TimeIndex.load(path, BASE)
    assert reloaded.entries() == kept
    reloaded.truncate_to(cut)
    assert reloaded.entries() == [e for e in kept if e[1] < cut]
    reloaded.close()


@pytest.mark.parametrize("payload", [b"\x00" * 13,
                                     bytes(8) + b"\x00\x00\x00\x01" + bytes(8) + b"\x00\x00\x00\x02",
                                     (5).to_bytes(8, "big") + (3).to_bytes(4, "big")
                                     + (6).to_bytes(8, "big") + (2).to_bytes(4, "big")])
def test_time_index_rejects_corrupt_files(tmp_path, payload):
    path = tmp_path / "x.timeindex"
    path.write_bytes(payload)
    with pytest.raises(CorruptIndex):
        TimeIndex.load(path, 0)
