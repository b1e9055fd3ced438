"""Fetch from followers (KIP-392) through the dispatcher: a real broker context whose
replica roles are a ReplicaManager (no sockets: the roles come from Assignments applied by
hand), so the leader's redirect answer and a follower's reads are what kio decodes."""

from __future__ import annotations

import datetime

import pytest

from kavka.protocol.record_codec import encode_batch
from kavka.replication.manager import Assignment, ReplicaManager

FETCH = 1
TP = ("t", 0)
ME, OTHER, THIRD = 1, 2, 3
RACKS = {ME: "r1", OTHER: "r2", THIRD: "r3"}
RACK_AWARE = "org.apache.kafka.common.replica.RackAwareReplicaSelector"
NOT_LEADER_OR_FOLLOWER = 6


async def _refuse(*_args):
    return None


def _roles(h, leader: int, selector=RACK_AWARE) -> ReplicaManager:
    manager = ReplicaManager(ME, h.logs, h.context.clock, address_of=lambda _id: None, propose_isr=_refuse,
                             rack_of=RACKS.get, replica_selector=selector)
    manager.apply(TP, Assignment((ME, OTHER, THIRD), leader, 1, (ME, OTHER, THIRD), 1))
    h.context.replicas = manager
    _append(h)
    return manager


@pytest.fixture
def h(admin):
    harness = admin({"broker.id": ME})
    harness.logs.create_topic("t", 1)
    return harness


def _append(h) -> None:
    """Two batches of two records: offsets 0-1 and 2-3."""
    for first in (0, 2):
        batch = encode_batch([(None, b"v%d" % i, 1_700_000_000_000, ()) for i in (first, first + 1)])
        h.logs.partition(*TP).append_records(bytearray(batch), 9, 1_700_000_000_000)


def _fetch(h, version: int, rack: str, offset: int = 0, session=(-1, -1), wait_ms: int = 0, min_bytes: int = 1,
           epoch: int = -1):
    q = h.req(FETCH, version)
    key = {"topic_id": h.logs.topic("t").topic_id} if version >= 13 else {"topic": "t"}
    response = h.call(q.FetchRequest(
        replica_id=-1, max_wait=datetime.timedelta(milliseconds=wait_ms), min_bytes=min_bytes,
        max_bytes=1 << 20, isolation_level=0, session_id=session[0], session_epoch=session[1], rack_id=rack,
        topics=(q.FetchTopic(**key, partitions=(q.FetchPartition(
            partition=0, fetch_offset=offset, partition_max_bytes=1 << 20, current_leader_epoch=epoch,
            last_fetched_epoch=-1, log_start_offset=-1),)),),
        forgotten_topics_data=(), cluster_id=None))
    return response


def _partition(response):
    [topic] = response.responses
    [p] = topic.partitions
    return p


def test_the_leader_sends_a_consumer_of_a_followers_rack_there_with_no_records_at_once(h):
    manager = _roles(h, leader=ME)
    manager.follower_fetch(TP, OTHER, 4)
    manager.follower_fetch(TP, THIRD, 4)
    # min_bytes beyond what there is and a long wait: the redirect is answered at once, as Kafka does
    p = _partition(_fetch(h, 12, "r2", wait_ms=30_000, min_bytes=1 << 20))
    assert (p.error_code, p.preferred_read_replica, p.high_watermark, p.records) == (0, OTHER, 4, b"")
    near_leader = _partition(_fetch(h, 12, "r1"))
    assert near_leader.preferred_read_replica == -1 and len(near_leader.records) > 0
    assert _partition(_fetch(h, 12, "")).preferred_read_replica == -1


def test_no_selector_means_every_consumer_reads_from_the_leader(h):
    manager = _roles(h, leader=ME, selector=None)
    manager.follower_fetch(TP, OTHER, 4)
    manager.follower_fetch(TP, THIRD, 4)
    p = _partition(_fetch(h, 12, "r2"))
    assert p.preferred_read_replica == -1 and len(p.records) > 0


def test_a_follower_serves_consumers_from_v11_up_to_its_high_watermark(h):
    _roles(h, leader=-1)      # a follower whose leader is not elected yet: no fetcher runs here
    h.logs.partition(*TP).log.advance_high_watermark(2)      # what the follower fetcher would do
    assert _partition(_fetch(h, 10, "r1")).error_code == NOT_LEADER_OR_FOLLOWER
    p = _partition(_fetch(h, 11, "r1"))
    assert (p.error_code, p.high_watermark, p.preferred_read_replica) == (0, 2, -1)
    assert _base_offsets(p.records) == [0]                    # the batch at 2 is past its HW
    beyond_hw = _partition(_fetch(h, 11, "r1", offset=3))    # in its log, past its HW: nothing yet
    assert (beyond_hw.error_code, beyond_hw.records) == (0, b"")
    # past its log end, from a client sending its leader epoch (KIP-320): OFFSET_OUT_OF_RANGE, on
    # which the client asks the leader again
    beyond_log = _partition(_fetch(h, 11, "r1", offset=9, epoch=h.logs.partition(*TP).log.leader_epoch))
    assert beyond_log.error_code == 1


def test_a_fetch_session_repeats_the_redirect_on_every_incremental_fetch(h):
    manager = _roles(h, leader=ME)
    manager.follower_fetch(TP, OTHER, 4)
    first = _fetch(h, 12, "r2", session=(0, 0))
    assert _partition(first).preferred_read_replica == OTHER
    again = _fetch(h, 12, "r2", session=(first.session_id, 1))
    assert _partition(again).preferred_read_replica == OTHER


def _base_offsets(records) -> list[int]:
    """Each batch's base offset (int64), then its length (int32) to skip to the next."""
    data, pos, bases = bytes(records), 0, []
    while pos < len(data):
        bases.append(int.from_bytes(data[pos:pos + 8], "big"))
        pos += 12 + int.from_bytes(data[pos + 8:pos + 12], "big")
    return bases
