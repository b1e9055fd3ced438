"""Incremental fetch sessions (KIP-227): the cache alone, then Fetch through the dispatcher.

The cache tests drive kavka.api.fetch_sessions with explicit times; the Fetch tests send wire
frames to a real broker context (tests/unit/api/conftest.py) and read what kio decodes.
"""

from __future__ import annotations

import datetime

import pytest

from kavka.api.fetch_sessions import INVALID_SESSION_ID, CachedPartition, FetchSessionCache, next_epoch
from kavka.protocol.record_codec import encode_batch

FETCH = 1
EVICT_MS = 120_000


# -- the cache -----------------------------------------------------------------------------

class _Want:
    def __init__(self, partition: int, fetch_offset: int = 0) -> None:
        self.partition, self.fetch_offset, self.partition_max_bytes = partition, fetch_offset, 1 << 20


def _parts(n: int) -> dict:
    return {("t", i): CachedPartition(_Want(i)) for i in range(n)}


def test_next_epoch_wraps_to_one_and_keeps_final():
    assert next_epoch(0) == 1 and next_epoch(7) == 8
    assert next_epoch(2**31 - 1) == 1
    assert next_epoch(-1) == -1


def test_no_slots_no_sessions():
    cache = FetchSessionCache(0)
    assert cache.maybe_create(0, False, False, _parts(3)) == INVALID_SESSION_ID
    assert cache.maybe_create(0, True, False, _parts(3)) == INVALID_SESSION_ID


def test_full_cache_refuses_a_young_consumer_session_even_if_bigger():
    cache = FetchSessionCache(1)
    first = cache.maybe_create(0, False, False, _parts(1))
    assert first != INVALID_SESSION_ID
    assert cache.maybe_create(1000, False, False, _parts(50)) == INVALID_SESSION_ID
    assert list(cache.sessions) == [first] and cache.evictions == 0


def test_stale_session_is_evicted_by_anyone():
    cache = FetchSessionCache(1)
    first = cache.maybe_create(0, False, False, _parts(10))
    second = cache.maybe_create(EVICT_MS + 1, False, False, _parts(1))
    assert second != INVALID_SESSION_ID and first not in cache.sessions and cache.evictions == 1


def test_bigger_session_evicts_an_old_smaller_one_but_not_an_equal_one():
    cache = FetchSessionCache(1)
    first = cache.maybe_create(0, False, False, _parts(5))
    cache.touch(cache.get(first), EVICT_MS + 1)       # old now (evictable), but recently used
    assert cache.maybe_create(EVICT_MS + 2, False, False, _parts(5)) == INVALID_SESSION_ID
    bigger = cache.maybe_create(EVICT_MS + 3, False, False, _parts(6))
    assert bigger != INVALID_SESSION_ID and first not in cache.sessions


def test_age_counts_as_of_the_last_touch():
    cache = FetchSessionCache(1)
    first = cache.maybe_create(0, False, False, _parts(1))
    cache.touch(cache.get(first), EVICT_MS)           # not yet older than the eviction time
    assert cache.maybe_create(EVICT_MS + 10, False, False, _parts(100)) == INVALID_SESSION_ID


def test_follower_evicts_a_young_consumer_session_but_not_a_young_follower():
    cache = FetchSessionCache(1)
    consumer = cache.maybe_create(0, False, False, _parts(100))
    follower = cache.maybe_create(1, True, False, _parts(1))
    assert follower != INVALID_SESSION_ID and consumer not in cache.sessions
    assert cache.maybe_create(2, True, False, _parts(100)) == INVALID_SESSION_ID
    assert cache.maybe_create(3, False, False, _parts(100)) == INVALID_SESSION_ID


