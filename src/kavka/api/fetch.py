"""Fetch (key 1): read record batches, long-polling until enough bytes arrive.

A fetch is answered at once when it has ``min_bytes`` of data, an error, or
``max_wait_ms`` = 0.  Otherwise it parks: a callback on each requested
partition's log fires on append (no polling), the fetch re-reads, and it answers
when it has enough bytes or when the wait runs out.

Limits, as in Kafka: each partition gives at most ``partition_max_bytes`` and the
whole response at most ``max_bytes`` (for a consumer with a ``consumer_byte_rate``, at most
``quota.window.num - 1`` samples' worth of it, Kafka's maxValueInQuotaWindow), except that
the first partition with data returns at least one whole batch even if it is larger, so a
consumer can never get stuck behind a big batch.  A fetch offset inside a batch returns the whole
batch (the client skips the records before its offset).

Consumers fetch from a partition's leader, or with Fetch v11+ from a follower too
(KIP-392; ``replicas.read_error``: NOT_LEADER_OR_FOLLOWER elsewhere), up to that
replica's high watermark, or with ``isolation_level`` 1 (READ_COMMITTED) up to its
last stable offset, with the aborted transactions that overlap the records
returned (from the segments' ``.txnindex``, kavka.log.partition_log), so the
client drops their records; every answer carries the LSO, as Kafka's does.
With ``replica.selector.class`` set, a leader answers a
consumer whose ``rack_id`` (client.rack) matches a follower's rack with no records and
``preferred_read_replica`` (kavka.replication.replica_selector), at once, as Kafka does.  Followers
(``replica_id`` >= 0) fetch up to the log end; the offset each asks for tells
the leader where its log ends (``replicas.follower_fetch``), which is how the
high watermark moves.  A lone broker leads everything and has no followers.

With an authorizer, a consumer needs READ on each topic and a follower CLUSTER_ACTION on the
cluster; refused, the topic's partitions answer TOPIC_AUTHORIZATION_FAILED (an unknown topic id
stays UNKNOWN_TOPIC_ID), as Kafka's.

A partition named more than once is fetched once, at the position of its first
mention with the values of its last (as Kafka's LinkedHashMap of the request's
partitions keeps it; it used to be read, and its records sent, once per
mention: 54 MB for one partition named 50,000 times).  A fetch of more than
``slicing.SLICE`` partitions is resolved and read in slices, the event loop
given back between them (kavka.api.slicing).

A follower's read of a partition that a reassignment is adding it to counts against the
leader's replication throttle (``replicas.replica_quota``, kavka.replication.quota); while
the throttle is exceeded that partition is answered without records.

Fetch sessions (KIP-227, v7+): kavka.api.fetch_sessions decides what a request
reads (its own partitions, or its incremental session's) and which results its
answer carries (an incremental answer: only partitions with news); the session's
cached watermarks move only when an answer goes out, not on the re-reads of a
long poll.  Followers (kavka.replication.fetcher) send full requests without a
session (epoch -1), which Kafka's followers need not but may do.
"""

from __future__ import annotations

import asyncio

from kavka.api import fetch_sessions
from kavka.api.authorization import Op, Res, allowed, cluster_allowed
from kavka.api.errors import error_code_for
from kavka.api.quotas import bandwidth_throttle, max_value_in_window, unrecord
from kavka.api.registry import RawResponse, Request, api
from kavka.api.slicing import SLICE, run_sliced, run_steps
from kavka.log.errors import LogCorrupted, OffsetOutOfRange
from kavka.protocol.errors import ErrorCode
from kavka.protocol.fetch_response import PartitionResult, TopicResult, encode_fetch_response
from kavka.security.quota import CONSUMER_BYTE_RATE

KEY = 1
VERSIONS = (4, 17)
READ_COMMITTED = 1
FOLLOWER_READS_VERSION = 11   # KIP-392: from here a consumer may fetch from a follower
_NO_TOPIC = object()


