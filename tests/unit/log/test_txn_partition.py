"""Transactions in a partition's log: markers, the last stable offset, the .txnindex
(written, truncated, deleted, rebuilt), followers, restarts and crashes."""

from __future__ import annotations

import errno
import struct

import pytest

from kavka.log.cleaner import measure
from kavka.log.errors import InvalidProducerEpoch, InvalidRecord, InvalidTxnState, StorageFull
from kavka.log.partition import Partition
from kavka.log.partition_log import PartitionLog
from kavka.protocol import records
from kavka.protocol.control_records import EndTxnMarker, encode_marker_batch
from kavka.protocol.record_codec import decode_records, encode_batch
from log_helpers import T0, all_batches, topic_config

V = 9  # Produce version
CONFIG = dict(segment_bytes=800, index_interval_bytes=100)
AT = struct.Struct(">hqqqq")


def txn_batch(pid: int, epoch: int, seq: int, n: int = 2, transactional: bool = True) -> bytearray:
    rows = [(b"k%d" % i, b"p%d-s%d" % (pid, seq + i), T0, ()) for i in range(n)]
    return bytearray(encode_batch(rows, producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                                  transactional=transactional))


def open_partition(directory, clock, recover: bool = False, **config) -> Partition:
    plog = PartitionLog.open(directory, "t", 0, topic_config(**{**CONFIG, **config}), clock, recover)
    return Partition.open("t", 0, plog)


@pytest.fixture
def part(tmp_path, clock):
    p = open_partition(tmp_path / "t-0", clock)
    yield p
    if not p.log.is_closed:
        p.close()


def crash(p: Partition) -> None:
    """kill -9: nothing flushed, no snapshot at close."""
    for segment in p.log.segments:
        segment.close()


def txnindex_files(directory) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(directory.glob("*.txnindex"))}


def test_the_marker_is_kafkas_control_batch(part):
    part.append_records(txn_batch(7, 3, 0), V, T0)
    offset = part.append_marker(7, 3, commit=False, coordinator_epoch=11, now_ms=T0 + 5)
    assert offset == 2
    stored = all_batches(part.log)[-1]
    h = records.read_header(stored)
    assert h.attributes == records.ATTR_CONTROL | records.ATTR_TRANSACTIONAL
    assert (h.base_offset, h.producer_id, h.producer_epoch, h.base_sequence, h.records_count) == (2, 7, 3, -1, 1)
    (record,) = decode_records(stored)
    assert record.key == b"\x00\x00\x00\x00"  # ControlRecordType v0, ABORT
    assert record.value == struct.pack(">hi", 0, 11)  # EndTxnMarker v0, coordinator epoch
    assert record.timestamp == T0 + 5
    part.append_records(txn_batch(7, 3, 2), V, T0)
    part.append_marker(7, 3, commit=True, coordinator_epoch=11, now_ms=T0)
    assert decode_records(all_batches(part.log)[-1])[0].key == b"\x00\x00\x00\x01"  # COMMIT


def test_the_last_stable_offset_stops_at_the_earliest_open_transaction(part):
    part.append_records(txn_batch(1, 0, 0, transactional=False), V, T0)  # 0-1
    part.append_records(txn_batch(2, 0, 0), V, T0)  # 2-3, opens producer 2's transaction
    part.append_records(txn_batch(3, 0, 0), V, T0)  # 4-5
    assert part.log.high_watermark == 6
    assert part.last_stable_offset == part.log.last_stable_offset == 2
    part.append_marker(2, 0, commit=True, coordinator_epoch=0, now_ms=T0)  # 6
    assert part.last_stable_offset == 4
    part.append_marker(3, 0, commit=False, coordinator_epoch=0, now_ms=T0)  # 7
    assert part.last_stable_offset == part.log.high_watermark == 8


