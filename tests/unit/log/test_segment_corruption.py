"""Corruption found on a clean start (mtime after the marker), on reads, and by ``kavka check``."""

from __future__ import annotations

import logging
import os

import pytest

from kavka.cli.main import main
from kavka.clock import ManualClock
from kavka.config import BrokerConfig
from kavka.log.errors import LogCorrupted
from kavka.log.log_manager import CLEAN_SHUTDOWN_FILE, LogManager
from kavka.log.partition_log import PartitionLog
from kavka.log.segment import scan_log_file
from kavka.protocol import records
from log_helpers import T0, all_batches, make_batch, topic_config

CONFIG = dict(segment_bytes=600, index_interval_bytes=100)


def open_log(directory, clock, recover=False, verify_newer_than_ns=None):
    return PartitionLog.open(directory, "t", 0, topic_config(**CONFIG), clock, recover,
                             verify_newer_than_ns=verify_newer_than_ns)


@pytest.fixture
def closed(tmp_path, clock):
    """A cleanly closed partition of 40 batches in several segments; the close time in ns."""
    directory = tmp_path / "t-0"
    plog = open_log(directory, clock)
    for i in range(40):
        plog.append(make_batch(3, T0 + i, 30))
    written = all_batches(plog)
    segments = [s.base_offset for s in plog.segments]
    plog.close()
    return directory, written, segments, max(p.stat().st_mtime_ns for p in directory.iterdir())


