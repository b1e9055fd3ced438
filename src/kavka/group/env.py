"""Settings and the per-operation environment (time, ids) of the group coordinator.

Time and randomness are passed in, never read from the system, so the state
machine runs under a ManualClock and a counter-based id source in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True, slots=True)
class GroupConfig:
    initial_rebalance_delay_ms: int = 3000
    min_session_timeout_ms: int = 6000
    max_session_timeout_ms: int = 1800000
    max_size: int = 2**31 - 1
    offsets_partitions: int = 50
    offsets_segment_bytes: int = 104857600
    retention_ms: int = 10080 * 60_000
    retention_check_interval_ms: int = 600000
    metadata_max_bytes: int = 4096
    consumer_session_timeout_ms: int = 45000
    consumer_heartbeat_interval_ms: int = 5000
    consumer_max_size: int = 2**31 - 1

    @classmethod
    def from_broker(cls, config) -> "GroupConfig":
        get = config.get
        return cls(get("group.initial.rebalance.delay.ms"), get("group.min.session.timeout.ms"),
                   get("group.max.session.timeout.ms"), get("group.max.size"),
                   get("offsets.topic.num.partitions"), get("offsets.topic.segment.bytes"),
                   get("offsets.retention.minutes") * 60_000, get("offsets.retention.check.interval.ms"),
                   get("offset.metadata.max.bytes"), get("group.consumer.session.timeout.ms"),
                   get("group.consumer.heartbeat.interval.ms"), get("group.consumer.max.size"))


@dataclass(frozen=True, slots=True)
class Env:
    """What one operation may use besides the group: the time, settings, id sources."""
    now: int    # monotonic milliseconds: deadlines
    wall: int   # wall-clock milliseconds: commit and state timestamps (persisted)
    config: GroupConfig
    next_token: Callable[[], int]
    new_uuid: Callable[[], str]