def test_the_last_stable_offset_waits_for_the_high_watermark(tmp_path, clock):
    plog = PartitionLog.open(tmp_path / "t-0", "t", 0, topic_config(**CONFIG), clock, False, hw_follows_leo=False)
    p = Partition.open("t", 0, plog)
    p.append_records(txn_batch(1, 0, 0), V, T0)
    p.append_marker(1, 0, commit=True, coordinator_epoch=0, now_ms=T0)
    plog.advance_high_watermark(2)
    assert p.last_stable_offset == 0  # the marker at 2 could still be lost with this leader
    plog.advance_high_watermark(3)
    assert p.last_stable_offset == 3
    p.close()


def test_an_abort_writes_kafkas_txnindex_entry(part, tmp_path):
    part.append_records(txn_batch(1, 0, 0), V, T0)  # 0-1
    part.append_records(txn_batch(2, 0, 0), V, T0)  # 2-3
    part.append_marker(1, 0, commit=False, coordinator_epoch=0, now_ms=T0)  # 4
    part.append_marker(2, 0, commit=True, coordinator_epoch=0, now_ms=T0)  # 5: commits have no entry
    files = txnindex_files(tmp_path / "t-0")
    assert files == {"00000000000000000000.txnindex": AT.pack(0, 1, 0, 4, 2)}  # LSO 2: producer 2 open
    assert part.log.aborted_transactions(0, 6) == [(1, 0)]


def test_no_txnindex_file_without_an_abort(part, tmp_path):
    part.append_records(txn_batch(1, 0, 0), V, T0)
    part.append_marker(1, 0, commit=True, coordinator_epoch=0, now_ms=T0)
    part.flush()
    assert txnindex_files(tmp_path / "t-0") == {}


def test_aborted_transactions_overlapping_a_range(part):
    part.append_records(txn_batch(1, 0, 0), V, T0)  # 0-1
    part.append_marker(1, 0, commit=False, coordinator_epoch=0, now_ms=T0)  # 2
    part.append_records(txn_batch(1, 0, 2), V, T0)  # 3-4
    part.append_marker(1, 0, commit=False, coordinator_epoch=0, now_ms=T0)  # 5
    log = part.log
    assert log.aborted_transactions(0, 100) == [(1, 0), (1, 3)]
    assert log.aborted_transactions(2, 3) == [(1, 0)]  # the range holds its marker
    assert log.aborted_transactions(3, 4) == [(1, 3)]
    assert log.aborted_transactions(6, 100) == []
    assert log.aborted_transactions(0, 0) == []


def test_aborted_transactions_across_segments(part):
    part.append_records(txn_batch(1, 0, 0, n=4), V, T0)  # 0-3, opens a long transaction
    for seq in range(0, 80, 4):
        part.append_records(txn_batch(2, 0, seq, n=4, transactional=False), V, T0)
    part.append_marker(1, 0, commit=False, coordinator_epoch=0, now_ms=T0)  # 84
    log = part.log
    assert len(log.segments) > 2
    middle = log.segments[1]
    assert middle.base_offset > 0 and middle.next_offset < 84
    # a fetch starting in a middle segment must hear of the transaction begun before it
    assert log.aborted_transactions(middle.base_offset, middle.next_offset) == [(1, 0)]
    assert log.aborted_transactions(84, 85) == [(1, 0)]
    assert log.aborted_transactions(85, 90) == []


def test_clients_may_not_write_control_batches(part):
    marker = encode_marker_batch(1, 0, EndTxnMarker(False, 0), T0)
    with pytest.raises(InvalidRecord):
        part.append_records(marker, V, T0)
    assert part.log.log_end_offset == 0


def test_a_transactional_batch_needs_a_producer_id(part):
    with pytest.raises(InvalidRecord):
        part.append_records(txn_batch(-1, -1, -1), V, T0)


def test_a_non_transactional_batch_in_an_open_transaction_writes_nothing(part):
    part.append_records(txn_batch(1, 0, 0), V, T0)
    with pytest.raises(InvalidTxnState):
        part.append_records(txn_batch(1, 0, 2, transactional=False), V, T0)
    assert part.log.log_end_offset == 2


def test_a_stale_marker_writes_nothing(part):
    part.append_records(txn_batch(1, 5, 0), V, T0)
    with pytest.raises(InvalidProducerEpoch):
        part.append_marker(1, 4, commit=True, coordinator_epoch=0, now_ms=T0)
    assert part.log.log_end_offset == 2
    assert part.last_stable_offset == 0


