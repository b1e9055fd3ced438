"""Segment: append, read, lookups, recovery, truncation, deletion."""

from __future__ import annotations

import os

import pytest

from kavka.log.segment import FileSlice, Segment, segment_path
from kavka.protocol import records
from log_helpers import T0, make_batch, topic_config


def fill(segment: Segment, batches: int, count: int = 3, value_size: int = 20, start_ts: int = T0):
    """Append ``batches`` batches with contiguous offsets from the segment base; returns their bytes."""
    written = []
    for i in range(batches):
        batch = make_batch(count, start_ts + 10 * i, value_size)
        records.patch_base_offset(batch, 0, segment.next_offset)
        segment.append(batch, records.read_header(batch))
        written.append(bytes(batch))
    return written


def offsets_in(data: bytes) -> list[int]:
    return [h.base_offset for _, h in records.iter_batches(data)]


@pytest.fixture
def seg(tmp_path, clock):
    segment = Segment.create(tmp_path, 100, topic_config(index_interval_bytes=200), clock)
    yield segment
    segment.close()


def test_append_tracks_offsets_sizes_and_timestamps(seg):
    written = fill(seg, 10)
    assert seg.next_offset == 130
    assert seg.size == sum(map(len, written)) == os.path.getsize(seg.log_path)
    assert seg.max_timestamp == T0 + 92 and seg.offset_of_max_timestamp == 127
    assert seg.first_batch_timestamp == T0 + 2
    assert len(seg.offset_index) > 0  # sparse, but the interval is small
    for offset, position in seg.offset_index.entries():
        assert records.read_header(os.pread(seg.fd, 61, position)).base_offset == offset


