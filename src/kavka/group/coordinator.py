"""The group coordinator: every group of this broker, one operation at a time.

Each write operation follows one path (Kafka's CoordinatorResult):

1. the state machine (join, membership, rebalance, offsets) decides and returns
   an :class:`Outcome`: records, the request's reply, replies to parked requests;
2. the records are appended to ``__consumer_offsets`` (:class:`Journal`);
3. each record is applied by :meth:`GroupCoordinator.replay`, the function that
   also rebuilds all state from the topic at startup (:meth:`load`);
4. only then are the replies released.

So committed offsets and every completed rebalance (the GroupMetadata record)
change state only through replay.  Transactional offset commits (TxnOffsetCommit) are
appended as a batch of the producer's transaction and replayed as *pending*; the
transaction's marker in the group's partition, replayed by :meth:`replay_marker` (told by
the marker writers live, read from the log at load), commits or drops them
(kavka.group.offsets).  The in-between steps of a rebalance
(members joining, parked requests, deadlines) stay in memory, as in Kafka:
after a restart the members rejoin anyway.

If the append fails nothing is replayed, the request and any parked request
of the operation get an error, and a group waiting for its assignment
rebalances again.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import uuid
from typing import Callable, Iterable, Iterator, Mapping, Protocol

from kavka.group import consumer_group as cg
from kavka.group import membership, offsets, rebalance
from kavka.group.consumer_group import ConsumerGroup, HeartbeatRequest, Refused, TopicMeta
from kavka.group.env import Env, GroupConfig
from kavka.group.join import JoinRequest, join
from kavka.group.log_format import (
    ConsumerGroupKey, ConsumerMemberKey, GroupKey, GroupValue, Key, OffsetKey, Value,
)
from kavka.group.model import Group, Member
from kavka.group.offsets import OffsetCommit, OffsetStore
from kavka.group.outcome import HeartbeatReply, JoinReply, Outcome, Parked, SyncReply, error_reply
from kavka.group.state import COMPLETING, DEAD, EMPTY, NONE, STABLE
from kavka.log.coordinator_journal import NO_PRODUCER_ID, JournalMarker, JournalRecord
from kavka.log.errors import InvalidProducerEpoch, InvalidTxnState, StorageError
from kavka.protocol.errors import ErrorCode

log = logging.getLogger("kavka.group")

REPLAY_FAILURES_LOGGED = 20  # per load; then only a count


class Journal(Protocol):
    def is_local(self, group_id: str) -> bool: ...
    def append(self, group_id: str, records: list[tuple[Key, Value]],
               producer: tuple[int, int] | None = None, guard=None) -> tuple[int, int] | None: ...
    def read_all(self) -> Iterator[JournalRecord | JournalMarker]: ...
    def read_partition(self, index: int) -> Iterator[JournalRecord | JournalMarker]: ...
    def partition_for(self, group_id: str) -> int: ...


class GroupCoordinator:
    def __init__(self, config: GroupConfig, clock, journal: Journal,
                 new_uuid: Callable[[], str] = lambda: str(uuid.uuid4()),
                 topics: Callable[[], Mapping[str, TopicMeta]] = dict) -> None:
        self.config = config
        self.clock = clock
        self.journal = journal
        self.topics = topics   # the broker's topics, for server-side assignment
        self.groups: dict[str, Group] = {}                    # classic groups (and offsets-only groups)
        self.consumer_groups: dict[str, ConsumerGroup] = {}   # consumer-protocol (KIP-848) groups
        self.offsets = OffsetStore()
        self._positions = itertools.count()   # replay order of offset records (OffsetStore)
        self.active = True
        self._loading = False
        self._new_uuid = new_uuid
        self._tokens = itertools.count(1)
        # Earliest deadline of each group with one, refreshed after every operation on
        # the group, so a request costs O(groups) only in a min(), not a scan of members.
        self._deadlines: dict[str, int] = {}
        self._next_retention_check = self.now() + config.retention_check_interval_ms
        # GROUP configs (kavka.group_configs): per group, the settings it overrides.
        self._group_settings: dict[str, dict[str, int]] = {}

    def now(self) -> int:
        return int(self.clock.monotonic() * 1000)

    def env(self, group_id: str | None = None) -> Env:
        config = self.config if group_id is None else self.config_of(group_id)
        return Env(self.now(), self.clock.now_ms(), config, self._tokens.__next__, self._new_uuid)

    def set_group_config(self, group_id: str, settings: Mapping[str, int]) -> None:
        """Replace one group's overrides of GroupConfig fields (consumer_session_timeout_ms,
        consumer_heartbeat_interval_ms): they apply from its members' next heartbeat."""
        self._group_settings[group_id] = dict(settings)
        if not settings:
            del self._group_settings[group_id]

    def configured_groups(self) -> set[str]:
        """The groups with overrides of their own."""
        return set(self._group_settings)

    def config_of(self, group_id: str) -> GroupConfig:
        """The settings of one group: the broker's, under the group's own configs."""
        settings = self._group_settings.get(group_id)
        return dataclasses.replace(self.config, **settings) if settings else self.config

    # -- replay: the only way durable state changes -------------------------------------

    def load(self) -> int:
        count = self._replay_all(self.journal.read_all())
        log.info("loaded %d groups (%d records) from __consumer_offsets", len(self.groups), count)
        return count

    def load_partition(self, index: int) -> int:
        """In a cluster: this broker now leads ``__consumer_offsets`` partition ``index``."""
        self.unload_partition(index)
        count = self._replay_all(self.journal.read_partition(index))
        log.info("loaded __consumer_offsets partition %d (%d records)", index, count)
        log.debug("pending offsets after loading partition %d: %s", index, self.offsets.pending_snapshot())
        return count

    def _replay_all(self, entries: Iterable[JournalRecord | JournalMarker]) -> int:
        """Replay what the journal yields (it already skips records it cannot decode); a
        record that decodes but cannot be applied is skipped and logged, never fatal."""
        count = failed = 0
        self._loading = True
        try:
            for entry in entries:
                try:
                    self._replay_entry(entry)
                except Exception as exc:
                    failed += 1
                    if failed <= REPLAY_FAILURES_LOGGED:
                        log.warning("skipping a __consumer_offsets record that cannot be applied (%s): %s: %s",
                                    entry, type(exc).__name__, exc)
                    continue
                count += 1
        finally:
            self._loading = False
        if failed > REPLAY_FAILURES_LOGGED:
            log.warning("skipped %d __consumer_offsets records that could not be applied", failed)
        for group_id in [*self.groups, *self.consumer_groups]:
            self._refresh_deadline(group_id)
        return count

    def unload_partition(self, index: int) -> Outcome:
        """Forget the groups of a partition this broker no longer leads; their parked
        requests are told NOT_COORDINATOR (the members look the coordinator up again)."""
        out = Outcome()
        for group_id in [g for g in [*self.groups, *self.consumer_groups]
                         if self.journal.partition_for(g) == index]:
            group = self.groups.pop(group_id, None)
            if group is not None:
                out.merge(_release_parked(group))
            self.consumer_groups.pop(group_id, None)
            self._deadlines.pop(group_id, None)
            self.offsets.remove_group(group_id)
        return out

    def _replay_entry(self, entry: JournalRecord | JournalMarker) -> None:
        if isinstance(entry, JournalRecord):
            self.replay(entry.key, entry.value, entry.producer_id)
        else:
            self.replay_marker(entry.partition, entry.producer_id, entry.commit)

    def replay_marker(self, index: int, producer_id: int, commit: bool) -> None:
        """A transaction marker in ``__consumer_offsets`` partition ``index``: the producer's
        pending offsets of that partition's groups are committed, or dropped."""
        self.offsets.end_transaction(producer_id, commit, lambda g: self.journal.partition_for(g) == index)

    def replay(self, key: Key, value: Value, producer_id: int = NO_PRODUCER_ID) -> None:
        """Apply one record; ``producer_id``: the producer of its transactional batch."""
        if isinstance(key, OffsetKey):
            if value is None:
                self.offsets.remove(key.group, key.topic, key.partition)
                return
            if key.group not in self.consumer_groups:
                self._get_or_create(key.group)
            position = next(self._positions)
            if producer_id == NO_PRODUCER_ID:
                self.offsets.put(key.group, key.topic, key.partition, value, position)
            else:
                self.offsets.put_pending(producer_id, key.group, key.topic, key.partition, value, position)
        elif isinstance(key, ConsumerGroupKey):
            if value is None:
                self.consumer_groups.pop(key.group, None)
            else:
                self.groups.pop(key.group, None)  # an empty classic group becomes a consumer group
                self._consumer_group(key.group).apply_group(value)
        elif isinstance(key, ConsumerMemberKey):
            group = self._consumer_group(key.group)
            group.apply_member(key.member_id, value)
            if value is not None:
                now = self.now()
                session = self.config_of(key.group).consumer_session_timeout_ms
                group.session_deadlines.setdefault(key.member_id, now + session)
                if value.state == cg.UNREVOKED:
                    group.revoke_deadlines.setdefault(key.member_id, now + value.rebalance_timeout_ms)
        elif value is None:
            group = self.groups.pop(key.group, None)
            if group is not None:
                group.transition(DEAD, self.clock.now_ms())
        else:
            self._replay_group(key.group, value)

    def _get_or_create(self, group_id: str) -> Group:
        group = self.groups.get(group_id)
        if group is None:
            group = self.groups[group_id] = Group(group_id)
        return group

    def _consumer_group(self, group_id: str) -> ConsumerGroup:
        group = self.consumer_groups.get(group_id)
        if group is None:
            group = self.consumer_groups[group_id] = ConsumerGroup(group_id)
        return group

    def _replay_group(self, group_id: str, value: GroupValue) -> None:
        """Make the group's durable part equal to ``value``; members already here keep
        their in-memory state (parked requests, protocols), new ones are loaded."""
        group = self._get_or_create(group_id)
        kept = {m.member_id: m for m in group.members.values()}
        group.members.clear()
        group.static_members.clear()
        group.protocol_type = value.protocol_type or None
        group.generation, group.protocol_name, group.leader_id = value.generation, value.protocol, value.leader
        for mv in value.members:
            member = kept.get(mv.member_id) or self._loaded_member(mv, value.protocol)
            member.assignment = mv.assignment
            group.add(member, value.protocol_type)
        group.leader_id = value.leader
        group.pending_sync &= set(group.members)
        state = STABLE if value.members else EMPTY
        if self._loading:
            # History is replayed without its in-between (in-memory) states.
            group.state, group.state_timestamp = state, value.state_timestamp
        else:
            group.transition(state, value.state_timestamp)

    def _loaded_member(self, mv, protocol: str | None) -> Member:
        return Member(mv.member_id, mv.instance_id, mv.client_id, mv.client_host, mv.session_timeout_ms,
                      mv.rebalance_timeout_ms, ((protocol or "", mv.subscription),),
                      deadline=self.now() + mv.session_timeout_ms)

    # -- writing ---------------------------------------------------------------------------

    def _write(self, group_id: str, out: Outcome, reply_needs_records: bool = True,
               producer: tuple[int, int] | None = None, guard=None) -> Outcome:
        """Append, replay, release.  ``reply_needs_records`` is False when the request
        already took effect in memory (a LeaveGroup) and the records only follow from it.
        ``producer`` (id, epoch): the records belong to that producer's transaction, verified
        with ``guard``."""
        if out.records:
            try:
                written = self.journal.append(group_id, out.records, producer, guard)
            except Exception as exc:  # the log's own errors and I/O errors alike
                failed = self._write_failed(group_id, out, exc)
                if not reply_needs_records:
                    failed.reply = out.reply
                self._refresh_deadline(group_id)
                return failed
            producer_id = NO_PRODUCER_ID if producer is None else producer[0]
            for key, value in out.records:
                self.replay(key, value, producer_id)
            if written is not None:
                out.written.append(written)
        self._refresh_deadline(group_id)
        return out

    def _refresh_deadline(self, group_id: str) -> None:
        group = self.groups.get(group_id) or self.consumer_groups.get(group_id)
        due = group.next_deadline() if group is not None else None
        if due is None:
            self._deadlines.pop(group_id, None)
        else:
            self._deadlines[group_id] = due

    def _write_failed(self, group_id: str, out: Outcome, exc: Exception) -> Outcome:
        if isinstance(exc, InvalidProducerEpoch):   # a fenced producer's TxnOffsetCommit
            log.debug("refused a transactional offset commit for group %s: %s", group_id, exc)
            error = ErrorCode.invalid_producer_epoch
        elif isinstance(exc, InvalidTxnState):   # its verification went stale (a marker came first)
            log.debug("refused a transactional offset commit for group %s: %s", group_id, exc)
            error = ErrorCode.invalid_txn_state
        elif isinstance(exc, StorageError):
            # As Kafka: KAFKA_STORAGE_ERROR becomes NOT_COORDINATOR, which clients retry
            # (after looking the coordinator up again).  The log directory's state logged it once.
            log.debug("could not append to __consumer_offsets for group %s: %s", group_id, exc)
            error = ErrorCode.not_coordinator
        else:
            log.error("could not append to __consumer_offsets for group %s: %s", group_id, exc)
            error = ErrorCode.invalid_commit_offset_size if type(exc).__name__ == "RecordTooLarge" \
                else ErrorCode.unknown_server_error
        reply = out.reply if isinstance(out.reply, Parked) else error_reply(out.reply, error)
        failed = Outcome(reply, replies=[(token, error_reply(parked, error)) for token, parked in out.replies])
        group = self.groups.get(group_id)
        lost_assignment = any(isinstance(k, GroupKey) and v is not None for k, v in out.records)
        if lost_assignment and group is not None and group.state in (COMPLETING, STABLE) and group.members:
            # The members cannot be told what they own: let them join again.
            failed.merge(rebalance.prepare_rebalance(group, self.env()))
        return failed

    def _check(self, group_id: str | None) -> ErrorCode:
        if not group_id:
            return ErrorCode.invalid_group_id
        if not self.active or not self.journal.is_local(group_id):
            return ErrorCode.not_coordinator
        return NONE

    # -- classic membership ----------------------------------------------------------------

    def join(self, request: JoinRequest) -> Outcome:
        error = self._check(request.group_id)
        if error == NONE and not (self.config.min_session_timeout_ms <= request.session_timeout_ms
                                  <= self.config.max_session_timeout_ms):
            error = ErrorCode.invalid_session_timeout
        if error == NONE and request.member_id and request.group_id not in self.groups:
            error = ErrorCode.unknown_member_id
        consumer = self.consumer_groups.get(request.group_id)
        if error == NONE and consumer is not None and consumer.members:
            error = ErrorCode.inconsistent_group_protocol  # a classic member cannot join a consumer group
        if error != NONE:
            return Outcome(JoinReply(error, request.member_id))
        group = self._get_or_create(request.group_id)
        out = join(group, request, self.env())
        if consumer is not None:  # an empty consumer group becomes a classic group
            out.records.insert(0, (ConsumerGroupKey(request.group_id), None))
        out = self._write(group.group_id, out)
        if self._drop_if_unused(group):
            self._refresh_deadline(group.group_id)
        return out

    def sync(self, request: membership.SyncRequest) -> Outcome:
        error = self._check(request.group_id)
        if error != NONE:
            return Outcome(SyncReply(error))
        group = self.groups.get(request.group_id)
        return self._write(request.group_id, membership.sync(group, request, self.env()))

    def heartbeat(self, group_id: str, member_id: str, instance_id: str | None, generation: int) -> Outcome:
        error = self._check(group_id)
        if error != NONE:
            return Outcome(error)
        group = self.groups.get(group_id)
        return self._write(group_id, membership.heartbeat(group, member_id, instance_id, generation, self.env()))

    def leave(self, group_id: str, members: list[tuple[str, str | None]]) -> Outcome:
        error = self._check(group_id)
        if error != NONE:
            return Outcome((error, []))
        group = self.groups.get(group_id)
        return self._write(group_id, membership.leave(group, members, self.env()), reply_needs_records=False)

    # -- consumer protocol (KIP-848) ---------------------------------------------------------

    def consumer_heartbeat(self, request: HeartbeatRequest, version: int) -> Outcome:
        """ConsumerGroupHeartbeat: reply is a HeartbeatReply."""
        try:
            cg.validate(request, version)
            error = self._check(request.group_id)
            if error != NONE:
                return Outcome(HeartbeatReply(error))
            if not request.member_id and request.member_epoch == 0:  # v0: the coordinator names it
                request = dataclasses.replace(request, member_id=self._new_uuid())
            out = self._consumer_operation(request)
        except Refused as refused:
            return Outcome(HeartbeatReply(refused.error, refused.message))
        out = self._write(request.group_id, out)
        group = self.consumer_groups.get(request.group_id)
        if isinstance(out.reply, HeartbeatReply) and out.reply.error == NONE and group is not None \
                and request.member_id in group.members:
            session = self.config_of(request.group_id).consumer_session_timeout_ms
            group.session_deadlines[request.member_id] = self.now() + session
            self._refresh_deadline(request.group_id)
        return out

    def _consumer_operation(self, request: HeartbeatRequest) -> Outcome:
        group_id = request.group_id
        classic = self.groups.get(group_id)
        if classic is not None and (classic.members or classic.pending or classic.state != EMPTY):
            raise Refused(ErrorCode.group_id_not_found, f"Group {group_id} is not a consumer group.")
        group = self.consumer_groups.get(group_id)
        topics = self.topics()
        if request.member_epoch in (cg.LEAVE_EPOCH, cg.STATIC_LEAVE_EPOCH):
            if group is None:
                raise Refused(ErrorCode.unknown_member_id, f"Member {request.member_id} is not a member of "
                                                           f"group {group_id}.")
            return cg.leave(group, request, topics)
        if group is None:
            if request.member_epoch != 0:
                raise Refused(ErrorCode.unknown_member_id, f"Member {request.member_id} is not a member of "
                                                           f"group {group_id}.")
            group = ConsumerGroup(group_id)  # registered when its first record is replayed
        return cg.heartbeat(group, request, topics, self.env(group_id))

    def describe_consumer_group(self, group_id: str) -> tuple[ErrorCode, str | None, ConsumerGroup | None]:
        error = self._check(group_id)
        if error != NONE:
            return error, None, None
        group = self.consumer_groups.get(group_id)
        if group is not None:
            return NONE, None, group
        if group_id in self.groups and self.groups[group_id].protocol_type:
            return ErrorCode.group_id_not_found, f"Group {group_id} is not a consumer group.", None
        return ErrorCode.group_id_not_found, f"Group {group_id} not found.", None

    # -- offsets ---------------------------------------------------------------------------

    def commit_offsets(self, group_id: str, generation: int, member_id: str, instance_id: str | None,
                       commits: list[OffsetCommit], version: int = 9) -> Outcome:
        """Reply: {(topic, partition): error}.  ``generation`` is the member epoch for
        consumer-protocol groups."""
        error = self._check(group_id)
        group = self.groups.get(group_id)
        consumer = self.consumer_groups.get(group_id)
        if error == NONE and consumer is not None:
            error = offsets.validate_consumer_commit(consumer, generation, member_id, version)
        elif error == NONE:
            error = offsets.validate_commit(group, generation, member_id, instance_id)
        if error != NONE:
            return Outcome({(c.topic, c.partition): error for c in commits})
        if group is not None and member_id in group.members:
            member = group.members[member_id]
            member.deadline = self.now() + member.session_timeout_ms
        records, errors = offsets.commit_records(group_id, commits, self.config.metadata_max_bytes,
                                                 self.clock.now_ms())
        out = self._write(group_id, Outcome(errors, records))
        if isinstance(out.reply, ErrorCode):  # the append failed: every partition gets it
            out.reply = {tp: out.reply for tp in errors}
        return out

    def commit_txn_offsets(self, group_id: str, producer_id: int, producer_epoch: int, generation: int,
                           member_id: str, instance_id: str | None, commits: list[OffsetCommit],
                           guard=None) -> Outcome:
        """TxnOffsetCommit: reply {(topic, partition): error}.  The offsets are appended as
        the producer's transactional batch and stay pending until its marker (the caller
        verified that the transaction holds the group's partition; ``guard``: the partition's
        VerificationGuard of that verification, INVALID_TXN_STATE when a marker made it stale)."""
        error = self._check(group_id)
        consumer = self.consumer_groups.get(group_id)
        if error == NONE and consumer is not None:
            error = offsets.validate_consumer_txn_commit(consumer, generation, member_id)
        elif error == NONE:
            error = offsets.validate_txn_commit(self.groups.get(group_id), generation, member_id, instance_id)
        if error != NONE:
            return Outcome({(c.topic, c.partition): error for c in commits})
        records, errors = offsets.commit_records(group_id, commits, self.config.metadata_max_bytes,
                                                 self.clock.now_ms())
        out = self._write(group_id, Outcome(errors, records), producer=(producer_id, producer_epoch), guard=guard)
        if isinstance(out.reply, ErrorCode):  # the append failed: every partition gets it
            out.reply = {tp: out.reply for tp in errors}
        log.debug("TxnOffsetCommit of group %s by producer %d epoch %d: %s", group_id, producer_id, producer_epoch,
                  {f"{c.topic}-{c.partition}": c.offset for c in commits} if out.written else out.reply)
        return out

    def transaction_ended(self, index: int, producer_id: int, commit: bool) -> Outcome:
        """A marker was appended to ``__consumer_offsets`` partition ``index`` (the marker
        writers call this): the same :meth:`replay_marker` that loading uses."""
        log.debug("__consumer_offsets-%d: %s marker of producer %d", index, "commit" if commit else "abort",
                  producer_id)
        self.replay_marker(index, producer_id, commit)
        return Outcome()

    def fetch_offsets(self, group_id: str, topics: list[tuple[str, list[int]]] | None,
                      member_id: str | None = None, member_epoch: int = -1, require_stable: bool = False):
        """(group error, [(topic, [(partition, OffsetValue or None, error)])]).  A member of a
        consumer-protocol group that names itself (v9) must have its current epoch;
        ``require_stable``: UNSTABLE_OFFSET_COMMIT for partitions with pending offsets."""
        error = self._check(group_id)
        consumer = self.consumer_groups.get(group_id)
        if error == NONE and consumer is not None and (member_id or member_epoch >= 0):
            member = consumer.members.get(member_id or "")
            if member is None:
                error = ErrorCode.unknown_member_id
            elif member.member_epoch != member_epoch:
                error = ErrorCode.stale_member_epoch
        if error != NONE:
            return error, []
        if require_stable and self.offsets.has_pending(group_id):
            log.debug("OffsetFetch of group %s: pending %s", group_id, self.offsets.pending_snapshot())
        return NONE, offsets.fetch(self.offsets, group_id, topics, require_stable)

    def delete_offsets(self, group_id: str, partitions: list[tuple[str, int]]) -> Outcome:
        error = self._check(group_id)
        if error != NONE:
            return Outcome((error, {}))
        consumer = self.consumer_groups.get(group_id)
        if consumer is not None:
            group_error, errors, records = offsets.delete_consumer_offsets(consumer, self.offsets, partitions)
        else:
            group_error, errors, records = offsets.delete_offsets(self.groups.get(group_id), self.offsets,
                                                                  partitions)
        out = self._write(group_id, Outcome((group_error, errors), records))
        if isinstance(out.reply, ErrorCode):  # the append failed
            out.reply = (out.reply, {})
        return out

    def delete_groups(self, group_ids: Iterable[str]) -> Outcome:
        """Reply: {group id: error}."""
        results = {}
        for group_id in group_ids:
            error = self._check(group_id)
            if error == NONE and group_id in self.consumer_groups:
                error, records = offsets.delete_consumer_group_records(self.consumer_groups[group_id],
                                                                       self.offsets)
                error = self._write(group_id, Outcome(error, records)).reply
            elif error == NONE:
                error, records = offsets.delete_group_records(self.groups.get(group_id), self.offsets)
                error = self._write(group_id, Outcome(error, records)).reply
            results[group_id] = error
        return Outcome(results)

    def find_group(self, group_id: str) -> tuple[ErrorCode, Group | None]:
        """A classic group; GROUP_ID_NOT_FOUND for a consumer-protocol group (Kafka's
        DescribeGroups answers only classic groups; ConsumerGroupDescribe the others)."""
        error = self._check(group_id)
        if error == NONE and group_id in self.consumer_groups:
            return ErrorCode.group_id_not_found, None
        return error, (self.groups.get(group_id) if error == NONE else None)

    # -- timers ----------------------------------------------------------------------------

    def next_deadline(self) -> int:
        return min(self._next_retention_check, min(self._deadlines.values(), default=self._next_retention_check))

    def tick(self) -> Outcome:
        """Run everything due now: session and rebalance timeouts, offset expiry."""
        out = Outcome()
        env = self.env()
        for group_id in [g for g, due in self._deadlines.items() if due <= env.now]:
            group = self.groups.get(group_id)
            consumer = self.consumer_groups.get(group_id)
            if consumer is not None:
                out.merge(self._write(group_id, cg.expire(consumer, env.now, self.topics())))
            elif group is not None:
                out.merge(self._write(group_id, rebalance.expire(group, env), reply_needs_records=False))
            else:
                self._deadlines.pop(group_id, None)
        if self._next_retention_check <= env.now:
            self._next_retention_check = env.now + self.config.retention_check_interval_ms
            out.merge(self.expire_offsets())
        return out

    def expire_offsets(self) -> Outcome:
        out = Outcome()
        wall = self.clock.now_ms()
        for group in list(self.groups.values()):
            records = offsets.expiry_records(group, self.offsets, wall, self.config.retention_ms)
            out.merge(self._write(group.group_id, Outcome(records=records)))
        for consumer in list(self.consumer_groups.values()):
            records = offsets.consumer_expiry_records(consumer, self.offsets, wall, self.config.retention_ms)
            out.merge(self._write(consumer.group_id, Outcome(records=records)))
        return out

    def close(self) -> Outcome:
        """Stop coordinating: parked requests are told NOT_COORDINATOR (they look again)."""
        self.active = False
        out = Outcome()
        for group in self.groups.values():
            out.merge(_release_parked(group))
        return out

    # -- helpers ---------------------------------------------------------------------------

    def _drop_if_unused(self, group: Group) -> bool:
        """A join that failed on a group it created leaves nothing behind."""
        if (group.state == EMPTY and not group.members and not group.pending and group.generation == 0
                and not self.offsets.has_offsets(group.group_id) and not self.offsets.has_pending(group.group_id)):
            self.groups.pop(group.group_id, None)
            return True
        return False

    def snapshot(self) -> dict:
        """The durable state, for comparing live state with state rebuilt by replay."""
        return {"groups": {g: group.durable_view() for g, group in sorted(self.groups.items())},
                "consumer_groups": {g: group.durable_view() for g, group in sorted(self.consumer_groups.items())},
                "offsets": self.offsets.snapshot(), "pending_offsets": self.offsets.pending_snapshot()}


def _release_parked(group: Group) -> Outcome:
    """NOT_COORDINATOR to every parked JoinGroup/SyncGroup of ``group``."""
    out = Outcome()
    for member in group.members.values():
        if member.join_token is not None:
            out.replies.append((member.join_token, JoinReply(ErrorCode.not_coordinator, member.member_id)))
        if member.sync_token is not None:
            out.replies.append((member.sync_token, SyncReply(ErrorCode.not_coordinator)))
        member.join_token = member.sync_token = None
    return out
