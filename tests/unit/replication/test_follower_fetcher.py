"""The follower's fetcher against a leader that answers as a leader does.

The leader is real: its own LogManager on tmp_path, a ReplicaManager leading
the partition, and kavka's Dispatcher with the OffsetForLeaderEpoch and Fetch
handlers.  Only the connection is faked: ``LeaderPeer`` encodes each request
into a frame, hands it to the leader's dispatcher and decodes the answer
frame, as ``kavka.replication.peer.Peer`` does over a socket, and can be told
to break.  Both brokers run on one event loop.
"""

from __future__ import annotations

import asyncio
import functools
import time

import pytest
from replica_world import TP, Store, manager, open_logs, produce

import kavka.api  # noqa: F401  (registers every handler)
from kavka.api.context import BrokerContext, RandomProducerIds
from kavka.clock import ManualClock
from kavka.protocol import messages
from kavka.protocol.framing import parse_response_header
from kavka.protocol.records import iter_batches
from kavka.replication import fetcher as fetcher_module
from kavka.replication.peer import PeerError
from kavka.server.dispatch import Dispatcher

FOLLOWER, LEADER = 1, 2


class LeaderPeer:
    """A Peer whose other end is the leader's dispatcher, in process."""

    def __init__(self, context: BrokerContext) -> None:
        self.dispatcher = Dispatcher(context)
        self.correlation = 0
        self.connects = 0
        self.closed = 0
        self.break_after: int | None = None     # requests to answer before the connection breaks
        self.requests: list[int] = []           # api keys, in order

    async def connect(self, host, port, client_id, timeout=5.0, security=None):
        self.connects += 1
        return self

    async def request(self, obj, timeout: float):
        if self.break_after is not None:
            if self.break_after == 0:
                self.break_after = None
                raise PeerError("connection reset (test)")
            self.break_after -= 1
        self.correlation += 1
        api_key, version = int(obj.__api_key__), int(obj.__version__)
        self.requests.append(api_key)
        frame = messages.encode_request_frame(obj, self.correlation, f"kavka-replica-{FOLLOWER}")[4:]
        parts = self.dispatcher.handle(frame, _Conn())
        if asyncio.iscoroutine(parts):
            parts = await parts
        data = b"".join(p.read() if hasattr(p, "read") else bytes(p) for p in parts)[4:]
        correlation, header_size = parse_response_header(data, messages.response_header_flexible(api_key, version))
        assert correlation == self.correlation
        return messages.decode_response(api_key, version, data, header_size)

    def close(self) -> None:
        self.closed += 1


class _Conn:
    peer = "127.0.0.1:40000"


class Pair:
    """A leader and a follower broker of TP sharing one store of partition states."""

    def __init__(self, tmp_path, monkeypatch) -> None:
        self.clock = ManualClock()
        self.store = Store()
        self.leader_logs = open_logs(tmp_path / "leader", self.clock)
        topic_id = self.leader_logs.topic("t").topic_id
        self.follower_logs = open_logs(tmp_path / "follower", self.clock, topic_id=topic_id)
        self.leader = manager(LEADER, self.leader_logs, self.clock, self.store)
        self.follower = manager(FOLLOWER, self.follower_logs, self.clock, self.store,
                                address_of=lambda broker_id: ("127.0.0.1", 9000 + broker_id))
        config = self.leader_logs.broker_config
        context = BrokerContext(logs=self.leader_logs, config=config, clock=self.clock, node_id=LEADER,
                                host="127.0.0.1", port=9002, producer_ids=RandomProducerIds(),
                                replicas=self.leader)
        self.peer = LeaderPeer(context)
        monkeypatch.setattr(fetcher_module.Peer, "connect", self.peer.connect)

    def leader_log(self):
        return self.leader_logs.partition(*TP).log

    def follower_log(self):
        return self.follower_logs.partition(*TP).log

    def set(self, epoch: int, isr=(LEADER,), leader: int = LEADER, apply_to=None):
        a = self.store.set(TP, (FOLLOWER, LEADER), leader, epoch, isr)
        for m in apply_to or (self.leader, self.follower):
            m.apply(TP, a)
        return a

    async def close(self) -> None:
        await self.follower.stop()
        await self.leader.stop()
        self.follower_logs.close()
        self.leader_logs.close()