def flip(path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x10
    path.write_bytes(data)


def batch_start(path, index: int) -> int:
    return list(records.iter_batches(path.read_bytes()))[index][0]


def test_a_segment_modified_after_the_clean_shutdown_is_verified_and_cut(closed, clock, caplog):
    directory, written, segments, closed_ns = closed
    middle = directory / f"{segments[2]:020d}.log"
    position = batch_start(middle, 1)
    flip(middle, position + 40)  # CRC-covered byte of its second batch
    caplog.set_level(logging.WARNING, "kavka.log")
    plog = open_log(directory, clock, verify_newer_than_ns=closed_ns)
    kept = [b for b in written if records.read_header(b).base_offset < segments[2]]
    assert all_batches(plog) == kept + [written[len(kept)]]  # up to the bad batch, nothing after
    assert [s.base_offset for s in plog.segments] == segments[:3]
    assert f"{middle.name} at byte {position}: CRC-32C mismatch" in caplog.text
    plog.close()


def test_without_a_newer_mtime_a_clean_start_trusts_the_segment(closed, clock):
    directory, written, segments, closed_ns = closed
    middle = directory / f"{segments[2]:020d}.log"
    flip(middle, 100)
    plog = open_log(directory, clock, verify_newer_than_ns=os.stat(middle).st_mtime_ns + 1)
    assert len(plog.segments) == len(segments)  # not re-read: the cost stays that of a clean start
    plog.close()


def test_a_read_over_an_impossible_batch_length_fails_and_logs_once(closed, clock, caplog):
    directory, written, segments, _ = closed
    middle = directory / f"{segments[1]:020d}.log"
    position = batch_start(middle, 1)
    data = bytearray(middle.read_bytes())
    data[position + 8 : position + 12] = (2**31 - 1).to_bytes(4, "big")
    middle.write_bytes(data)
    plog = open_log(directory, clock)  # a clean start that does not look (no marker time given)
    caplog.set_level(logging.ERROR, "kavka.log")
    assert all_batches(plog, segments[1]) == [b for b in written if records.read_header(b).base_offset
                                                      < segments[1]]
    for _ in range(2):
        with pytest.raises(LogCorrupted, match=f"corrupt batch at byte {position}: impossible batch length"):
            plog.read(segments[1] + 3, 10**6)
    assert caplog.text.count("corrupt batch at byte") == 1
    plog.close()


def test_scan_log_file_reports_the_first_bad_batch(closed):
    directory, written, segments, _ = closed
    path = directory / f"{segments[0]:020d}.log"
    good = scan_log_file(path, segments[0])
    assert good.problem is None and good.valid_bytes == good.file_size and good.batches > 1
    flip(path, batch_start(path, 1) + 30)
    bad = scan_log_file(path, segments[0])
    assert (bad.batches, bad.valid_bytes) == (1, batch_start(path, 1))
    assert "CRC-32C mismatch" in bad.problem


# -- kavka check --------------------------------------------------------------------------

@pytest.fixture
def data_dir(tmp_path):
    path = tmp_path / "data"
    manager = LogManager(path, BrokerConfig(), ManualClock(T0))
    manager.load()
    manager.create_topic("t", 2)
    for i in range(20):
        manager.partition("t", 0).log.append(make_batch(2, T0 + i, 20))
    manager.close()
    return path


def test_check_reports_corruption_with_a_nonzero_exit_and_repair_cuts_there(data_dir, capsys):
    assert main(["check", str(data_dir)]) == 0
    assert "checked 2 partitions" in capsys.readouterr().out
    path = data_dir / "t-0" / f"{0:020d}.log"
    position = batch_start(path, 7)
    flip(path, position + 50)
    before = path.read_bytes()
    assert main(["check", str(data_dir)]) == 1
    out = capsys.readouterr().out
    assert f"CORRUPT t-0/{path.name} at byte {position}: CRC-32C mismatch" in out
    assert path.read_bytes() == before  # without --repair nothing changes
    assert main(["check", "--repair", str(data_dir)]) == 1
    assert "repaired" in capsys.readouterr().out
    assert path.read_bytes() == before[:position]
    assert (data_dir / CLEAN_SHUTDOWN_FILE).exists()
    assert main(["check", str(data_dir)]) == 0
    manager = LogManager(data_dir, BrokerConfig(), ManualClock(T0))
    manager.load()
    assert manager.partition("t", 0).log.log_end_offset == 14
    manager.close()


def test_check_refuses_a_data_dir_in_use(data_dir, capsys):
    manager = LogManager(data_dir, BrokerConfig(), ManualClock(T0))
    manager.load()
    try:
        assert main(["check", str(data_dir)]) == 1
        assert "in use by a running broker" in capsys.readouterr().err
    finally:
        manager.close()


def test_after_a_crash_a_flushed_segment_modified_after_the_recovery_point_is_verified(tmp_path, clock):
    directory = tmp_path / "t-0"
    plog = open_log(directory, clock)
    for i in range(40):
        plog.append(make_batch(3, T0 + i, 30))
    plog.flush()
    size = plog.segments[0].size
    plog.close()
    flip(directory / f"{0:020d}.log", size - 1)
    checked = open_log(directory, clock, recover=True)
    assert checked.segments[0].size < size and len(checked.segments) == 1
    checked.close()


def test_old_bytes_are_crc_checked_when_first_served_good_prefix_then_an_error(closed, clock, caplog):
    directory, written, segments, _ = closed
    middle = directory / f"{segments[2]:020d}.log"
    position = batch_start(middle, 1)
    flip(middle, position + 40)  # bit rot: a clean start without a marker time does not look
    plog = open_log(directory, clock)
    caplog.set_level(logging.ERROR, "kavka.log")
    bad = records.read_header(written[[records.read_header(b).base_offset for b in written].index(segments[2]) + 1])
    served = all_batches(plog)
    assert served == [b for b in written if records.read_header(b).base_offset < bad.base_offset]
    for _ in range(2):
        with pytest.raises(LogCorrupted, match=f"corrupt batch at byte {position}: CRC-32C mismatch"):
            plog.read(bad.base_offset, 10**6)
    assert caplog.text.count("corrupt batch at byte") == 1
    plog.append(make_batch(1))  # appends go on; what they add is served unchecked
    assert plog.read(plog.log_end_offset - 1, 10**6).slices
    plog.close()
