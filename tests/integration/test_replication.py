"""Replication between three in-process brokers (partition states from an in-memory store).

What is checked: followers copy the leader byte for byte; acks=all is answered
only once the ISR has the records, and consumers never see past the high
watermark; a follower that stops fetching leaves the ISR after
replica.lag.time.max.ms and acks=all goes on with the rest, or is refused with
NOT_ENOUGH_REPLICAS when min.insync.replicas can no longer be met; a follower
that comes back is truncated and rejoins the ISR; after a leader change the old
leader's unreplicated tail is truncated away; non-leaders refuse clients.
"""

from __future__ import annotations

import pytest
from replication_helpers import (
    LocalStore, attach, consumer_fetch, create_topic, log_of, produce, stored, wait_until,
)

from kavka.protocol.errors import ErrorCode as E

pytestmark = pytest.mark.timeout(60)
TP = ("r", 0)
LAG_MS = 1000


@pytest.fixture
def cluster(kavka_broker_factory):
    brokers = {i: kavka_broker_factory({"broker.id": i}) for i in (1, 2, 3)}
    store = LocalStore()
    attach(store, brokers, lag_max_ms=LAG_MS)
    return brokers, store


def setup_topic(brokers, store, min_isr=2, leader=1):
    create_topic(brokers, "r", 1, {"min.insync.replicas": str(min_isr)})
    store.set(TP, (1, 2, 3), leader, 1, (1, 2, 3))
    wait_until(lambda: all(b.call(lambda b=b: log_of(b, "r").leader_epoch) >= 0 for b in brokers.values()), 5,
               "roles applied")


def test_followers_copy_the_leader_and_acks_all_waits_for_them(cluster):
    brokers, store = cluster
    setup_topic(brokers, store)
    for i in range(5):
        assert produce(brokers[1], "r", [f"v{i}-{j}".encode() for j in range(10)]) == (E.none, i * 10)
        # Answered: the ISR (all three) has it, so the HW covers it everywhere soon after.
        assert log_of(brokers[1], "r").high_watermark >= (i + 1) * 10
    wait_until(lambda: all(log_of(b, "r").log_end_offset == 50 for b in brokers.values()), 5, "followers at 50")
    assert stored(brokers[2], "r") == stored(brokers[1], "r") == stored(brokers[3], "r")
    wait_until(lambda: all(log_of(b, "r").high_watermark == 50 for b in brokers.values()), 5, "HW 50 everywhere")
    assert store.states[TP].isr == (1, 2, 3)


def test_followers_refuse_produce_and_serve_consumer_fetches_up_to_their_high_watermark(cluster):
    """As in Kafka since KIP-392: a consumer's Fetch v11+ carries its client metadata, so any
    replica serves it (up to that replica's high watermark); only the leader takes writes."""
    brokers, store = cluster
    setup_topic(brokers, store)
    assert produce(brokers[2], "r", [b"x"])[0] == E.not_leader_or_follower
    assert produce(brokers[1], "r", [b"y"]) == (E.none, 0)
    assert consumer_fetch(brokers[1], "r")[0] == E.none
    wait_until(lambda: consumer_fetch(brokers[3], "r")[1] == 1, 5, "the follower's high watermark at 1")
    error, _, records = consumer_fetch(brokers[3], "r")
    assert error == E.none and records


@pytest.mark.slow
def test_a_stopped_follower_leaves_the_isr_and_acks_all_goes_on(cluster):
    brokers, store = cluster
    setup_topic(brokers, store)
    assert produce(brokers[1], "r", [b"a"]) == (E.none, 0)
    brokers[3].stop()
    # The next acks=all waits for broker 3 until the leader drops it from the ISR.
    assert produce(brokers[1], "r", [b"b"], timeout_ms=10_000) == (E.none, 1)
    assert store.states[TP].isr == (1, 2)
    # Consumers saw nothing beyond the high watermark meanwhile; now both records.
    error, hw, records = consumer_fetch(brokers[1], "r")
    assert (error, hw) == (E.none, 2) and records