def test_a_clean_restart_keeps_open_transactions_and_the_index(tmp_path, clock):
    directory = tmp_path / "t-0"
    p = open_partition(directory, clock)
    p.append_records(txn_batch(1, 0, 0), V, T0)
    p.append_marker(1, 0, commit=False, coordinator_epoch=0, now_ms=T0)
    p.append_records(txn_batch(2, 0, 0), V, T0)  # 3-4, still open
    p.close()
    p = open_partition(directory, clock)
    assert p.last_stable_offset == 3
    assert p.log.aborted_transactions(0, 10) == [(1, 0)]
    with pytest.raises(InvalidTxnState):
        p.append_records(txn_batch(2, 0, 2, transactional=False), V, T0)
    p.close()


def _write_history(p: Partition) -> None:
    """Several segments of aborted, committed and open transactions."""
    for i in range(8):
        p.append_records(txn_batch(1, 0, 2 * i), V, T0)
        p.append_records(txn_batch(2, 0, 2 * i), V, T0)
        p.append_marker(1, 0, commit=i % 2 == 0, coordinator_epoch=0, now_ms=T0)
        if i % 3 == 0:
            p.append_marker(2, 0, commit=False, coordinator_epoch=0, now_ms=T0)
    p.append_records(txn_batch(3, 0, 0), V, T0)


@pytest.mark.parametrize("damage", ["lost", "torn", "none"])
def test_recovery_after_a_crash_rebuilds_the_txnindex(tmp_path, clock, damage):
    directory = tmp_path / "t-0"
    p = open_partition(directory, clock)
    _write_history(p)
    expected_files = txnindex_files(directory)
    expected = (p.log.aborted_transactions(0, 1000), p.last_stable_offset, p.producers.producers)
    assert len(p.log.segments) > 2 and len(expected_files) > 1
    crash(p)
    for path in directory.glob("*.txnindex"):
        if damage == "lost":
            path.unlink()  # the entries never reached the disk
        elif damage == "torn":
            path.write_bytes(path.read_bytes()[:-5])
    p = open_partition(directory, clock, recover=True)
    assert (p.log.aborted_transactions(0, 1000), p.last_stable_offset, p.producers.producers) == expected
    assert txnindex_files(directory) == expected_files
    p.close()


def test_an_unreadable_txnindex_is_rebuilt_on_a_clean_open(tmp_path, clock):
    directory = tmp_path / "t-0"
    p = open_partition(directory, clock)
    _write_history(p)
    expected_files = txnindex_files(directory)
    p.close()
    first = min(directory.glob("*.txnindex"))
    first.write_bytes(first.read_bytes() + b"xyz")
    p = open_partition(directory, clock)
    assert txnindex_files(directory) == expected_files
    p.close()


def test_truncation_drops_the_entries_and_reopens_the_transaction(part, tmp_path):
    part.append_records(txn_batch(1, 0, 0), V, T0)  # 0-1
    part.append_marker(1, 0, commit=False, coordinator_epoch=0, now_ms=T0)  # 2
    assert part.last_stable_offset == 3
    part.truncate_to(2)  # a follower dropping the leader's unreplicated marker
    assert part.log.aborted_transactions(0, 10) == []
    assert part.last_stable_offset == 0
    assert txnindex_files(tmp_path / "t-0") == {"00000000000000000000.txnindex": b""}


def test_retention_and_delete_records_take_the_txnindex_with_the_segment(part, tmp_path):
    directory = tmp_path / "t-0"
    _write_history(part)
    before = set(txnindex_files(directory))
    first_base = part.log.segments[1].base_offset
    part.log.set_log_start_offset(first_base)
    after = set(txnindex_files(directory))
    assert "00000000000000000000.txnindex" in before - after
    assert not list(directory.glob("*.deleted"))