class _Plan:
    """The partitions of one fetch, resolved once and re-read on each wake."""

    __slots__ = ("entries", "logs", "version", "max_bytes", "min_bytes", "read_committed", "follower", "size",
                 "context", "client_rack", "replicas", "quotas")

    def __init__(self, request: Request, context: fetch_sessions.FetchContext) -> None:
        body = request.body
        self.version = request.version
        self.follower = _replica_id(body) >= 0
        self.max_bytes, self.min_bytes = body.max_bytes, body.min_bytes
        if not self.follower and (most := max_value_in_window(request, CONSUMER_BYTE_RATE)) is not None:
            # Kafka's cap of a quota'd consumer's fetch: more would always be throttled
            self.max_bytes = min(self.max_bytes, max(int(most), 1))
            self.min_bytes = min(self.min_bytes, self.max_bytes)
        self.read_committed = body.isolation_level == READ_COMMITTED
        self.client_rack = "" if self.follower else getattr(body, "rack_id", "") or ""
        self.replicas = request.broker.replicas
        self.context = context
        self.entries = []
        self.logs = []
        self.size = len(context.partitions)
        self.quotas: dict = {}   # key -> the replication throttle a follower's read of it counts against

    def resolve(self, request: Request):
        """Stepping generator (kavka.api.slicing): look up every partition to read once."""
        logs = request.broker.logs
        replicas = request.broker.replicas
        replica_id = _replica_id(request.body)
        topics: dict = {}
        for done, (key, wanted) in enumerate(self.context.partitions, 1):
            if done % SLICE == 0:
                yield
            topic_key, index = key
            resolved = topics.get(topic_key)
            if resolved is None:
                resolved = topics[topic_key] = self._authorized(request, _resolve_topic(logs, topic_key,
                                                                                        self.version))
            name, topic_id, missing = resolved
            # per partition: one partition's error must not carry over to the next
            code = missing
            partition = None if missing is not None else logs.partition(name, index)
            if partition is not None:
                tp = (name, index)
                error = (replicas.follower_fetch(tp, replica_id, wanted.fetch_offset) if self.follower
                         else replicas.read_error(tp, follower_reads=self.version >= FOLLOWER_READS_VERSION))
                if error != ErrorCode.none:
                    partition, code = None, error.value
            if partition is not None and partition.offline:  # a failed log directory
                partition, code = None, ErrorCode.kafka_storage_error.value
            if partition is not None:
                self.logs.append(partition.log)
                if self.follower and (quota := replicas.replica_quota((name, index), replica_id)) is not None:
                    self.quotas[key] = quota
            self.entries.append((key, name, topic_id, wanted, partition, code))

    def _authorized(self, request: Request, resolved):
        """The resolved topic, or TOPIC_AUTHORIZATION_FAILED for it: a consumer needs READ on it,
        a follower CLUSTER_ACTION (kavka.api.authorization); an unknown id is answered first."""
        name, topic_id, missing = resolved
        if name is None:
            return resolved
        ok = (cluster_allowed(request, Op.CLUSTER_ACTION) if self.follower
              else allowed(request, Op.READ, Res.TOPIC, name))
        return resolved if ok else (name, topic_id, ErrorCode.topic_authorization_failed.value)

    def read(self):
        """Stepping generator: read everything once, giving ((key, result) pairs, bytes of records,
        whether to answer now whatever the bytes: an error, or a consumer sent to another replica)."""
        remaining = self.max_bytes
        total = 0
        urgent = False
        results = []
        for done, (key, name, _topic_id, wanted, partition, missing) in enumerate(self.entries, 1):
            if done % SLICE == 0:
                yield
            quota = self.quotas.get(key)
            if quota is not None and not partition.log.is_closed and quota.exceeded():   # throttled: no records
                result = _throttled(wanted, partition)
            else:
                result = self._read_partition(name, wanted, partition, missing, remaining, first=total == 0)
            size = result.records_size
            total += size
            remaining = max(0, remaining - size)
            urgent |= result.error_code != 0 or result.preferred_read_replica >= 0
            results.append((key, result))
        return results, total, urgent

    def topic_results(self, sent: list) -> list[TopicResult]:
        """The (key, result) pairs to send, grouped into topics as Kafka groups them: a run of
        partitions of one topic is one topic entry."""
        names = {key[0]: (name, topic_id) for key, name, topic_id, *_rest in self.entries}
        topics: list[TopicResult] = []
        last = _NO_TOPIC  # not None: a topic key may be None (a null name the fuzzer sends)
        for (topic_key, _index), result in sent:
            if not topics or topic_key != last:
                name, topic_id = names[topic_key]
                topics.append(TopicResult(name, topic_id, []))
                last = topic_key
            topics[-1].partitions.append(result)
        return topics

    def _read_partition(self, name, wanted, partition, missing, remaining: int, first: bool) -> PartitionResult:
        if partition is None or partition.log.is_closed:  # closed: deleted while a fetch was parked
            return PartitionResult(wanted.partition, missing or ErrorCode.unknown_topic_or_partition.value)
        log = partition.log
        epoch_error = _check_leader_epoch(getattr(wanted, "current_leader_epoch", -1), log.leader_epoch)
        if epoch_error:
            return PartitionResult(wanted.partition, epoch_error)
        if self.client_rack:
            preferred = self.replicas.preferred_read_replica((name, wanted.partition), self.client_rack,
                                                              wanted.fetch_offset)
            if preferred >= 0:  # as Kafka: no records, the watermarks, and where to read instead
                return PartitionResult(wanted.partition, 0, log.high_watermark, log.last_stable_offset,
                                       log.log_start_offset, (), () if self.read_committed else None, preferred)
        limit = min(wanted.partition_max_bytes, remaining)
        lso = log.last_stable_offset
        try:
            read = log.read(wanted.fetch_offset, limit, max_offset=self._max_offset(log, lso), min_one_batch=first)
        except OffsetOutOfRange:
            return PartitionResult(wanted.partition, ErrorCode.offset_out_of_range.value,
                                   log.high_watermark, log.high_watermark, log.log_start_offset)
        except OSError as exc:  # the disk failed under a read (EIO): the directory goes offline
            return PartitionResult(wanted.partition, error_code_for(partition.storage_failure(exc, "a read of")).value)
        except LogCorrupted as exc:  # logged once by the segment; an error, never garbage or a hang
            return PartitionResult(wanted.partition, error_code_for(exc).value,
                                   log.high_watermark, log.high_watermark, log.log_start_offset)
        aborted = None
        if self.read_committed:
            aborted = tuple(log.aborted_transactions(wanted.fetch_offset, read.upper_bound)) if read.slices else ()
        return PartitionResult(
            wanted.partition, 0, read.high_watermark, lso, read.log_start_offset, read.slices, aborted)

    def _max_offset(self, log, lso: int) -> int | None:
        """Where a read stops: followers read to the log end, consumers to the HW or the LSO."""
        if self.follower:
            return None
        return lso if self.read_committed else log.high_watermark