@pytest.mark.slow
def test_min_insync_replicas_refuses_acks_all_but_not_acks_1(cluster):
    brokers, store = cluster
    setup_topic(brokers, store, min_isr=3)
    assert produce(brokers[1], "r", [b"a"]) == (E.none, 0)
    brokers[2].stop()
    code, _ = produce(brokers[1], "r", [b"b"], timeout_ms=10_000)
    assert code in (E.not_enough_replicas_after_append, E.request_timed_out)
    wait_until(lambda: store.states[TP].isr == (1, 3), 5, "ISR without broker 2")
    assert produce(brokers[1], "r", [b"c"])[0] == E.not_enough_replicas
    assert produce(brokers[1], "r", [b"d"], acks=1)[0] == E.none


@pytest.mark.slow
def test_acks_all_times_out_when_the_isr_cannot_shrink(cluster):
    brokers, store = cluster
    setup_topic(brokers, store)
    assert produce(brokers[1], "r", [b"a"]) == (E.none, 0)
    brokers[1].context.replicas.propose_isr = _refuse   # as for a leader cut off from the store
    brokers[2].stop()
    assert produce(brokers[1], "r", [b"b"], timeout_ms=2 * LAG_MS + 500) == (E.request_timed_out, -1)
    assert log_of(brokers[1], "r").high_watermark == 1   # never acknowledged, never visible


async def _refuse(*_args):
    return None


def test_leader_change_truncates_the_old_leaders_unreplicated_tail(cluster):
    brokers, store = cluster
    setup_topic(brokers, store)
    assert produce(brokers[1], "r", [b"a", b"b"]) == (E.none, 0)
    wait_until(lambda: all(log_of(b, "r").high_watermark == 2 for b in brokers.values()), 5, "HW 2")
    # Broker 1 is cut off from its followers: they now follow nobody; it takes two acks=1 writes.
    for broker_id in (2, 3):
        brokers[broker_id].call(store.managers[broker_id][1].apply, TP, None)
    assert produce(brokers[1], "r", [b"lost-1"], acks=1) == (E.none, 2)
    assert produce(brokers[1], "r", [b"lost-2"], acks=1) == (E.none, 3)
    # The controller elects broker 2 (epoch 2); it takes a write; broker 1 becomes a follower.
    store.set(TP, (1, 2, 3), 2, 2, (2, 3))
    wait_until(lambda: produce(brokers[2], "r", [b"new"], acks=1)[0] == E.none, 5, "broker 2 leading")
    wait_until(lambda: log_of(brokers[1], "r").log_end_offset == 3 and stored(brokers[1], "r")
               == stored(brokers[2], "r"), 10, "old leader truncated and caught up")
    assert log_of(brokers[2], "r").leader_epoch_entries()[-1] == (2, 2)
    # And it rejoins the ISR once caught up.
    wait_until(lambda: store.states[TP].isr == (1, 2, 3), 10, "broker 1 back in the ISR")


@pytest.mark.slow
def test_a_restarted_follower_catches_up_and_rejoins(cluster, kavka_broker_factory):
    brokers, store = cluster
    setup_topic(brokers, store)
    for i in range(3):
        assert produce(brokers[1], "r", [b"x"] * 100)[0] == E.none
    data_dir = brokers[3].data_dir
    brokers[3].stop()
    assert produce(brokers[1], "r", [b"y"] * 100, timeout_ms=10_000)[0] == E.none
    assert store.states[TP].isr == (1, 2)
    brokers[3] = kavka_broker_factory({"broker.id": 3}, data_dir=data_dir)
    attach(store, brokers, lag_max_ms=LAG_MS, only=(3,))
    wait_until(lambda: store.states[TP].isr == (1, 2, 3), 10, "broker 3 back in the ISR")
    assert stored(brokers[3], "r") == stored(brokers[1], "r")


