"""Incremental fetch sessions (KIP-227): what each fetcher asks for, cached between fetches.

Sans-I/O: no sockets, no logs; times are milliseconds handed in by the caller.

A fetcher that sends ``session_epoch`` 0 asks for a session: its full request is
answered in full and, if the cache has room, with a new positive ``session_id``.
Its next requests carry that id and epochs 1, 2, ... and name only the partitions
added or changed since the last one, plus ``forgotten_topics_data``; the broker
answers only the partitions with something new (records, a high watermark or log
start offset that moved, an error).  Epoch -1 is a full fetch without a session;
a full request naming a session closes it.  Errors, as Kafka's FetchManager:
an unknown id is FETCH_SESSION_ID_NOT_FOUND, a wrong epoch INVALID_FETCH_SESSION_EPOCH,
a v13+ (topic id) request on a session made by names or the reverse
FETCH_SESSION_TOPIC_ID_ERROR.  Sessions keyed by topic id (v13+) hold
(topic id, partition), so a topic recreated under its name is a different
partition: the old id is answered UNKNOWN_TOPIC_ID until the client forgets it.

The cache holds ``max.incremental.fetch.session.cache.slots`` sessions (Kafka's
eviction, :meth:`FetchSessionCache._try_evict`) and at most
``MAX_CACHED_PARTITIONS`` partitions in all (kavka's bound on its memory; Kafka has
none): a session that would pass it is not created, and an incremental request
that would grow one past it closes it (answered sessionless, as Kafka answers a
session left empty).  Kafka 3.8+ splits the slots over shards to spread lock
contention and evicts within a shard; kavka's one event loop has no contention,
so eviction considers every session (Kafka's rule before sharding).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from kavka.protocol.errors import ErrorCode

INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0
FINAL_EPOCH = -1
MAX_EPOCH = 2**31 - 1
# Kafka's KafkaBroker.MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS (a constant there, not a setting).
MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS = 120_000
# About 250 bytes each in CPython (the entry object, its key tuple, the dict slot): ~125 MB at most.
MAX_CACHED_PARTITIONS = 500_000


def next_epoch(epoch: int) -> int:
    if epoch < 0:
        return FINAL_EPOCH
    return 1 if epoch == MAX_EPOCH else epoch + 1


class CachedPartition:
    """One partition of a session: the request's last values and the response's last watermarks.

    It has the attributes of a request's FetchPartition, so the fetch handler reads it as one."""

    __slots__ = ("partition", "fetch_offset", "partition_max_bytes", "current_leader_epoch",
                 "log_start_offset", "last_fetched_epoch", "high_watermark", "local_log_start_offset")

    def __init__(self, wanted) -> None:
        self.partition = wanted.partition
        self.high_watermark = -1
        self.local_log_start_offset = -1
        self.update_request(wanted)

    def update_request(self, wanted) -> None:
        self.fetch_offset = wanted.fetch_offset
        self.partition_max_bytes = wanted.partition_max_bytes
        self.current_leader_epoch = getattr(wanted, "current_leader_epoch", -1)
        self.log_start_offset = getattr(wanted, "log_start_offset", -1)
        self.last_fetched_epoch = getattr(wanted, "last_fetched_epoch", -1)

    def must_respond(self, result, update: bool) -> bool:
        """Whether ``result`` (a PartitionResult) goes into an incremental response (Kafka's rule)."""
        respond = result.records_size > 0
        if self.high_watermark != result.high_watermark:
            respond = True
            if update:
                self.high_watermark = result.high_watermark
        if self.local_log_start_offset != result.log_start_offset:
            respond = True
            if update:
                self.local_log_start_offset = result.log_start_offset
        if result.error_code != 0:
            respond = True
            if update:
                self.high_watermark = -1  # so the partition is sent again once the error is gone
        if result.preferred_read_replica >= 0:  # KIP-392: the consumer is told where to read
            respond = True
        return respond


