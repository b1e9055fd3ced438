"""Which fetches the replication throttles (kavka.replication.quota) count: replicas a
reassignment is adding, and those a topic's *.replication.throttled.replicas names (on the
leader only while out of sync); never the others."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from replica_world import TP, Store, manager, open_logs

from kavka.clock import ManualClock
from kavka.config import BrokerConfig, ConfigError, validate_topic_overrides
from kavka.replication.quota import ReplicationQuota

ME, OTHER, THIRD = 1, 2, 3


@pytest.fixture
def world(tmp_path):
    clock = ManualClock()
    logs = open_logs(tmp_path / "data", clock)
    quotas = {name: ReplicationQuota(lambda: 1000, 2, 1, clock.monotonic) for name in ("leader", "follower")}
    m = manager(ME, logs, clock, Store(), leader_quota=quotas["leader"], follower_quota=quotas["follower"])
    yield m, logs, quotas
    logs.close()


def topic_settings(logs, **settings: str) -> None:
    parsed = validate_topic_overrides({k.replace("_", "."): v for k, v in settings.items()})
    logs.partition(*TP).update_config(BrokerConfig().topic_config(parsed))


def test_the_leader_throttles_the_replica_a_reassignment_adds(world):
    m, _logs, quotas = world
    m.apply(TP, dataclasses.replace(Store().set(TP, (ME, OTHER, THIRD), ME, 1, (ME, OTHER)), adding=(THIRD,)))
    assert m.replica_quota(TP, THIRD) is quotas["leader"]
    assert m.replica_quota(TP, OTHER) is None


def test_the_leader_throttles_listed_partitions_out_of_sync_followers(world):
    m, logs, quotas = world
    m.apply(TP, Store().set(TP, (ME, OTHER, THIRD), ME, 1, (ME, OTHER)))
    assert m.replica_quota(TP, THIRD) is None
    topic_settings(logs, leader_replication_throttled_replicas=f"0:{ME}")
    assert m.replica_quota(TP, THIRD) is quotas["leader"]
    assert m.replica_quota(TP, OTHER) is None             # in sync: never throttled
    topic_settings(logs, leader_replication_throttled_replicas=f"0:{OTHER}")
    assert m.replica_quota(TP, THIRD) is None             # names another broker's replica
    topic_settings(logs, leader_replication_throttled_replicas="*")
    assert m.replica_quota(TP, THIRD) is quotas["leader"]


def test_a_follower_throttles_itself_when_added_or_listed(world):
    m, logs, quotas = world

    async def follow():   # a follower's fetcher is a task on the running loop
        state = Store().set(TP, (OTHER, ME), OTHER, 1, (OTHER,))
        m.apply(TP, state)
        try:
            assert m.follower_quota_of(TP) is None
            topic_settings(logs, follower_replication_throttled_replicas=f"0:{ME}")
            assert m.follower_quota_of(TP) is quotas["follower"]
            topic_settings(logs)
            m.apply(TP, dataclasses.replace(state, adding=(ME,)))
            assert m.follower_quota_of(TP) is quotas["follower"]
        finally:
            await m.stop()
    asyncio.run(asyncio.wait_for(follow(), 10))


def test_no_rate_no_throttle(tmp_path):
    clock = ManualClock()
    logs = open_logs(tmp_path / "data", clock)
    try:
        m = manager(ME, logs, clock, Store())
        m.apply(TP, dataclasses.replace(Store().set(TP, (ME, THIRD), ME, 1, (ME,)), adding=(THIRD,)))
        assert m.replica_quota(TP, THIRD) is None
    finally:
        logs.close()


@pytest.mark.parametrize("value", ["0", "a:1", "0:1,*", "0:"])
def test_a_malformed_throttled_replicas_list_is_refused(value):
    with pytest.raises(ConfigError, match="leader.replication.throttled.replicas: .* is not PARTITION:BROKER"):
        validate_topic_overrides({"leader.replication.throttled.replicas": value})
