"""Reopening a partition after crashes: torn tails, corruption, recovery point, leftovers."""

from __future__ import annotations

import os

import pytest

from kavka.log.partition_log import PartitionLog
from kavka.protocol import records
from kavka.protocol.record_codec import encode_batch
from log_helpers import T0, all_batches, make_batch, topic_config

CONFIG = dict(segment_bytes=600, index_interval_bytes=100)


def open_log(directory, clock, recover):
    return PartitionLog.open(directory, "t", 0, topic_config(**CONFIG), clock, recover)


@pytest.fixture
def crashed(tmp_path, clock):
    """A partition of 40 batches, abandoned without close or flush (kill -9)."""
    directory = tmp_path / "t-0"
    plog = open_log(directory, clock, recover=False)
    for i in range(40):
        plog.append(make_batch(3, T0 + i, 30))
    written = all_batches(plog)
    segments = [s.base_offset for s in plog.segments]
    for segment in plog.segments:
        segment.close()  # the process is gone: nothing was flushed
    return directory, written, segments


def last_log(directory):
    return sorted(p for p in directory.iterdir() if p.suffix == ".log")[-1]


def test_kill_without_flush_loses_nothing(crashed, clock):
    directory, written, _ = crashed
    plog = open_log(directory, clock, recover=True)
    assert all_batches(plog) == written and plog.log_end_offset == 120
    plog.close()


@pytest.mark.parametrize("damage", ["torn", "garbage", "flip"])
def test_recovery_drops_exactly_the_damaged_tail(crashed, clock, damage):
    directory, written, _ = crashed
    path = last_log(directory)
    data = bytearray(path.read_bytes())
    if damage == "torn":
        data = data[: len(data) - 5]
        keep = written[:-1]
    elif damage == "garbage":
        data += b"\x00\x00\x00\x00\x00\x00\x00\x78\x00\x00\x00\x40" + os.urandom(80)
        keep = written
    else:
        data[-len(written[-1]) + 40] ^= 1  # inside the last batch's CRC-covered part
        keep = written[:-1]
    path.write_bytes(data)
    plog = open_log(directory, clock, recover=True)
    assert all_batches(plog) == keep
    assert plog.log_end_offset == 3 * len(keep)
    assert plog.append(make_batch(1)).base_offset == 3 * len(keep)
    plog.close()


def test_corruption_in_an_unflushed_middle_segment_drops_what_follows(crashed, clock):
    directory, written, segments = crashed
    middle = directory / f"{segments[3]:020d}.log"
    data = bytearray(middle.read_bytes())
    data[100] ^= 0xFF
    middle.write_bytes(data)
    plog = open_log(directory, clock, recover=True)
    assert [s.base_offset for s in plog.segments] == segments[:4]
    kept = all_batches(plog)
    assert kept == written[: len(kept)] and plog.log_end_offset < segments[4]
    plog.close()


def test_segments_below_the_recovery_point_are_trusted(tmp_path, clock):
    directory = tmp_path / "t-0"
    plog = open_log(directory, clock, recover=False)
    for i in range(40):
        plog.append(make_batch(3, T0 + i, 30))
    plog.flush()
    first = plog.segments[0]
    size = first.size
    plog.close()
    # Damage a flushed segment: with a recovery point it is not re-validated.
    path = directory / "00000000000000000000.log"
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    before = path.stat()
    path.write_bytes(data)
    # ... unless it was modified after the checkpoint (test_segment_corruption): keep its mtime.
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    trusted = open_log(directory, clock, recover=True)
    assert trusted.segments[0].size == size and trusted.log_end_offset == 120
    trusted.close()
    (directory / "recovery-point").unlink()
    checked = open_log(directory, clock, recover=True)
    assert checked.segments[0].size < size and len(checked.segments) == 1
    checked.close()


def test_missing_index_files_are_rebuilt_without_recovery(crashed, clock):
    directory, written, _ = crashed
    for path in directory.iterdir():
        if path.suffix in (".index", ".timeindex"):
            path.unlink()
    plog = open_log(directory, clock, recover=False)
    assert all_batches(plog) == written
    assert plog.offset_for_timestamp(T0 + 30) == (86, T0 + 30)  # batch 28: T0+28..30
    assert all((directory / f"{s.base_offset:020d}.index").exists() for s in plog.segments)
    plog.close()


def test_leftovers_of_interrupted_operations_are_cleaned(crashed, clock):
    directory, written, segments = crashed
    (directory / "00000000000000999999.log.deleted").write_bytes(b"x")
    (directory / "00000000000000999999.index").write_bytes(b"")  # orphan index
    (directory / "00000000000000000003.log.cleaned").write_bytes(b"x")
    (directory / "recovery-point.tmp").write_text("12")
    (directory / "00000000000000000007.snapshot").write_text("{}")  # not ours: left alone
    plog = open_log(directory, clock, recover=True)
    assert sorted(p.name for p in directory.iterdir() if not p.name[0:20].isdigit()
                  or not p.name.endswith((".log", ".index", ".timeindex"))) == [
        "00000000000000000007.snapshot", "leader-epoch-checkpoint"]
    assert all_batches(plog) == written
    plog.close()


def test_a_finished_swap_replaces_the_segments_it_covers(crashed, clock):
    directory, written, segments = crashed
    # A cleaner's output for segments[0] and segments[1]: one batch per original batch,
    # here simply the originals re-encoded, written as NNN.log.swap before it crashed.
    covered = [b for b in written if records.read_header(b).base_offset < segments[2]]
    swap = b"".join(covered[::2])  # "compaction" dropped every other batch
    (directory / f"{segments[0]:020d}.log.swap").write_bytes(swap)
    (directory / f"{segments[0]:020d}.index.swap").write_bytes(b"junk")
    plog = open_log(directory, clock, recover=False)
    assert [s.base_offset for s in plog.segments] == [segments[0]] + segments[2:]
    assert all_batches(plog) == covered[::2] + written[len(covered):]
    assert not any(p.name.endswith(".swap") for p in directory.iterdir())
    plog.close()


def test_empty_directory_starts_at_the_persisted_log_start_offset(tmp_path, clock):
    directory = tmp_path / "t-0"
    directory.mkdir()
    (directory / "log-start-offset").write_text("500\n")
    plog = open_log(directory, clock, recover=True)
    assert (plog.log_start_offset, plog.log_end_offset) == (500, 500)
    assert plog.append(make_batch(1)).base_offset == 500
    plog.close()


def test_unclean_follower_data_keeps_its_offsets_after_recovery(tmp_path, clock):
    directory = tmp_path / "t-0"
    plog = open_log(directory, clock, recover=False)
    plog.append_as_follower(encode_batch([(b"a", b"b", T0, ())] * 4, base_offset=0, partition_leader_epoch=2))
    for segment in plog.segments:
        segment.close()
    (directory / "leader-epoch-checkpoint").unlink()
    again = open_log(directory, clock, recover=True)
    assert again.log_end_offset == 4 and again.leader_epoch_entries() == [(2, 0)]
    again.close()


def test_log_start_offset_beyond_the_recovered_end_starts_an_empty_log_there(crashed, clock):
    directory, written, segments = crashed
    (directory / "log-start-offset").write_text("200\n")  # DeleteRecords, then the data was lost
    plog = open_log(directory, clock, recover=True)
    assert (plog.log_start_offset, plog.log_end_offset, len(plog.segments)) == (200, 200, 1)
    assert plog.append(make_batch(1)).base_offset == 200
    plog.close()
    again = open_log(directory, clock, recover=True)
    assert (again.log_start_offset, again.log_end_offset) == (200, 201)
    again.close()