def test_cached_partitions_are_bounded():
    cache = FetchSessionCache(10, max_partitions=10)
    assert cache.maybe_create(0, False, False, _parts(11)) == INVALID_SESSION_ID
    assert cache.maybe_create(0, False, False, _parts(8)) != INVALID_SESSION_ID
    assert cache.maybe_create(1, False, False, _parts(3)) == INVALID_SESSION_ID
    assert cache.total_partitions == 8


def test_session_ids_are_positive_and_unique():
    cache = FetchSessionCache(200)
    ids = {cache.maybe_create(0, False, False, _parts(1)) for _ in range(200)}
    assert len(ids) == 200 and min(ids) > 0


# -- Fetch through the dispatcher ------------------------------------------------------------

@pytest.fixture
def h(admin):
    harness = admin()
    harness.logs.create_topic("t", 3)
    for index in range(3):
        _append(harness, "t", index, 2)
    return harness


def _append(h, topic: str, index: int, count: int) -> None:
    batch = encode_batch([(None, b"v%d" % i, 1_700_000_000_000, ()) for i in range(count)])
    h.logs.partition(topic, index).append_records(bytearray(batch), 9, 1_700_000_000_000)


def _fetch(h, version: int, session_id: int, epoch: int, partitions=(), forgotten=(), topic="t"):
    q = h.req(FETCH, version)
    key = {"topic_id": h.logs.topic(topic).topic_id} if version >= 13 else {"topic": topic}
    topics = () if not partitions else (q.FetchTopic(**key, partitions=tuple(
        q.FetchPartition(partition=p, fetch_offset=o, partition_max_bytes=1 << 20, current_leader_epoch=-1,
                         last_fetched_epoch=-1, log_start_offset=-1) for p, o in partitions)),)
    gone = () if not forgotten else (q.ForgottenTopic(**key, partitions=tuple(forgotten)),)
    return h.call(q.FetchRequest(
        replica_id=-1, max_wait=datetime.timedelta(0), min_bytes=1, max_bytes=50 << 20, isolation_level=0,
        session_id=session_id, session_epoch=epoch, topics=topics, forgotten_topics_data=gone, rack_id="",
        cluster_id=None))


def _sent(response) -> dict:
    return {p.partition_index: (p.error_code, p.high_watermark, len(p.records or b""))
            for t in response.responses for p in t.partitions}


@pytest.mark.parametrize("version", [7, 12, 13, 17])
def test_incremental_fetch_sends_only_what_changed(h, version):
    full = _fetch(h, version, 0, 0, [(0, 0), (1, 0), (2, 0)])
    assert full.error_code == 0 and full.session_id != 0
    assert {p: (e, hw) for p, (e, hw, _n) in _sent(full).items()} == {0: (0, 2), 1: (0, 2), 2: (0, 2)}
    session = full.session_id
    # the client moves its positions to 2: nothing new anywhere
    quiet = _fetch(h, version, session, 1, [(0, 2), (1, 2), (2, 2)])
    assert quiet.session_id == session and _sent(quiet) == {}
    # new records on partition 1 only: an incremental request naming nothing gets just that one
    _append(h, "t", 1, 3)
    news = _fetch(h, version, session, 2)
    assert {p: (e, hw) for p, (e, hw, _n) in _sent(news).items()} == {1: (0, 5)}
    assert _sent(news)[1][2] > 0
    assert _fetch(h, version, session, 3, [(1, 5)]).responses == ()
    assert h.context.fetch_sessions.get(session).epoch == 4


def test_session_errors(h):
    session = _fetch(h, 12, 0, 0, [(0, 0)]).session_id
    assert _fetch(h, 12, session, 5).error_code == 71          # INVALID_FETCH_SESSION_EPOCH
    wrong_kind = _fetch(h, 13, session, 1)
    assert wrong_kind.error_code == 106 and wrong_kind.responses == ()  # FETCH_SESSION_TOPIC_ID_ERROR
    assert _fetch(h, 12, session, 1).error_code == 0            # the session survived both
    missing = _fetch(h, 12, session + 1, 1)
    assert (missing.error_code, missing.session_id) == (70, 0)  # FETCH_SESSION_ID_NOT_FOUND


