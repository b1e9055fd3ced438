"""A follower's copy loop: one per leader broker, for every partition it follows there.

For each partition the loop first finds where its log and the leader's part
(KIP-101/279): it asks OffsetForLeaderEpoch for its own latest epoch, the
leader answers the largest epoch it knows up to that one and where it ended;
the follower truncates to the smaller of that end and its own end of the same
epoch, and asks again if the leader's epoch is not one it has.  Then it fetches
(Fetch v12 with its broker id as ``replica_id``) from its log end offset, and
appends what comes as it is, with the leader's offsets and epochs (a partition a
reassignment is adding this broker to is left out of the fetch while
``follower.replication.throttled.rate`` is exceeded, kavka.replication.quota).  The
leader's high watermark comes with every answer; the follower's own is the
smaller of that and its log end.

Errors: a leader that says NOT_LEADER_OR_FOLLOWER or an epoch mismatch is not
leading this epoch any more (or not yet): the partition waits for the store to
say who leads, retrying after a backoff.  OFFSET_OUT_OF_RANGE below the
leader's log start (retention went past us) restarts the follower's log there.
A broken connection is reopened after a backoff.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from dataclasses import dataclass

from kavka.protocol.builders import make
from kavka.protocol.errors import ErrorCode
from kavka.replication.peer import Peer, PeerAuthenticationFailed, PeerError

log = logging.getLogger("kavka.replication")

FETCH_VERSION, EPOCH_VERSION = 12, 3
REQUEST_TIMEOUT_S = 10.0


@dataclass(slots=True)
class Followed:
    leader_epoch: int
    truncated: bool = False
    retry_at: float = 0.0


class Fetcher:
    def __init__(self, manager, leader_id: int) -> None:
        self.manager = manager
        self.leader_id = leader_id
        self.partitions: dict[tuple[str, int], Followed] = {}
        self._wake = asyncio.Event()
        self._peer: Peer | None = None
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"kavka-fetch-{leader_id}")

    def add(self, tp, leader_epoch: int) -> None:
        self.partitions[tp] = Followed(leader_epoch)
        self._wake.set()

    def remove(self, tp) -> None:
        self.partitions.pop(tp, None)

    def stop(self) -> asyncio.Task:
        # Only cancel: closing the connection here could complete a pending read at the same
        # moment, and asyncio.wait_for (3.11) would then swallow the cancellation.
        self._stopping = True
        self._task.cancel()
        return self._task

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = self.manager.backoff_ms / 1000
        try:
            while not self._stopping:
                if not self.partitions:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                try:
                    peer = await self._connect()
                    await self._truncate(peer)
                    await self._fetch(peer)
                except PeerAuthenticationFailed as exc:   # a configuration problem: say so louder
                    log.warning("replica fetch from broker %d: %s; retrying", self.leader_id, exc)
                    self._disconnect()
                    await asyncio.sleep(backoff)
                except PeerError as exc:
                    log.info("replica fetch from broker %d: %s; retrying", self.leader_id, exc)
                    self._disconnect()
                    await asyncio.sleep(backoff)
                except Exception:
                    log.exception("replica fetch from broker %d failed", self.leader_id)
                    self._disconnect()
                    await asyncio.sleep(backoff)
        finally:
            self._disconnect()

    async def _connect(self) -> Peer:
        if self._peer is None:
            address = self.manager.address_of(self.leader_id)
            if address is None:
                raise PeerError(f"broker {self.leader_id} has no known address")
            self._peer = await Peer.connect(*address, client_id=f"kavka-replica-{self.manager.broker_id}",
                                            security=self.manager.peer_security)
        return self._peer

    def _disconnect(self) -> None:
        if self._peer is not None:
            self._peer.close()
            self._peer = None

    def _ready(self) -> list[tuple[tuple[str, int], Followed]]:
        now = asyncio.get_running_loop().time()
        return [(tp, f) for tp, f in self.partitions.items() if f.retry_at <= now]

    def _hold(self, tp, error) -> None:
        f = self.partitions.get(tp)
        if f is not None:
            f.retry_at = asyncio.get_running_loop().time() + self.manager.backoff_ms / 1000
            log.debug("%s-%d: leader %d answered %s", tp[0], tp[1], self.leader_id, error)

    # -- truncation ----------------------------------------------------------------------------

    async def _truncate(self, peer: Peer) -> None:
        pending = [(tp, f) for tp, f in self._ready() if not f.truncated]
        for _ in range(8):  # each round goes back at least one epoch
            if not pending:
                return
            from kio.schema.offset_for_leader_epoch.v3 import request as q
            by_topic: dict[str, list] = {}
            for (topic, p), f in pending:
                plog = self._log((topic, p))
                if plog is None:
                    continue
                by_topic.setdefault(topic, []).append(make(
                    q.OffsetForLeaderPartition, partition=p, current_leader_epoch=f.leader_epoch,
                    leader_epoch=plog.leader_epoch))
            body = make(q.OffsetForLeaderEpochRequest, replica_id=self.manager.broker_id, topics=tuple(
                make(q.OffsetForLeaderTopic, topic=t, partitions=tuple(ps)) for t, ps in by_topic.items()))
            response = await peer.request(body, REQUEST_TIMEOUT_S)
            again = []
            for topic in response.topics:
                for r in topic.partitions:
                    tp = (topic.topic, r.partition)
                    f = self.partitions.get(tp)
                    plog = self._log(tp)
                    if f is None or plog is None:
                        continue
                    if r.error_code != ErrorCode.none:
                        self._hold(tp, r.error_code)
                        continue
                    if self._apply_epoch_end(tp, plog, r.leader_epoch, r.end_offset):
                        f.truncated = True
                    else:
                        again.append((tp, f))
            pending = again

    def _apply_epoch_end(self, tp, plog, leader_epoch: int, end_offset: int) -> bool:
        """Truncate after the leader's answer; False if another round is needed."""
        partition = self.manager.logs.partition(*tp)
        if leader_epoch < 0 or end_offset < 0:
            # The leader knows no epoch this old: keep what is below the high watermark.
            partition.truncate_to(min(plog.high_watermark, plog.log_end_offset))
            return True
        mine_epoch, mine_end = plog.end_offset_for_epoch(leader_epoch)
        target = min(end_offset, mine_end, plog.log_end_offset)
        if target < plog.log_end_offset:
            log.info("%s-%d: truncating from %d to %d (leader epoch %d ends at %d)", tp[0], tp[1],
                     plog.log_end_offset, target, leader_epoch, end_offset)
            partition.truncate_to(target)
        return mine_epoch == leader_epoch or mine_epoch < 0

    # -- fetching ------------------------------------------------------------------------------

    async def _fetch(self, peer: Peer) -> None:
        from kio.schema.fetch.v12 import request as q
        m = self.manager
        quotas = {tp: quota for tp, _f in self._ready() if (quota := m.follower_quota_of(tp)) is not None}
        ready = [(tp, f) for tp, f in self._ready() if f.truncated and not (tp in quotas and quotas[tp].exceeded())]
        if not ready:
            await asyncio.sleep(self.manager.backoff_ms / 1000)
            return
        by_topic: dict[str, list] = {}
        for (topic, p), f in ready:
            plog = self._log((topic, p))
            if plog is None:
                continue
            by_topic.setdefault(topic, []).append(make(
                q.FetchPartition, partition=p, current_leader_epoch=f.leader_epoch,
                fetch_offset=plog.log_end_offset, last_fetched_epoch=-1, log_start_offset=plog.log_start_offset,
                partition_max_bytes=m.partition_max_bytes))
        body = make(q.FetchRequest, cluster_id=None, replica_id=m.broker_id,
                    max_wait=datetime.timedelta(milliseconds=m.fetch_max_wait_ms), min_bytes=1,
                    max_bytes=m.fetch_max_bytes, isolation_level=0, session_id=0, session_epoch=-1,
                    topics=tuple(make(q.FetchTopic, topic=t, partitions=tuple(ps)) for t, ps in by_topic.items()),
                    forgotten_topics_data=(), rack_id="")
        response = await peer.request(body, REQUEST_TIMEOUT_S + m.fetch_max_wait_ms / 1000)
        if response.error_code != ErrorCode.none:
            raise PeerError(f"fetch error {response.error_code}")
        for topic in response.responses:
            for r in topic.partitions:
                tp = (topic.topic, r.partition_index)
                self._apply_fetched(tp, r)
                if tp in quotas and r.records:
                    quotas[tp].record(len(r.records))

    def _apply_fetched(self, tp, r) -> None:
        if tp not in self.partitions:
            return  # no longer followed from this leader
        partition = self.manager.logs.partition(*tp)
        if partition is None:
            return
        plog = partition.log
        if r.error_code == ErrorCode.offset_out_of_range:
            if plog.log_end_offset < r.log_start_offset:
                log.info("%s-%d: the leader's log starts at %d, after ours ends; starting there",
                         tp[0], tp[1], r.log_start_offset)
                partition.restart_at(r.log_start_offset)
            else:
                self.partitions[tp].truncated = False
            return
        if r.error_code != ErrorCode.none:
            self._hold(tp, r.error_code)
            return
        if r.records:
            partition.append_as_follower(r.records)
        if r.log_start_offset > plog.log_start_offset:
            plog.set_log_start_offset(min(r.log_start_offset, plog.high_watermark, plog.log_end_offset))
        hw = min(r.high_watermark, plog.log_end_offset)
        if hw > plog.high_watermark:
            plog.advance_high_watermark(hw)
            for listener in list(plog.listeners):   # consumers long-polling this follower (KIP-392)
                listener(plog)

    def _log(self, tp):
        partition = self.manager.logs.partition(*tp)
        return None if partition is None else partition.log