@dataclass(eq=False)
class FetchSession:
    id: int
    privileged: bool
    uses_topic_ids: bool
    creation_ms: int
    epoch: int
    # (topic name, or topic id from v13, partition) -> CachedPartition, in the order fetched
    partitions: dict = field(default_factory=dict)
    last_used_ms: int = 0
    cached_size: int = -1            # the size the cache counts; -1: not in the cache
    evictable_by_all: bool = False
    evictable_by_privileged: bool = False

    def update(self, wanted: dict, forgotten) -> None:
        for key, partition in wanted.items():
            cached = self.partitions.get(key)
            if cached is None:
                self.partitions[key] = CachedPartition(partition)
            else:
                cached.update_request(partition)
        for key in forgotten:
            self.partitions.pop(key, None)


class FetchSessionCache:
    """The broker's sessions, bounded in count (slots) and in cached partitions."""

    def __init__(self, max_entries: int = 1000, eviction_ms: int = MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS,
                 max_partitions: int = MAX_CACHED_PARTITIONS, rng: random.Random | None = None) -> None:
        self.max_entries = max_entries
        self.eviction_ms = eviction_ms
        self.max_partitions = max_partitions
        self._rng = rng or random.Random()
        self.sessions: dict[int, FetchSession] = {}
        self.total_partitions = 0
        self.evictions = 0
        self.created = 0

    def get(self, session_id: int) -> FetchSession | None:
        return self.sessions.get(session_id)

    def remove(self, session_id: int) -> FetchSession | None:
        session = self.sessions.pop(session_id, None)
        if session is not None and session.cached_size >= 0:
            self.total_partitions -= session.cached_size
            session.cached_size = -1
        return session

    def touch(self, session: FetchSession, now_ms: int) -> None:
        """Mark ``session`` used now and recount its size; which sessions may evict it is
        decided here, by its age now (as Kafka's touch does)."""
        session.last_used_ms = now_ms
        if session.cached_size >= 0:
            self.total_partitions -= session.cached_size
        session.cached_size = len(session.partitions)
        self.total_partitions += session.cached_size
        old = now_ms - session.creation_ms > self.eviction_ms
        session.evictable_by_privileged = not session.privileged or old
        session.evictable_by_all = old

    def maybe_create(self, now_ms: int, privileged: bool, uses_topic_ids: bool, partitions: dict) -> int:
        """A new session holding ``partitions`` if there is room (or room can be made by
        eviction); its id, or INVALID_SESSION_ID."""
        size = len(partitions)
        if size > self.max_partitions:
            return INVALID_SESSION_ID
        if len(self.sessions) >= self.max_entries and not self._try_evict(privileged, size, now_ms):
            return INVALID_SESSION_ID
        if self.total_partitions + size > self.max_partitions and not self._try_evict(privileged, size, now_ms):
            return INVALID_SESSION_ID
        if self.total_partitions + size > self.max_partitions:
            return INVALID_SESSION_ID
        session = FetchSession(self._new_id(), privileged, uses_topic_ids, now_ms, next_epoch(INITIAL_EPOCH),
                               partitions)
        self.sessions[session.id] = session
        self.touch(session, now_ms)
        self.created += 1
        return session.id

    def _new_id(self) -> int:
        while True:
            session_id = self._rng.randint(1, MAX_EPOCH - 1)
            if session_id not in self.sessions:
                return session_id

    def _try_evict(self, privileged: bool, size: int, now_ms: int) -> bool:
        """Kafka's rule: the least recently used session goes if it has been unused for more
        than ``eviction_ms``; else the least valuable evictable one -- ordered by
        (privileged, size, id) -- goes if the new one is worth more: privileged against an
        unprivileged one, or more partitions than it has.  A new consumer session may evict only
        sessions older than ``eviction_ms`` when last used; a follower's any consumer session
        too.  Linear scans: only a full cache pays them, once per session asked for."""
        if self.max_entries <= 0 or not self.sessions:
            return False
        stalest = min(self.sessions.values(), key=lambda s: (s.last_used_ms, s.id))
        if now_ms - stalest.last_used_ms > self.eviction_ms:
            self._evict(stalest)
            return True
        candidates = [s for s in self.sessions.values()
                      if (s.evictable_by_privileged if privileged else s.evictable_by_all)]
        if not candidates:
            return False
        weakest = min(candidates, key=lambda s: (s.privileged, s.cached_size, s.id))
        if (privileged, size, 0) < (weakest.privileged, weakest.cached_size, weakest.id):
            return False
        self._evict(weakest)
        return True

    def _evict(self, session: FetchSession) -> None:
        self.remove(session.id)
        self.evictions += 1