@pytest.mark.slow
def test_a_follower_behind_the_leaders_log_start_restarts_there(cluster, kavka_broker_factory):
    brokers, store = cluster
    setup_topic(brokers, store)
    assert produce(brokers[1], "r", [b"x"] * 10)[0] == E.none
    data_dir = brokers[3].data_dir
    brokers[3].stop()
    for _ in range(5):
        assert produce(brokers[1], "r", [b"y"] * 20, timeout_ms=10_000)[0] == E.none
    brokers[1].call(lambda: log_of(brokers[1], "r").set_log_start_offset(70))   # as DeleteRecords would
    brokers[3] = kavka_broker_factory({"broker.id": 3}, data_dir=data_dir)
    attach(store, brokers, lag_max_ms=LAG_MS, only=(3,))
    wait_until(lambda: log_of(brokers[3], "r").log_end_offset == 110, 10, "broker 3 caught up")
    assert log_of(brokers[3], "r").log_start_offset >= 70
    assert stored(brokers[3], "r") == stored(brokers[1], "r")
    wait_until(lambda: store.states[TP].isr == (1, 2, 3), 10, "broker 3 back in the ISR")


@pytest.mark.slow  # waits 3 replica lag times (~4.5 s)
def test_a_dead_follower_is_not_brought_back_by_its_old_position(cluster):
    brokers, store = cluster
    setup_topic(brokers, store)
    assert produce(brokers[1], "r", [b"a"]) == (E.none, 0)
    wait_until(lambda: log_of(brokers[3], "r").log_end_offset == 1, 5, "broker 3 caught up")
    brokers[3].stop()   # idle: its last position equals the high watermark
    wait_until(lambda: store.states[TP].isr == (1, 2), 10, "broker 3 out of the ISR")
    shrunk = len(store.history)
    import time
    time.sleep(3 * LAG_MS / 1000)   # broker 2 keeps fetching meanwhile
    assert store.states[TP].isr == (1, 2)
    assert store.history[shrunk:] == []   # and it never came back in between


def test_pipelined_acks_all_produces_are_answered_in_order(cluster):
    """A producer sends many acks=all requests without waiting: the leader appends each as it
    comes, one replication round acknowledges many, and the answers keep request order."""
    import socket
    import struct
    import time as _time

    from kio.schema.fetch.v12 import request as fq
    from kio.schema.produce.v9 import request as q

    from kavka.api.responses import make
    from kavka.protocol import messages
    from kavka.protocol.framing import parse_response_header
    from kavka.protocol.record_codec import encode_batch

    brokers, store = cluster
    setup_topic(brokers, store)
    requests = []
    for i in range(20):
        batch = encode_batch([(None, f"v{i}".encode(), int(_time.time() * 1000), ())])
        requests.append(make(q.ProduceRequest, transactional_id=None, acks=-1, timeout=_ms(5000), topic_data=(
            make(q.TopicProduceData, name="r", partition_data=(make(q.PartitionProduceData, index=0, records=batch),)),)))
    # A consumer fetch that long-polls in the middle: answers after it must wait for it.
    fetch = make(fq.FetchRequest, cluster_id=None, replica_id=-1, max_wait=_ms(300), min_bytes=1 << 20,
                 max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1, topics=(
                     make(fq.FetchTopic, topic="r", partitions=(make(
                         fq.FetchPartition, partition=0, current_leader_epoch=-1, fetch_offset=0,
                         last_fetched_epoch=-1, log_start_offset=-1, partition_max_bytes=1 << 20),)),),
                 forgotten_topics_data=(), rack_id="")
    sent = requests[:10] + [fetch] + requests[10:]
    with socket.create_connection(("127.0.0.1", brokers[1].port)) as sock:
        sock.sendall(b"".join(messages.encode_request_frame(body, n + 1, "pipeline") for n, body in enumerate(sent)))
        reader = sock.makefile("rb")
        answers = []
        for body in sent:
            size = struct.unpack(">i", reader.read(4))[0]
            frame = reader.read(size)
            key, version = int(body.__api_key__), int(body.__version__)
            correlation, header = parse_response_header(frame, messages.response_header_flexible(key, version))
            answers.append((correlation, messages.decode_response(key, version, frame, header)))
    assert [c for c, _ in answers] == list(range(1, len(sent) + 1))
    offsets = [a.responses[0].partition_responses[0].base_offset for c, a in answers if c != 11]
    assert offsets == list(range(20))
    assert all(a.responses[0].partition_responses[0].error_code == E.none for c, a in answers if c != 11)


def _ms(n):
    import datetime
    return datetime.timedelta(milliseconds=n)
