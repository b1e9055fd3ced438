"""ClientQuotaManager with a fake clock: Kafka's resolution order, the windowed rate (SimpleRate's start),
the throttle time and its caps, a greedy client's rate over ten seconds."""

import pytest

from kavka.security.quota import (
    CLIENT_ID, IP, PRODUCER_BYTE_RATE, REQUEST_PERCENTAGE, USER, ClientQuotas, InvalidQuota, check_value, entity_of,
)
from kavka.security.quota_manager import RESOLVED_CACHE_MAX, ClientQuotaManager


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def quotas(*items) -> ClientQuotas:
    q = ClientQuotas()
    for components, value in items:
        q = q.altered(entity_of(components), {PRODUCER_BYTE_RATE: value})
    return q


LEVELS = [  # Kafka's order, most specific first
    (((USER, "alice"), (CLIENT_ID, "app")), 1, ("alice", "app")),
    (((USER, "alice"), (CLIENT_ID, None)), 2, ("alice", "app")),
    (((USER, "alice"),), 3, ("alice", "")),
    (((USER, None), (CLIENT_ID, "app")), 4, ("alice", "app")),
    (((USER, None), (CLIENT_ID, None)), 5, ("alice", "app")),
    (((USER, None),), 6, ("alice", "")),
    (((CLIENT_ID, "app"),), 7, ("", "app")),
    (((CLIENT_ID, None),), 8, ("", "app")),
]


@pytest.mark.parametrize("level", range(len(LEVELS)))
def test_resolution_takes_the_most_specific_entity_setting_the_key(level):
    q = quotas(*[(c, v) for c, v, _tags in LEVELS[level:]])
    _c, value, tags = LEVELS[level]
    assert q.resolve(PRODUCER_BYTE_RATE, "alice", "app") == (value, tags)


def test_no_quota_resolves_to_none_and_never_throttles():
    manager = ClientQuotaManager(lambda: quotas((((USER, "bob"),), 10)), 11, 1, FakeClock())
    assert manager.quotas().resolve(PRODUCER_BYTE_RATE, "alice", "app") is None
    assert manager.record(PRODUCER_BYTE_RATE, "alice", "app", 10**9) == 0


def test_a_new_rate_is_measured_over_at_least_one_sample():
    clock = FakeClock()
    manager = ClientQuotaManager(lambda: quotas((((CLIENT_ID, "app"),), 1000)), 11, 1, clock)
    assert manager.record(PRODUCER_BYTE_RATE, "u", "app", 1000) == 0   # 1000 over one 1 s sample: the quota
    assert manager.rate(PRODUCER_BYTE_RATE, "u", "app") == pytest.approx(1000)
    clock.now += 0.5
    # 1500 over 1 s is 1500/s: 50% over, for a 1 s window: 0.5 s (Kafka's Rate would count 10 s: no throttle)
    assert manager.record(PRODUCER_BYTE_RATE, "u", "app", 500) == 500
    clock.now += 4.5
    assert manager.rate(PRODUCER_BYTE_RATE, "u", "app") == pytest.approx(300)   # then the elapsed time: 5 s
    assert manager.record(PRODUCER_BYTE_RATE, "u", "app", 3500) == 0            # 5000 / 5 s: the quota
    assert manager.record(PRODUCER_BYTE_RATE, "u", "app", 1000) == 1000         # 6000 / 5 s: 20% of 5 s


def test_byte_rate_throttles_are_not_capped_request_time_ones_at_one_sample():
    clock = FakeClock()
    q = ClientQuotas().altered(entity_of([(CLIENT_ID, "app")]), {PRODUCER_BYTE_RATE: 10, REQUEST_PERCENTAGE: 1})
    manager = ClientQuotaManager(lambda: q, 11, 1, clock)
    assert manager.record(PRODUCER_BYTE_RATE, "u", "app", 10_000) == 999_000   # 1000x the quota over 1 s
    assert manager.record(REQUEST_PERCENTAGE, "u", "app", 50) == 1000          # 49x over, capped at 1 s


def test_a_greedy_client_gets_its_quota_over_any_ten_seconds():
    """A producer sending 64 KiB requests back to back, each after the last one's throttle (as a
    muted connection does), at producer_byte_rate 1 MB/s with Kafka's 11 samples of 1 s.  Measured
    as Kafka's Rate (10 s of credit for a new rate) it would pass 10 MB at once, then almost
    nothing until that sample left the window, then 10 MB again: 10 s windows reading 0.1 or 1.2 MB/s."""
    clock = FakeClock()
    manager = ClientQuotaManager(lambda: quotas((((CLIENT_ID, "app"),), 1_000_000)), 11, 1, clock)
    start, sent = clock.now, []
    while clock.now < start + 60:
        clock.now += 0.0005                                   # the broker's time to take the request
        sent.append((clock.now - start, 65536))
        clock.now += manager.record(PRODUCER_BYTE_RATE, "u", "app", 65536) / 1000
    per_second = [sum(n for t, n in sent if s <= t < s + 1) for s in range(60)]
    assert per_second[0] <= 1.5e6                             # one sample's worth at once, not ten
    tens = [sum(per_second[s:s + 10]) / 10 for s in range(51)]
    assert all(0.95e6 <= rate <= 1.05e6 for rate in tens), [round(r) for r in tens]