def _throttled(wanted, partition) -> PartitionResult:
    log = partition.log
    return PartitionResult(wanted.partition, 0, log.high_watermark, log.high_watermark, log.log_start_offset)


def _replica_id(body) -> int:
    """The fetching broker's id (v15+ in replica_state), -1 for consumers."""
    state = getattr(body, "replica_state", None)
    if state is not None:
        return state.replica_id
    return getattr(body, "replica_id", -1)


def _requested(body, version: int) -> tuple[dict, list]:
    """((topic key, partition) -> FetchPartition in request order, forgotten keys).  The key's
    topic is the name, or the topic id from v13.  A partition named twice keeps its first
    position and its last values, as Kafka's LinkedHashMap of the request's partitions does."""
    by_id = version >= 13
    wanted: dict = {}
    for topic in body.topics:
        topic_key = topic.topic_id if by_id else topic.topic
        for partition in topic.partitions:
            wanted[(topic_key, partition.partition)] = partition
    forgotten = [(topic.topic_id if by_id else topic.topic, index)
                 for topic in getattr(body, "forgotten_topics_data", ()) for index in topic.partitions]
    return wanted, forgotten


def _resolve_topic(logs, topic_key, version: int):
    """(name, topic id, error code or None) for one requested topic (a name, or an id from v13)."""
    if version >= 13:
        info = logs.topic_by_id(topic_key)
        if info is None:
            return None, topic_key, ErrorCode.unknown_topic_id.value
        return info.name, topic_key, None
    info = logs.topic(topic_key)
    if info is None:
        return topic_key, None, ErrorCode.unknown_topic_or_partition.value
    return topic_key, info.topic_id, None