def test_forgotten_partitions_leave_the_session_and_the_last_one_closes_it(h):
    session = _fetch(h, 12, 0, 0, [(0, 0), (1, 0)]).session_id
    cache = h.context.fetch_sessions
    _fetch(h, 12, session, 1, [(1, 2)], forgotten=[0])
    assert list(cache.get(session).partitions) == [("t", 1)] and cache.total_partitions == 1
    _append(h, "t", 0, 1)
    assert _sent(_fetch(h, 12, session, 2)) == {}               # partition 0 is not in it any more
    closing = _fetch(h, 12, session, 3, forgotten=[1])
    assert closing.session_id == 0 and cache.get(session) is None and cache.total_partitions == 0


def test_full_requests_close_the_named_session_and_epoch_minus_one_makes_none(h):
    cache = h.context.fetch_sessions
    session = _fetch(h, 12, 0, 0, [(0, 0)]).session_id
    legacy = _fetch(h, 12, session, -1, [(0, 0)])
    assert legacy.session_id == 0 and cache.get(session) is None and len(cache.sessions) == 0
    again = _fetch(h, 12, 0, 0, [(0, 0)]).session_id
    renewed = _fetch(h, 12, again, 0, [(0, 0)]).session_id
    assert renewed not in (0, again) and list(cache.sessions) == [renewed]


def test_errors_are_sent_every_time_and_a_recovered_partition_once_more(h):
    session = _fetch(h, 12, 0, 0, [(0, 99)]).session_id          # out of range
    assert _sent(_fetch(h, 12, session, 1))[0][0] == 1           # OFFSET_OUT_OF_RANGE again
    fixed = _fetch(h, 12, session, 2, [(0, 2)])
    assert _sent(fixed) == {0: (0, 2, 0)}                        # sent once after the error
    assert _sent(_fetch(h, 12, session, 3)) == {}


def test_topic_id_sessions_answer_a_deleted_topic_unknown_until_it_is_forgotten(h):
    old_id = h.logs.topic("t").topic_id
    session = _fetch(h, 13, 0, 0, [(0, 2)]).session_id
    h.logs.delete_topic("t")
    h.logs.create_topic("t", 1)
    _append(h, "t", 0, 4)
    gone = _fetch(h, 13, session, 1)
    assert [(t.topic_id, _sent(gone)) for t in gone.responses] == [(old_id, {0: (100, -1, 0)})]  # UNKNOWN_TOPIC_ID
    q = h.req(FETCH, 13)
    new_id = h.logs.topic("t").topic_id
    replaced = h.call(q.FetchRequest(
        replica_id=-1, max_wait=datetime.timedelta(0), min_bytes=1, max_bytes=1 << 20, isolation_level=0,
        session_id=session, session_epoch=2, rack_id="",
        topics=(q.FetchTopic(topic_id=new_id, partitions=(q.FetchPartition(
            partition=0, fetch_offset=0, partition_max_bytes=1 << 20, current_leader_epoch=-1,
            last_fetched_epoch=-1, log_start_offset=-1),)),),
        forgotten_topics_data=(q.ForgottenTopic(topic_id=old_id, partitions=(0,)),)))
    assert [(t.topic_id, _sent(replaced)) for t in replaced.responses] == [(new_id, {0: (0, 4, _sent(replaced)[0][2])})]
    assert list(h.context.fetch_sessions.get(session).partitions) == [(new_id, 0)]


def test_records_rotate_partitions_to_the_back(h):
    session = _fetch(h, 12, 0, 0, [(0, 0), (1, 0), (2, 0)]).session_id
    _append(h, "t", 0, 1)
    _fetch(h, 12, session, 1, [(0, 2), (1, 2), (2, 2)])
    assert list(h.context.fetch_sessions.get(session).partitions)[-1] == ("t", 0)