def test_max_value_in_window_is_window_num_minus_one_samples_at_the_quota():
    manager = ClientQuotaManager(lambda: quotas((((CLIENT_ID, "app"),), 1000)), 11, 2, FakeClock())
    assert manager.max_value_in_window(PRODUCER_BYTE_RATE, "u", "app") == 20_000
    assert manager.max_value_in_window(PRODUCER_BYTE_RATE, "u", "other") is None


def test_old_samples_leave_the_window():
    clock = FakeClock()
    manager = ClientQuotaManager(lambda: quotas((((CLIENT_ID, "app"),), 1000)), 11, 1, clock)
    manager.record(PRODUCER_BYTE_RATE, "u", "app", 50_000)
    clock.now += 12.5
    assert manager.rate(PRODUCER_BYTE_RATE, "u", "app") == 0
    assert manager.record(PRODUCER_BYTE_RATE, "u", "app", 100) == 0


def test_connections_sharing_a_user_quota_share_its_rate():
    clock = FakeClock()
    manager = ClientQuotaManager(lambda: quotas((((USER, "alice"),), 10_000)), 11, 1, clock)
    manager.record(PRODUCER_BYTE_RATE, "alice", "one", 8000)
    assert manager.record(PRODUCER_BYTE_RATE, "alice", "two", 4000) == 200   # 12000/1 s: 20% over


def test_a_changed_quota_applies_to_the_rate_already_measured():
    clock = FakeClock()
    current = [quotas((((CLIENT_ID, "app"),), 100_000))]
    manager = ClientQuotaManager(lambda: current[0], 11, 1, clock)
    assert manager.record(PRODUCER_BYTE_RATE, "u", "app", 20_000) == 0
    current[0] = quotas((((CLIENT_ID, "app"),), 1000))
    assert manager.record(PRODUCER_BYTE_RATE, "u", "app", 1) > 0
    current[0] = quotas((((CLIENT_ID, "other"),), 1000))           # removed from this client: no more throttle
    assert manager.record(PRODUCER_BYTE_RATE, "u", "app", 10**9) == 0


def test_the_cache_of_lookups_is_bounded():
    q = quotas((((CLIENT_ID, None),), 10**9))
    manager = ClientQuotaManager(lambda: q, 11, 1, FakeClock())
    for i in range(RESOLVED_CACHE_MAX + 10):
        manager.record(PRODUCER_BYTE_RATE, "u", f"client-{i}", 1)
    assert len(manager._resolved) <= RESOLVED_CACHE_MAX


@pytest.mark.parametrize("components", [
    [], [(IP, "1.2.3.4"), (USER, "a")], [(USER, "a"), (USER, "b")], [("group", "g")], [(USER, "")],
    [(IP, "not-an-address")], [(IP, "10.0.0.300")],
])
def test_bad_entities_are_refused(components):
    with pytest.raises(InvalidQuota):
        entity_of(components)


@pytest.mark.parametrize("entity,key,value", [
    ([(IP, None)], PRODUCER_BYTE_RATE, 10.0),
    ([(USER, "a")], "connection_creation_rate", 10.0),
    ([(USER, "a")], PRODUCER_BYTE_RATE, 1.5),
    ([(USER, "a")], PRODUCER_BYTE_RATE, -1.0),
    ([(USER, "a")], "bogus", 1.0),
])
def test_bad_values_are_refused(entity, key, value):
    with pytest.raises(InvalidQuota):
        check_value(entity_of(entity), key, value)


def test_ip_quota_falls_back_to_the_default_ip():
    q = ClientQuotas().altered(entity_of([(IP, None)]), {"connection_creation_rate": 5})
    q = q.altered(entity_of([(IP, "10.0.0.1")]), {"connection_creation_rate": 2})
    assert (q.ip_quota("10.0.0.1"), q.ip_quota("10.0.0.2")) == (2, 5)
    assert ClientQuotas.decode(q.encode()) == q


def test_controller_mutations_take_tokens_from_a_bucket_refilled_at_the_quota():
    clock = FakeClock()
    q = ClientQuotas().altered(entity_of([(CLIENT_ID, "admin")]), {"controller_mutation_rate": 2})
    manager = ClientQuotaManager(lambda: q, 11, 1, clock, mutation_window_s=10)
    assert manager.mutation_throttle("u", "admin", 20) == 0      # the burst: 2/s * 10 s
    assert manager.mutation_throttle("u", "admin", 4) == 2000     # 4 below zero at 2/s: 2 s
    clock.now += 1
    assert manager.mutation_throttle("u", "admin") == 1000        # refilled by 2
    clock.now += 100
    assert manager.mutation_throttle("u", "admin") == 0           # full again, never beyond the burst
    assert manager.mutation_throttle("u", "admin", 21) == 500
    assert manager.mutation_throttle("u", "other", 10**6) == 0    # no quota for that client


def test_rates_nobody_records_into_for_an_hour_are_dropped():
    clock = FakeClock()
    q = quotas((((CLIENT_ID, None),), 1000))   # every client id its own rate
    manager = ClientQuotaManager(lambda: q, 11, 1, clock)
    for i in range(100):
        manager.record(PRODUCER_BYTE_RATE, "u", f"client-{i}", 10)
    assert manager.tracked() == 100
    clock.now += 3601
    manager.record(PRODUCER_BYTE_RATE, "u", "client-0", 10)
    assert manager.tracked() == 1