def _check_leader_epoch(requested: int, current: int) -> int:
    if requested < 0 or requested == current:
        return 0
    return (ErrorCode.fenced_leader_epoch if requested < current else ErrorCode.unknown_leader_epoch).value


@api(KEY, "Fetch", VERSIONS)
def handle(request: Request):
    body = request.body
    wanted, forgotten = _requested(body, request.version)
    context = fetch_sessions.new_context(
        request.broker.fetch_sessions, _now_ms(request), request.version, getattr(body, "session_id", 0),
        getattr(body, "session_epoch", fetch_sessions.FINAL_EPOCH), wanted, forgotten)
    plan = _Plan(request, context)
    if plan.size > SLICE:
        return _sliced(plan, request)
    run_steps(plan.resolve(request))
    results, total, urgent = run_steps(plan.read())
    if _answer_now(plan, request.body, total, urgent):
        return _encode(plan, request, results)
    return _long_poll(plan, request)


def _now_ms(request: Request) -> int:
    return int(request.broker.clock.monotonic() * 1000)


async def _sliced(plan: _Plan, request: Request):
    """:func:`handle` for a big fetch: every pass over its partitions is sliced."""
    await run_sliced(plan.resolve(request))
    results, total, urgent = await run_sliced(plan.read())
    if _answer_now(plan, request.body, total, urgent):
        return _encode(plan, request, results)
    return await _long_poll(plan, request)


def _answer_now(plan: _Plan, body, total: int, urgent: bool) -> bool:
    return (total >= plan.min_bytes or urgent or body.max_wait.total_seconds() <= 0 or not plan.logs
            or plan.context.error != 0)


async def _long_poll(plan: _Plan, request: Request):
    """Wait for appends up to ``max_wait``; each re-read is sliced (a read of up to ``SLICE``
    partitions has no step, so it runs straight through)."""
    body = request.body
    min_bytes = plan.min_bytes
    loop = asyncio.get_running_loop()
    deadline = loop.time() + body.max_wait.total_seconds()
    woken: asyncio.Future = loop.create_future()

    def on_append(_log) -> None:
        if not woken.done():
            woken.set_result(True)

    for log in plan.logs:
        log.listeners.append(on_append)
    try:
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            timer = loop.call_later(remaining, lambda: woken.done() or woken.set_result(False))
            try:
                appended = await woken
            finally:
                timer.cancel()
            if not appended:
                break
            results, total, urgent = await run_sliced(plan.read())
            if total >= min_bytes or urgent:
                return _encode(plan, request, results)
            woken = loop.create_future()
    finally:
        for log in plan.logs:
            try:
                log.listeners.remove(on_append)
            except ValueError:
                pass
    results, _total, _urgent = await run_sliced(plan.read())
    return _encode(plan, request, results)


def _encode(plan: _Plan, request: Request, results: list) -> RawResponse:
    """The response; an incremental session's carries only the partitions with news."""
    error, session_id, sent = fetch_sessions.finish(
        request.broker.fetch_sessions, plan.context, _now_ms(request), plan.follower, plan.version, results)
    for key, result in sent if plan.quotas else ():
        if key in plan.quotas:
            plan.quotas[key].record(result.records_size)
    parts, size = encode_fetch_response(plan.version, plan.topic_results(sent), error_code=error,
                                        session_id=session_id)
    if plan.follower:
        return RawResponse(parts, size)
    throttle = bandwidth_throttle(request, CONSUMER_BYTE_RATE, size)
    if throttle > 0:   # Kafka answers a throttled fetch without its data, and does not count it
        unrecord(request, CONSUMER_BYTE_RATE, size)
        parts, size = encode_fetch_response(plan.version, (), error_code=error, session_id=session_id,
                                            throttle_ms=throttle)
    return RawResponse(parts, size)
