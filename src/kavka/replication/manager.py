"""The replicas of this broker: which partitions it leads, which it follows, and from whom.

Theory of operation
-------------------
The cluster store (etcd, kavka.cluster) says, per partition, its replicas, its
leader, the leader epoch and the in-sync replicas (ISR).  :meth:`apply` turns
each such state into a role here:

* **leader** — clients produce and consume here.  The log starts the new
  leader epoch at its log end offset (so followers can find where they
  diverge, KIP-101).  Followers' fetches (:meth:`follower_fetch`) move a
  :class:`~kavka.replication.leader.LeaderState`; the high watermark is the
  ISR's smallest log end offset and only moves forward.  ``acks=all``
  produces wait in :meth:`wait_replicated` until the high watermark passes
  their last offset.  Every ``replica.lag.time.max.ms / 2`` the leader drops
  followers that stopped keeping up from the ISR, and it adds them back when
  they catch up — by a compare-and-swap in the store (``propose_isr``), applied
  here only once the store took it.  A leader cut off from the store can
  therefore not shrink the ISR to itself and acknowledge alone.
* **follower** — a :class:`~kavka.replication.fetcher.Fetcher` per leader
  broker copies the leader's batches as they are (offsets, epochs, producer
  ids), after truncating whatever it holds beyond the point where its log and
  the leader's diverge (OffsetForLeaderEpoch).  Produce and consumer fetches
  are refused with NOT_LEADER_OR_FOLLOWER.

Everything runs on the broker's event loop; the state per partition changes
only in :meth:`apply`, in the fetch and produce paths, and in the ISR timer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from kavka.config import is_throttled
from kavka.metadata.interfaces import ReplicaRoles
from kavka.protocol.errors import ErrorCode
from kavka.replication.leader import LeaderState
from kavka.replication.quota import ReplicationQuota
from kavka.replication.replica_selector import ReplicaView, rack_aware

log = logging.getLogger("kavka.replication")

TopicPartition = tuple[str, int]
NO_LEADER = -1


@dataclass(frozen=True, slots=True)
class Assignment:
    """The cluster's view of one partition, as the store holds it."""
    replicas: tuple[int, ...]
    leader: int
    leader_epoch: int
    isr: tuple[int, ...]
    version: int = 0    # the store's version of this state: what an ISR change compares with
    adding: tuple[int, ...] = ()   # the replicas a reassignment is adding (their copying is throttled)


@dataclass(slots=True)
class ReplicationWaiter:
    """An acks=all produce waiting for the high watermark to reach ``required``."""
    required: int          # the produce's last offset + 1
    min_isr: int           # the topic's min.insync.replicas when it was appended
    future: asyncio.Future

    def answer(self, error: ErrorCode) -> None:
        if not self.future.done():
            self.future.set_result(error)


@dataclass(slots=True)
class LeaderRole:
    assignment: Assignment
    state: LeaderState
    proposing: bool = False
    waiters: list[ReplicationWaiter] = field(default_factory=list)


@dataclass(slots=True)
class FollowerRole:
    assignment: Assignment


