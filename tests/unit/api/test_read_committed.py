"""Fetch and ListOffsets with isolation_level 1 (READ_COMMITTED): the last stable offset and
the aborted transactions, through the dispatcher with wire bytes."""

from __future__ import annotations

import datetime

import pytest

from kavka.protocol.record_codec import encode_batch, iter_records

FETCH, LIST_OFFSETS = 1, 2
NOW = 1_700_000_000_000
V = 9


def _txn(pid: int, seq: int, n: int, transactional: bool = True, ts: int = NOW) -> bytearray:
    rows = [(b"k", b"p%d-%d" % (pid, seq + i), ts + seq + i, ()) for i in range(n)]
    return bytearray(encode_batch(rows, producer_id=pid, producer_epoch=0, base_sequence=seq,
                                  transactional=transactional))


@pytest.fixture
def h(admin):
    """t-0: producer 1 aborts 0-1 (marker 2), plain records 3-4, producer 2 commits 5-6 (marker 8),
    producer 3 leaves 7 open (its record has the largest timestamp, NOW + 50)."""
    harness = admin()
    harness.logs.create_topic("t", 1, {"segment.bytes": "300"})
    p = harness.logs.partition("t", 0)
    p.append_records(_txn(1, 0, 2), V, NOW)
    p.append_marker(1, 0, commit=False, coordinator_epoch=0, now_ms=NOW)
    p.append_records(_txn(4, 0, 2, transactional=False), V, NOW)
    p.append_records(_txn(2, 0, 2), V, NOW)
    p.append_records(_txn(3, 0, 1, ts=NOW + 50), V, NOW)
    p.append_marker(2, 0, commit=True, coordinator_epoch=0, now_ms=NOW)
    assert (p.log.high_watermark, p.last_stable_offset) == (9, 7)
    return harness


def _fetch(h, version: int, isolation: int, offset: int = 0):
    q = h.req(FETCH, version)
    key = {"topic_id": h.logs.topic("t").topic_id} if version >= 13 else {"topic": "t"}
    response = h.call(q.FetchRequest(
        replica_id=-1, max_wait=datetime.timedelta(0), min_bytes=1, max_bytes=50 << 20, isolation_level=isolation,
        session_id=0, session_epoch=-1, topics=(q.FetchTopic(**key, partitions=(q.FetchPartition(
            partition=0, fetch_offset=offset, partition_max_bytes=1 << 20, current_leader_epoch=-1,
            last_fetched_epoch=-1, log_start_offset=-1),)),),
        forgotten_topics_data=(), rack_id="", cluster_id=None))
    (topic,) = response.responses
    (partition,) = topic.partitions
    return partition


def _offsets(partition) -> list[int]:
    return [r.offset for r in iter_records(partition.records or b"")]


@pytest.mark.parametrize("version", [4, 11, 17])
def test_read_committed_reads_to_the_lso_with_the_aborted_transactions(h, version):
    got = _fetch(h, version, isolation=1)
    assert (got.error_code, got.high_watermark, got.last_stable_offset) == (0, 9, 7)
    assert max(_offsets(got)) < 7  # producer 3's open transaction is not served
    assert [(a.producer_id, a.first_offset) for a in got.aborted_transactions] == [(1, 0)]


@pytest.mark.parametrize("version", [4, 17])
def test_read_uncommitted_reads_to_the_hw_without_a_list(h, version):
    got = _fetch(h, version, isolation=0)
    assert (got.high_watermark, got.last_stable_offset) == (9, 7)
    assert _offsets(got) == list(range(9))
    assert got.aborted_transactions is None


def test_a_read_committed_fetch_after_the_abort_lists_nothing(h):
    got = _fetch(h, 12, isolation=1, offset=3)
    assert got.aborted_transactions == ()
    assert min(_offsets(got)) >= 3


def test_a_read_committed_fetch_at_the_lso_is_empty_not_out_of_range(h):
    got = _fetch(h, 12, isolation=1, offset=8)
    assert (got.error_code, _offsets(got), got.aborted_transactions) == (0, [], ())


def _list_offsets(h, version: int, isolation: int, timestamp: int):
    q = h.req(LIST_OFFSETS, version)
    response = h.call(q.ListOffsetsRequest(replica_id=-1, isolation_level=isolation, topics=(q.ListOffsetsTopic(
        name="t", partitions=(q.ListOffsetsPartition(partition_index=0, timestamp=timestamp,
                                                     current_leader_epoch=-1),)),), timeout=datetime.timedelta(seconds=1)))
    (partition,) = response.topics[0].partitions
    return partition.error_code, partition.offset


@pytest.mark.parametrize("version", [2, 10])
def test_list_offsets_latest_answers_the_lso_for_read_committed(h, version):
    assert _list_offsets(h, version, isolation=1, timestamp=-1) == (0, 7)
    assert _list_offsets(h, version, isolation=0, timestamp=-1) == (0, 9)


def test_list_offsets_by_time_stops_at_the_lso_for_read_committed(h):
    assert _list_offsets(h, 5, isolation=1, timestamp=NOW + 1) == (0, 1)
    # producer 3's open record at offset 7: only read_uncommitted finds it
    assert _list_offsets(h, 7, isolation=1, timestamp=NOW + 50) == (0, -1)
    assert _list_offsets(h, 7, isolation=0, timestamp=NOW + 50) == (0, 7)
    assert _list_offsets(h, 7, isolation=1, timestamp=-3) == (0, -1)  # MAX_TIMESTAMP
    assert _list_offsets(h, 7, isolation=0, timestamp=-3) == (0, 7)
