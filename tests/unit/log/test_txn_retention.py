"""Retention and DeleteRecords with transactions: the aborted transactions answered follow the
log start, read_committed readers stay right, a transaction that ended below the log start is
closed after a restart, and producers outlive their batches until producer.id.expiration.ms."""

from __future__ import annotations

from dataclasses import dataclass

from kavka.clock import ManualClock
from kavka.log.partition import Partition
from kavka.log.partition_log import PartitionLog
from kavka.protocol.record_codec import encode_batch
from log_helpers import T0, topic_config
from txn_log_helpers import Txns, markers, read_committed

CONFIG = dict(segment_bytes=600, index_interval_bytes=100)
DAY = 86_400_000


@dataclass
class Host:
    """What Txns needs: a partition and a clock."""

    partition: Partition
    clock: ManualClock


def open_host(directory, clock: ManualClock, recover: bool = False) -> Host:
    plog = PartitionLog.open(directory, "t", 0, topic_config(**CONFIG), clock, recover)
    return Host(Partition.open("t", 0, plog), clock)


def plain(host: Host, n: int, tag: bytes = b"p", producer: tuple[int, int] | None = None) -> None:
    """``n`` single-record batches, idempotent from ``producer`` = (id, first sequence) if given."""
    now = host.clock.now_ms()
    for i in range(n):
        pid, seq = (producer[0], producer[1] + i) if producer else (-1, -1)
        batch = encode_batch([(tag + b"%d" % i, b"v" * 40, now, ())], producer_id=pid,
                             producer_epoch=0 if producer else -1, base_sequence=seq)
        host.partition.append_records(bytearray(batch), 9, now)


def test_the_answered_aborted_transactions_follow_the_log_start(tmp_path):
    clock = ManualClock(T0)
    host = open_host(tmp_path / "t-0", clock)
    plog, txns = host.partition.log, Txns(host)
    ends = []
    for r in range(6):
        txns.write(2, (b"a%d" % r, b"aborted" + bytes(40)))
        ends.append(txns.end(2, commit=False))
        plain(host, 3, b"r%d-" % r)
    assert len(plog.segments) > 3
    committed_before = read_committed(plog)

    plog.delete_segments_before(plog.segments[2].base_offset)  # retention: whole segments
    start = plog.log_start_offset
    answered = plog.aborted_txns_overlapping(start, plog.log_end_offset)
    assert [t.last_offset for t in answered] == [e for e in ends if e >= start]
    assert read_committed(plog) == [r for r in committed_before if r[0] >= start]

    inside = ends[4] + 1  # DeleteRecords into the middle of a segment, just after a marker
    plog.set_log_start_offset(inside)
    assert [t.last_offset for t in plog.aborted_txns_overlapping(inside, plog.log_end_offset)] == [ends[5]]
    assert read_committed(plog) == [r for r in committed_before if r[0] >= inside]
    host.partition.close()


def test_a_transaction_ended_below_the_log_start_stays_ended_after_a_restart(tmp_path):
    """The producer snapshot of a roll has the transaction open; its abort marker is then
    below the log start (DeleteRecords into that segment).  Replaying from the log start would
    skip the marker and keep the transaction open, holding the LSO at the log start for ever."""
    clock = ManualClock(T0)
    directory = tmp_path / "t-0"
    host = open_host(directory, clock)
    plog, txns = host.partition.log, Txns(host)
    txns.write(5, (b"x", b"aborted" + bytes(40)))
    plain(host, 12)              # rolls: the snapshot at the roll has producer 5's transaction open
    base = plog.active_base_offset
    marker = txns.end(5, commit=False)
    assert plog.segments[-1].base_offset == base <= marker
    plain(host, 1, b"q")
    plog.set_log_start_offset(marker + 1)
    assert plog.segments[0].base_offset == base < plog.log_start_offset
    host.partition.close()
    for index in directory.glob("*.txnindex"):
        with open(index, "ab") as f:
            f.write(b"\x00")     # unreadable: rebuilt by a replay from the snapshot at or below it
    for snapshot in directory.glob("*.snapshot"):
        if int(snapshot.name[:20]) > base:
            snapshot.unlink()

    host = open_host(directory, clock)
    plog = host.partition.log
    assert 5 not in host.partition.producers.ongoing
    assert plog.last_stable_offset == plog.high_watermark
    assert [k for _, k, _ in read_committed(plog)] == [b"q0"]
    assert markers(plog) == []   # the marker is below the log start: not served
    host.partition.close()


def test_a_producer_outlives_its_batches_until_it_expires(tmp_path):
    """KIP-360: retention removing an idempotent producer's batches keeps its state (a retry is
    still answered as a duplicate, the next sequence still checked), across a restart too;
    expiry removes it, and the snapshot written after that does not bring it back."""
    clock = ManualClock(T0)
    directory = tmp_path / "t-0"
    host = open_host(directory, clock)
    plain(host, 3, b"i", producer=(9, 0))
    clock.advance(1000)
    plain(host, 12)
    host.partition.log.delete_segments_before(host.partition.log.segments[-1].base_offset)
    assert host.partition.log.log_start_offset > 2

    retry = encode_batch([(b"i2", b"v" * 40, T0, ())], producer_id=9, producer_epoch=0, base_sequence=2)
    info = host.partition.append_records(bytearray(retry), 9, clock.now_ms())
    assert (info.duplicate, info.base_offset) == (True, 2)
    host.partition.close()

    host = open_host(directory, clock)
    info = host.partition.append_records(bytearray(retry), 9, clock.now_ms())
    assert (info.duplicate, info.base_offset) == (True, 2), "the snapshot kept the producer"
    clock.advance(DAY)
    assert host.partition.producers.remove_expired(clock.now_ms(), DAY) == 1
    host.partition.close()

    host = open_host(directory, clock)
    assert 9 not in host.partition.producers.producers
    info = host.partition.append_records(bytearray(retry), 9, clock.now_ms())
    assert not info.duplicate, "unknown again: Kafka 4.x appends its batch at any sequence"
    host.partition.close()