class ReplicaManager(ReplicaRoles):
    def __init__(self, broker_id: int, logs, clock, *,
                 address_of: Callable[[int], tuple[str, int] | None],
                 propose_isr: Callable[[TopicPartition, tuple[int, ...], int, int], Awaitable[int | None]],
                 rack_of: Callable[[int], str | None] = lambda _broker_id: None, replica_selector: str | None = None,
                 lag_max_ms: int = 30_000, fetch_max_wait_ms: int = 500, fetch_max_bytes: int = 16 << 20,
                 partition_max_bytes: int = 1 << 20, backoff_ms: int = 100,
                 leader_quota: ReplicationQuota | None = None, follower_quota: ReplicationQuota | None = None,
                 peer_security=None) -> None:
        self.broker_id = broker_id
        self.logs = logs
        self.clock = clock
        self.address_of = address_of
        self.propose_isr = propose_isr
        self.rack_of = rack_of
        self.replica_selector = replica_selector
        self.lag_max_ms = lag_max_ms
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.fetch_max_bytes = fetch_max_bytes
        self.partition_max_bytes = partition_max_bytes
        self.backoff_ms = backoff_ms
        self.leader_quota = leader_quota
        self.follower_quota = follower_quota
        self.peer_security = peer_security   # how fetchers connect (kavka.client_security.ClientSecurity)
        self.leaders: dict[TopicPartition, LeaderRole] = {}
        self.followers: dict[TopicPartition, FollowerRole] = {}
        self.fetchers: dict[int, object] = {}          # leader broker id -> Fetcher
        self._isr_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self.fenced = False

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self._isr_task = asyncio.get_running_loop().create_task(self._isr_loop(), name="kavka-isr")

    async def stop(self) -> None:
        tasks = [t for t in (self._isr_task, *self._tasks) if t is not None]
        for fetcher in self.fetchers.values():
            tasks.append(fetcher.stop())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.fetchers.clear()
        self.fence()   # answers the acks=all produces still waiting NOT_LEADER_OR_FOLLOWER

    def fence(self) -> None:
        """Cut off from the cluster store: stop acting as leader of anything."""
        self.fenced = True
        for tp in list(self.leaders):
            self._fail_waiters(self.leaders.pop(tp), ErrorCode.not_leader_or_follower)

    def unfence(self) -> None:
        """Registered again: roles come back as the store's states are applied."""
        self.fenced = False

    # -- roles -------------------------------------------------------------------------------

    def apply(self, tp: TopicPartition, assignment: Assignment | None) -> None:
        """The store's state of ``tp`` (None: the partition is gone)."""
        partition = self.logs.partition(*tp)
        if assignment is None or partition is None or self.broker_id not in assignment.replicas:
            self._drop(tp)
            return
        if assignment.leader == self.broker_id and not self.fenced:
            self._lead(tp, partition, assignment)
        else:
            self._follow(tp, partition, assignment)

    def _lead(self, tp: TopicPartition, partition, a: Assignment) -> None:
        role = self.leaders.get(tp)
        if role is not None and role.assignment.leader_epoch == a.leader_epoch:
            role.assignment = a               # an ISR change (ours, or the controller's), or new replicas
            if a.replicas != role.state.replicas:
                role.state.set_replicas(a.replicas, self.clock.now_ms())
            role.state.set_isr(a.isr)
            self._after_isr_change(tp, role, partition)
            return
        self._stop_following(tp)
        plog = partition.log
        if a.leader_epoch > plog.leader_epoch:
            plog.assign_leader_epoch(a.leader_epoch)
        now = self.clock.now_ms()
        if role is not None:
            self._fail_waiters(role, ErrorCode.not_leader_or_follower)
        role = self.leaders[tp] = LeaderRole(a, LeaderState(self.broker_id, a.replicas, a.isr, a.leader_epoch,
                                                            plog.log_end_offset, now))
        log.info("leading %s-%d at epoch %d, isr %s, log end %d", tp[0], tp[1], a.leader_epoch,
                 sorted(role.state.isr), plog.log_end_offset)
        self._after_isr_change(tp, role, partition)

    def _follow(self, tp: TopicPartition, partition, a: Assignment) -> None:
        role = self.leaders.pop(tp, None)
        if role is not None:
            self._fail_waiters(role, ErrorCode.not_leader_or_follower)
        partition.log.hw_follows_leo = False
        current = self.followers.get(tp)
        if current is not None and (current.assignment.leader, current.assignment.leader_epoch) \
                == (a.leader, a.leader_epoch):
            current.assignment = a
            return
        self._stop_following(tp)
        self.followers[tp] = FollowerRole(a)
        if a.leader != NO_LEADER and a.leader != self.broker_id:
            self._fetcher(a.leader).add(tp, a.leader_epoch)
            log.info("following %s-%d from broker %d at epoch %d", tp[0], tp[1], a.leader, a.leader_epoch)

    def _drop(self, tp: TopicPartition) -> None:
        role = self.leaders.pop(tp, None)
        if role is not None:
            self._fail_waiters(role, ErrorCode.not_leader_or_follower)
        self._stop_following(tp)

    def _stop_following(self, tp: TopicPartition) -> None:
        role = self.followers.pop(tp, None)
        if role is not None:
            fetcher = self.fetchers.get(role.assignment.leader)
            if fetcher is not None:
                fetcher.remove(tp)

    def _fetcher(self, leader_id: int):
        from kavka.replication.fetcher import Fetcher
        fetcher = self.fetchers.get(leader_id)
        if fetcher is None:
            fetcher = self.fetchers[leader_id] = Fetcher(self, leader_id)
        return fetcher

    # -- leader: produce ---------------------------------------------------------------------

    def leader_error(self, tp: TopicPartition) -> ErrorCode:
        return ErrorCode.none if tp in self.leaders else ErrorCode.not_leader_or_follower

    def read_error(self, tp: TopicPartition, follower_reads: bool) -> ErrorCode:
        if tp in self.leaders or (follower_reads and tp in self.followers):
            return ErrorCode.none
        return ErrorCode.not_leader_or_follower

    def preferred_read_replica(self, tp: TopicPartition, client_rack: str, fetch_offset: int) -> int:
        """KIP-392 (kavka.replication.replica_selector): on the leader, with a selector configured,
        an in-sync follower of the consumer's rack whose log reaches ``fetch_offset``; else -1.
        (Kafka also requires the follower's log to start at or before the offset; kavka's
        leader does not track followers' log starts, and a follower that has deleted the
        offset answers OFFSET_OUT_OF_RANGE, on which the consumer returns to the leader.)"""
        role = self.leaders.get(tp)
        if role is None or self.replica_selector is None or not client_rack:
            return -1
        now = self.clock.now_ms()
        state = role.state
        followers = [ReplicaView(broker_id, self.rack_of(broker_id), f.leo, now - f.last_caught_up_ms)
                     for broker_id, f in state.followers.items() if broker_id in state.isr and f.leo >= fetch_offset]
        leader = ReplicaView(self.broker_id, self.rack_of(self.broker_id),
                             self.logs.partition(*tp).log.log_end_offset, 0)
        chosen = rack_aware(client_rack, leader, followers)
        return -1 if chosen is leader else chosen.broker_id

    def produce_check(self, tp: TopicPartition, acks: int, min_isr: int) -> ErrorCode:
        role = self.leaders.get(tp)
        if role is None:
            return ErrorCode.not_leader_or_follower
        if acks == -1 and len(role.state.isr) < min_isr:
            return ErrorCode.not_enough_replicas
        return ErrorCode.none

    def wait_replicated(self, tp: TopicPartition, required: int, min_isr: int) -> asyncio.Future | ErrorCode:
        """acks=all: an error code now, or a future of one once the high watermark reaches
        ``required`` (the produce's last offset + 1)."""
        role = self.leaders.get(tp)
        if role is None:
            return ErrorCode.not_leader_or_follower
        if self.logs.partition(*tp).log.high_watermark >= required:
            return self._replicated_error(role, min_isr)
        future = asyncio.get_running_loop().create_future()
        role.waiters.append(ReplicationWaiter(required, min_isr, future))
        return future

    @staticmethod
    def _replicated_error(role: LeaderRole, min_isr: int) -> ErrorCode:
        return ErrorCode.not_enough_replicas_after_append if len(role.state.isr) < min_isr else ErrorCode.none

    def _fail_waiters(self, role: LeaderRole, error: ErrorCode) -> None:
        waiters, role.waiters = role.waiters, []
        for waiter in waiters:
            waiter.answer(error)

    # -- leader: followers' fetches ------------------------------------------------------------

    def follower_fetch(self, tp: TopicPartition, replica_id: int, fetch_offset: int) -> ErrorCode:
        """A follower asks for ``fetch_offset``: its log ends there."""
        role = self.leaders.get(tp)
        if role is None:
            return ErrorCode.not_leader_or_follower
        if not role.state.is_replica(replica_id):
            return ErrorCode.replica_not_available
        partition = self.logs.partition(*tp)
        plog = partition.log
        role.state.on_fetch(replica_id, fetch_offset, plog.log_end_offset, self.clock.now_ms())
        self._advance_hw(role, plog)
        if not role.proposing and role.state.may_join(replica_id, plog.high_watermark):
            self._propose(tp, role, role.state.isr | {replica_id})
        return ErrorCode.none

    def replica_quota(self, tp: TopicPartition, replica_id: int) -> ReplicationQuota | None:
        """The leader's throttle when ``replica_id`` is a replica a reassignment of ``tp`` is
        adding, or an out-of-sync follower of a partition the topic's
        ``leader.replication.throttled.replicas`` names on this broker."""
        role = self.leaders.get(tp)
        if self.leader_quota is None or role is None:
            return None
        listed = self._listed(tp, "leader.replication.throttled.replicas") and replica_id not in role.state.isr
        return self.leader_quota if listed or replica_id in role.assignment.adding else None

    def follower_quota_of(self, tp: TopicPartition) -> ReplicationQuota | None:
        """The follower's throttle when a reassignment of ``tp`` is adding this broker, or the
        topic's ``follower.replication.throttled.replicas`` names this replica."""
        role = self.followers.get(tp)
        if self.follower_quota is None or role is None:
            return None
        listed = self._listed(tp, "follower.replication.throttled.replicas")
        return self.follower_quota if listed or self.broker_id in role.assignment.adding else None

    def _listed(self, tp: TopicPartition, setting: str) -> bool:
        partition = self.logs.partition(*tp)
        return partition is not None and is_throttled(partition.config[setting], tp[1], self.broker_id)

    def _advance_hw(self, role: LeaderRole, plog) -> None:
        hw = role.state.high_watermark(plog.log_end_offset)
        if hw > plog.high_watermark:
            plog.advance_high_watermark(hw)
            for listener in list(plog.listeners):   # consumers long-polling at the old HW
                listener(plog)
        if role.waiters:
            hw = plog.high_watermark
            done = [w for w in role.waiters if w.required <= hw]
            if done:
                role.waiters = [w for w in role.waiters if w.required > hw]
                for waiter in done:
                    waiter.answer(self._replicated_error(role, waiter.min_isr))

    def _after_isr_change(self, tp: TopicPartition, role: LeaderRole, partition) -> None:
        plog = partition.log
        alone = role.state.isr == {self.broker_id}
        plog.hw_follows_leo = alone
        self._advance_hw(role, plog)

    # -- leader: ISR changes -------------------------------------------------------------------

    async def _isr_loop(self) -> None:
        interval = max(self.lag_max_ms / 2, 10) / 1000
        while True:
            await asyncio.sleep(interval)
            try:
                self.check_isr()
            except Exception:  # a bug must not end ISR maintenance for every partition
                log.exception("ISR check failed")

    def check_isr(self) -> None:
        now = self.clock.now_ms()
        for tp, role in list(self.leaders.items()):
            lagging = role.state.out_of_sync(now, self.lag_max_ms)
            if lagging and not role.proposing:
                log.info("%s-%d: replicas %s fell behind; shrinking the ISR", tp[0], tp[1], sorted(lagging))
                self._propose(tp, role, role.state.isr - lagging)

    def _propose(self, tp: TopicPartition, role: LeaderRole, isr) -> None:
        isr = tuple(sorted(set(isr) | {self.broker_id}))
        if set(isr) == set(role.state.isr):
            return
        role.proposing = True
        a = role.assignment
        task = asyncio.get_running_loop().create_task(self._send_proposal(tp, role, a, isr))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_proposal(self, tp: TopicPartition, role: LeaderRole, a: Assignment, isr) -> None:
        try:
            version = await self.propose_isr(tp, isr, a.leader_epoch, a.version)
        except Exception:
            log.exception("ISR change of %s-%d failed", *tp)
            version = None
        finally:
            role.proposing = False
        if version is None:
            return  # refused: the store moved on (a new leader, or the controller); its watch tells us
        if self.leaders.get(tp) is role and role.assignment.version == a.version:
            self.apply(tp, dataclasses.replace(a, isr=isr, version=version))