def test_a_follower_gets_the_same_state_from_the_leaders_bytes(tmp_path, clock):
    leader = open_partition(tmp_path / "leader" / "t-0", clock)
    follower = open_partition(tmp_path / "follower" / "t-0", clock)
    _write_history(leader)
    data = b"".join(all_batches(leader.log))
    half = len(data) // 3
    cut = max(p + h.size for p, h in records.iter_batches(data[:half]))
    follower.append_as_follower(data[:cut])
    follower.append_as_follower(data[cut:])
    assert follower.log.aborted_transactions(0, 1000) == leader.log.aborted_transactions(0, 1000)
    assert follower.last_stable_offset == leader.last_stable_offset
    assert follower.producers.producers == leader.producers.producers
    assert txnindex_files(tmp_path / "follower" / "t-0") == txnindex_files(tmp_path / "leader" / "t-0")
    leader.close()
    follower.close()


def test_the_cleaner_stops_at_an_open_transaction(tmp_path, clock):
    p = open_partition(tmp_path / "t-0", clock, cleanup_policy="compact")
    for seq in range(0, 20, 2):
        p.append_records(txn_batch(1, 0, seq, transactional=False), V, T0)
    first = p.append_records(txn_batch(2, 0, 0), V, T0).base_offset
    for seq in range(20, 60, 2):
        p.append_records(txn_batch(1, 0, seq, transactional=False), V, T0)
    assert p.log.active_base_offset > first
    assert measure(p, T0).first_uncleanable == first
    p.append_marker(2, 0, commit=True, coordinator_epoch=0, now_ms=T0)
    assert measure(p, T0).first_uncleanable == p.log.active_base_offset
    p.close()


def test_a_broker_built_transactional_batch_joins_the_producer_table(part):
    part.append_internal(txn_batch(9, 0, 0), T0)  # e.g. a transactional offset commit
    assert part.last_stable_offset == 0
    part.append_marker(9, 0, commit=True, coordinator_epoch=0, now_ms=T0)
    assert part.last_stable_offset == 3


def test_a_full_disk_under_the_txnindex_keeps_the_entry(part, tmp_path, clock, monkeypatch):
    from kavka.log import txn_index

    def full(fd, entry, entries):
        raise OSError(errno.ENOSPC, "No space left on device")

    part.append_records(txn_batch(1, 0, 0), V, T0)
    with monkeypatch.context() as m:
        m.setattr(txn_index, "write_entry", full)
        with pytest.raises(StorageFull):
            part.append_marker(1, 0, commit=False, coordinator_epoch=0, now_ms=T0)
    assert part.log.aborted_transactions(0, 10) == [(1, 0)]  # reads stay right at once
    part.health.succeeded()  # space came back
    part.append_records(txn_batch(2, 0, 0), V, T0)
    part.append_marker(2, 0, commit=False, coordinator_epoch=0, now_ms=T0)
    part.close()  # the flush writes the file from memory
    assert txnindex_files(tmp_path / "t-0") == {
        "00000000000000000000.txnindex": AT.pack(0, 1, 0, 2, 3) + AT.pack(0, 2, 3, 5, 6)}
    reopened = open_partition(tmp_path / "t-0", clock)
    assert reopened.log.aborted_transactions(0, 10) == [(1, 0), (2, 3)]
    reopened.close()


def test_an_inconsistent_offset_index_leaves_the_txnindex_usable(tmp_path, clock):
    directory = tmp_path / "t-0"
    p = open_partition(directory, clock)
    p.append_records(txn_batch(1, 0, 0), V, T0)
    p.append_marker(1, 0, commit=False, coordinator_epoch=0, now_ms=T0)
    p.close()
    index = directory / "00000000000000000000.index"
    index.write_bytes(index.read_bytes() + struct.pack(">ii", 1000, 1 << 20))  # points past the log
    p = open_partition(directory, clock)
    p.append_records(txn_batch(2, 0, 0), V, T0)
    p.append_marker(2, 0, commit=False, coordinator_epoch=0, now_ms=T0)  # into the reopened active segment
    p.close()
    assert txnindex_files(directory) == {"00000000000000000000.txnindex": AT.pack(0, 1, 0, 2, 3) + AT.pack(0, 2, 3, 5, 6)}