def test_read_from_offset_inside_a_batch_returns_that_batch(seg):
    written = fill(seg, 10)
    for offset in range(100, 130):
        piece = seg.read(offset, 1)
        assert piece.read() == written[(offset - 100) // 3]  # at least one whole batch
    assert seg.read(130, 1000) is None


def test_read_honours_max_bytes_with_whole_batches(seg):
    written = fill(seg, 10)
    size = len(written[0])
    assert all(len(b) == size for b in written)
    for max_bytes in range(size, 10 * size + 5, 7):
        piece = seg.read(103, max_bytes)
        expected = min(max_bytes // size, 9)
        assert piece.size == expected * size
        assert piece.read() == b"".join(written[1 : 1 + expected])


def test_read_stops_before_max_position(seg):
    written = fill(seg, 10)
    limit = sum(map(len, written[:4]))
    piece = seg.read(100, 10_000, max_position=limit)
    assert offsets_in(piece.read()) == [100, 103, 106, 109]
    assert seg.read(112, 10_000, max_position=limit) is None


def test_find_offset_by_timestamp_matches_brute_force(seg):
    import random
    rnd = random.Random(7)
    stamps = []
    for _ in range(40):
        ts = [T0 + rnd.randint(0, 500) for _ in range(rnd.randint(1, 4))]
        batch = make_batch(len(ts), timestamps=ts)
        records.patch_base_offset(batch, 0, seg.next_offset)
        header = records.read_header(batch)
        seg.append(batch, header)
        stamps.append((header.base_offset, max(ts)))
    for target in range(T0 - 5, T0 + 510, 3):
        expected = next((base for base, mx in stamps if mx >= target), None)
        found = seg.find_offset_by_timestamp(target)
        assert (found[1].base_offset if found else None) == expected, target


def test_clean_reopen_restores_state_from_indexes(tmp_path, clock, seg):
    fill(seg, 25)
    state = (seg.next_offset, seg.size, seg.max_timestamp, seg.offset_of_max_timestamp,
             seg.offset_index.entries(), seg.time_index.entries())
    seg.close()
    again = Segment.open(tmp_path, 100, topic_config(index_interval_bytes=200), clock)
    assert (again.next_offset, again.size, again.max_timestamp, again.offset_of_max_timestamp,
            again.offset_index.entries(), again.time_index.entries()) == state
    again.close()


@pytest.mark.parametrize("damage", ["delete", "garbage", "truncate", "ahead"])
@pytest.mark.parametrize("suffix", [".index", ".timeindex"])
def test_missing_or_corrupt_index_is_rebuilt_on_clean_open(tmp_path, clock, seg, damage, suffix):
    fill(seg, 25)
    expected = (seg.offset_index.entries(), seg.time_index.entries(), seg.next_offset, seg.max_timestamp)
    seg.close()
    path = segment_path(tmp_path, 100, suffix)
    data = path.read_bytes()
    if damage == "delete":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(data + b"\x01\x02\x03")
    elif damage == "truncate":
        path.write_bytes(data[: len(data) // 2 + 1])
    else:  # an entry pointing past the end of the log
        path.write_bytes(data + (b"\x00\x00\x10\x00\x00\x10\x00\x00" if suffix == ".index"
                                 else b"\x7f" + bytes(7) + b"\x00\x00\x10\x00"))
    again = Segment.open(tmp_path, 100, topic_config(index_interval_bytes=200), clock)
    assert (again.offset_index.entries(), again.time_index.entries(), again.next_offset,
            again.max_timestamp) == expected
    again.close()


def reopen_recovered(tmp_path, clock):
    segment = Segment.open(tmp_path, 100, topic_config(index_interval_bytes=200), clock, recover=True)
    return segment


@pytest.mark.parametrize("cut", [1, 11, 60, 61, 100])
def test_recover_drops_a_torn_last_batch(tmp_path, clock, seg, cut):
    written = fill(seg, 10)
    good = sum(map(len, written[:9]))
    seg.close()
    with open(segment_path(tmp_path, 100, ".log"), "r+b") as f:
        f.truncate(good + cut)
    again = reopen_recovered(tmp_path, clock)
    assert again.size == good and again.next_offset == 127
    assert again.read(100, 10**6).read() == b"".join(written[:9])
    again.close()


def test_recover_drops_garbage_after_the_last_batch(tmp_path, clock, seg):
    written = fill(seg, 10)
    os.write(seg.fd, os.urandom(500))
    assert seg.recover() == 500
    assert seg.read(100, 10**6).read() == b"".join(written)
    assert seg.recover() == 0


def test_clean_open_of_a_torn_log_falls_back_to_recovery(tmp_path, clock, seg):
    written = fill(seg, 10)
    seg.close()
    with open(segment_path(tmp_path, 100, ".log"), "ab") as f:
        f.write(os.urandom(500))
    again = Segment.open(tmp_path, 100, topic_config(), clock)
    assert again.size == sum(map(len, written)) and again.next_offset == 130
    again.close()


@pytest.mark.parametrize("where", [17, 30, 70, -1])
def test_recover_drops_a_batch_with_a_flipped_byte(tmp_path, clock, seg, where):
    written = fill(seg, 10)
    seg.close()
    last_start = sum(map(len, written[:9]))
    path = segment_path(tmp_path, 100, ".log")
    data = bytearray(path.read_bytes())
    data[last_start + where if where >= 0 else where] ^= 0x40
    path.write_bytes(data)
    again = reopen_recovered(tmp_path, clock)
    assert again.size == last_start and again.next_offset == 127
    again.close()


def test_recover_rejects_a_batch_whose_offset_goes_backwards(tmp_path, clock, seg):
    fill(seg, 5)
    stale = make_batch(2)
    records.patch_base_offset(stale, 0, 101)  # the CRC does not cover baseOffset
    seg.append(stale, records.read_header(stale))
    seg.close()
    again = reopen_recovered(tmp_path, clock)
    assert again.next_offset == 115 and again.recover() == 0
    again.close()


def test_truncate_to_drops_whole_batches_and_rebuilds_state(tmp_path, clock, seg):
    written = fill(seg, 20)
    assert seg.truncate_to(131) == sum(map(len, written[10:]))  # 131 lies inside batch 130..132
    assert seg.next_offset == 130 and seg.max_timestamp == T0 + 92 and seg.offset_of_max_timestamp == 127
    assert all(o < 130 for o, _ in seg.offset_index.entries())
    assert seg.truncate_to(500) == 0
    batch = make_batch(1, T0 + 1)
    records.patch_base_offset(batch, 0, 130)
    seg.append(batch, records.read_header(batch))
    seg.close()
    again = reopen_recovered(tmp_path, clock)
    assert again.next_offset == 131 and again.size == sum(map(len, written[:10])) + len(batch)
    again.close()


def test_delete_keeps_in_flight_slices_readable(tmp_path, seg):
    written = fill(seg, 3)
    piece = seg.read(100, 10**6)
    seg.delete()
    assert sorted(os.listdir(tmp_path)) == []
    assert piece.read() == b"".join(written)  # the unlinked file stays readable through the slice
    fd = piece.fd
    del piece
    with pytest.raises(OSError):
        os.fstat(fd)  # the last holder closed it


def test_file_slice_reads_its_range(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(bytes(range(100)))
    fd = os.open(path, os.O_RDONLY)
    assert FileSlice(fd, 10, 5).read() == bytes(range(10, 15))
    os.close(fd)