# -- what one request gets: Kafka's FetchManager.newContext ------------------------------------

@dataclass
class FetchContext:
    """How one fetch is answered.

    ``error``: a session error, answered with no partitions.  ``partitions``: what to read,
    (key, FetchPartition-like) in order.  ``session``: the incremental session (None for a
    full or sessionless fetch).  ``create``: a full fetch that asks for a session."""

    partitions: list
    error: int = 0
    session: FetchSession | None = None
    expected_epoch: int = 0
    create: bool = False


def new_context(cache: FetchSessionCache, now_ms: int, version: int, session_id: int, epoch: int,
                wanted: dict, forgotten: list) -> FetchContext:
    """``wanted``: (key, partition) -> the request's FetchPartition, in request order;
    ``forgotten``: keys from ``forgotten_topics_data``."""
    if epoch in (INITIAL_EPOCH, FINAL_EPOCH):
        if session_id != INVALID_SESSION_ID:
            cache.remove(session_id)  # a full request closes the session it names
        return FetchContext(list(wanted.items()), create=epoch == INITIAL_EPOCH)
    session = cache.get(session_id)
    if session is None:
        return FetchContext([], ErrorCode.fetch_session_id_not_found.value)
    if session.epoch != epoch:
        return FetchContext([], ErrorCode.invalid_fetch_session_epoch.value)
    if session.uses_topic_ids != (version >= 13):
        return FetchContext([], ErrorCode.fetch_session_topic_id_error.value)
    session.update(wanted, forgotten)
    grown = len(session.partitions) - max(session.cached_size, 0)
    if not session.partitions or cache.total_partitions + grown > cache.max_partitions:
        cache.remove(session.id)
        return FetchContext(list(wanted.items()))
    cache.touch(session, now_ms)
    session.epoch = next_epoch(session.epoch)
    return FetchContext(list(session.partitions.items()), session=session, expected_epoch=session.epoch)


def finish(cache: FetchSessionCache, context: FetchContext, now_ms: int, privileged: bool, version: int,
           results: list) -> tuple[int, int, list]:
    """(error code, session id, the (key, result) pairs to send) for the final ``results``,
    updating the session as the answer goes out (Kafka's updateAndGenerateResponseData)."""
    if context.error:
        return context.error, INVALID_SESSION_ID, []
    session = context.session
    if session is None:
        session_id = INVALID_SESSION_ID
        if context.create:
            partitions = {}
            for (key, wanted), (_key, result) in zip(context.partitions, results):
                cached = partitions[key] = CachedPartition(wanted)
                cached.high_watermark, cached.local_log_start_offset = result.high_watermark, result.log_start_offset
            session_id = cache.maybe_create(now_ms, privileged, version >= 13, partitions)
        return 0, session_id, results
    if session.epoch != context.expected_epoch:  # another request of this session came first
        return ErrorCode.invalid_fetch_session_epoch.value, session.id, []
    sent = []
    for key, result in results:
        cached = session.partitions.get(key)
        if cached is None or not cached.must_respond(result, update=True):
            continue
        sent.append((key, result))
        if result.records_size > 0:  # to the back: the others get the response's bytes first next time
            session.partitions[key] = session.partitions.pop(key)
    return 0, session.id, sent