@pytest.fixture
def pair(tmp_path, monkeypatch):
    return Pair(tmp_path, monkeypatch)


def asynchronous(test):
    @functools.wraps(test)
    def run(pair, *args, **kwargs):
        async def bounded():
            try:
                async with asyncio.timeout(15):
                    return await test(pair, *args, **kwargs)
            finally:
                await pair.close()
        return asyncio.run(bounded())
    return run


async def until(predicate, what: str, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        await asyncio.sleep(0.01)


def stored(plog) -> list[tuple[int, int, bytes]]:
    """(base offset, leader epoch, bytes) of every batch the log holds."""
    out, offset = [], plog.log_start_offset
    while offset < plog.log_end_offset:
        data = b"".join(s.read() for s in plog.read(offset, 1 << 20, min_one_batch=True).slices)
        batches = list(iter_batches(data))
        if not batches:
            break
        for pos, h in batches:
            out.append((h.base_offset, h.partition_leader_epoch, bytes(data[pos:pos + h.size])))
        offset = batches[-1][1].next_offset
    return out


def copy_leader_batches(pair) -> None:
    """What the follower held after replicating the leader's log so far."""
    for _base, _epoch, data in stored(pair.leader_log()):
        pair.follower_logs.partition(*TP).append_as_follower(data)


async def following_with_one_record(pair) -> None:
    """Both in the ISR of epoch 1, the follower holding the leader's first record."""
    pair.set(epoch=1, isr=(FOLLOWER, LEADER))
    produce(pair.leader_logs, pair.clock, b"a")
    await until(lambda: pair.follower_log().log_end_offset == 1, "the first record")


# -- copying -------------------------------------------------------------------------------

@asynchronous
async def test_the_follower_copies_the_leaders_batches_as_they_are(pair):
    pair.set(epoch=1, isr=(FOLLOWER, LEADER))
    for i in range(3):
        produce(pair.leader_logs, pair.clock, f"v{i}".encode(), b"more")
    await until(lambda: pair.follower_log().log_end_offset == 6, "the follower at the leader's end")
    assert stored(pair.follower_log()) == stored(pair.leader_log())
    assert all(epoch == 1 for _, epoch, _ in stored(pair.follower_log()))
    # The follower reached the end: the leader's HW moves, and the next answer carries it.
    await until(lambda: pair.leader_log().high_watermark == 6, "the leader's high watermark")
    await until(lambda: pair.follower_log().high_watermark == 6, "the follower's high watermark")
    produce(pair.leader_logs, pair.clock, b"later")
    await until(lambda: pair.follower_log().log_end_offset == 7, "a record produced while following")
    assert stored(pair.follower_log()) == stored(pair.leader_log())


# -- truncation by leader epoch ------------------------------------------------------------

@asynchronous
async def test_a_diverged_tail_is_truncated_before_fetching(pair):
    pair.set(epoch=1, apply_to=[pair.leader])
    produce(pair.leader_logs, pair.clock, b"a")
    produce(pair.leader_logs, pair.clock, b"b")
    copy_leader_batches(pair)
    # The follower, leader of epoch 1 before, wrote a batch no other replica got ...
    pair.follower_log().assign_leader_epoch(1)
    produce(pair.follower_logs, pair.clock, b"lost")
    # ... while the new leader started epoch 2 at offset 2 and took other records there.
    pair.set(epoch=2, apply_to=[pair.leader])
    produce(pair.leader_logs, pair.clock, b"c")
    assert pair.follower_log().log_end_offset == pair.leader_log().log_end_offset == 3
    pair.set(epoch=2)
    await until(lambda: [e for _, e, _ in stored(pair.follower_log())] == [1, 1, 2], "the epoch-2 batch copied")
    assert stored(pair.follower_log()) == stored(pair.leader_log())
    assert pair.follower_log().end_offset_for_epoch(1) == (1, 2)
    assert pair.peer.requests[0] == 23      # OffsetForLeaderEpoch before any Fetch


@asynchronous
async def test_a_follower_of_an_epoch_older_than_the_leaders_history_truncates_to_its_start(pair):
    """OffsetForLeaderEpoch for an epoch older than the leader's oldest answers that epoch
    with the start of the leader's first one (Kafka's rule): the follower drops what it
    wrote from there on, although the offsets overlap."""
    pair.set(epoch=5, apply_to=[pair.leader])
    produce(pair.leader_logs, pair.clock, b"a")
    follower_log = pair.follower_log()
    follower_log.assign_leader_epoch(3)
    produce(pair.follower_logs, pair.clock, b"old-1")
    produce(pair.follower_logs, pair.clock, b"old-2")
    pair.set(epoch=5)
    await until(lambda: [e for _, e, _ in stored(pair.follower_log())] == [5], "the follower on the leader's log")
    assert pair.follower_log().leader_epoch_entries() == [(5, 0)]
    assert stored(pair.follower_log()) == stored(pair.leader_log())


# -- errors from the leader ----------------------------------------------------------------

@pytest.mark.parametrize("leader_late", ["not_leading_yet", "older_epoch"])
@asynchronous
async def test_a_leader_not_leading_the_epoch_yet_is_asked_again(pair, leader_late):
    """NOT_LEADER_OR_FOLLOWER (no role yet) or UNKNOWN_LEADER_EPOCH (still in an older
    epoch): the follower changes nothing, backs off, and goes on once the leader leads."""
    if leader_late == "older_epoch":
        pair.set(epoch=1, apply_to=[pair.leader])
    else:
        pair.leader_log().assign_leader_epoch(1)
    produce(pair.leader_logs, pair.clock, b"a")
    copy_leader_batches(pair)
    before = stored(pair.follower_log())
    pair.set(epoch=2, apply_to=[pair.follower])              # the store said so; the leader lags
    await until(lambda: pair.peer.requests.count(23) >= 3, "repeated OffsetForLeaderEpoch requests")
    assert 1 not in pair.peer.requests, "no Fetch before the divergence point is known"
    assert stored(pair.follower_log()) == before
    pair.set(epoch=2, apply_to=[pair.leader])
    produce(pair.leader_logs, pair.clock, b"b")
    await until(lambda: pair.follower_log().log_end_offset == 2, "the follower caught up")
    assert stored(pair.follower_log()) == stored(pair.leader_log())
    assert [e for _, e, _ in stored(pair.follower_log())] == [1, 2]


@asynchronous
async def test_a_leader_log_starting_after_the_followers_end_restarts_it_there(pair):
    pair.set(epoch=1, apply_to=[pair.leader])
    for i in range(5):
        produce(pair.leader_logs, pair.clock, f"r{i}".encode())
    pair.leader_log().set_log_start_offset(3)                # DeleteRecords (or retention) went past
    pair.set(epoch=1)
    await until(lambda: pair.follower_log().log_end_offset == 5, "the follower at the leader's end")
    assert pair.follower_log().log_start_offset == 3
    assert stored(pair.follower_log()) == stored(pair.leader_log())


@asynchronous
async def test_a_broken_connection_is_reopened(pair):
    await following_with_one_record(pair)
    pair.peer.break_after = 0                                 # the next request fails
    await until(lambda: pair.peer.closed >= 1, "the broken connection closed")
    produce(pair.leader_logs, pair.clock, b"b")
    await until(lambda: pair.follower_log().log_end_offset == 2, "the record after the break")
    assert pair.peer.connects >= 2
    assert stored(pair.follower_log()) == stored(pair.leader_log())


@asynchronous
async def test_a_follower_moved_to_another_leader_stops_fetching_here(pair):
    await following_with_one_record(pair)
    pair.set(epoch=2, isr=(FOLLOWER,), leader=FOLLOWER, apply_to=[pair.follower])
    assert pair.follower.leader_error(TP).name == "none"
    fetcher = pair.follower.fetchers[LEADER]
    assert TP not in fetcher.partitions
    produce(pair.leader_logs, pair.clock, b"stale")          # the old leader's write is not copied
    await asyncio.sleep(0.2)
    assert pair.follower_log().log_end_offset == 1
