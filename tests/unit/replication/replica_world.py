"""Real logs on tmp_path, a ManualClock and a store of partition states for the
replication unit tests; no sockets (the fetcher's peer is faked in its tests).

``Store`` is what etcd is in cluster mode: one Assignment per partition with a
version, and a compare-and-swap ``propose_isr`` that the tests may make refuse.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from kavka.clock import ManualClock
from kavka.config import BrokerConfig
from kavka.log.log_manager import LogManager
from kavka.protocol.record_codec import encode_batch
from kavka.replication.manager import Assignment, ReplicaManager

TOPIC = "t"
TP = (TOPIC, 0)
LAG_MS = 10_000


def open_logs(directory: Path, clock: ManualClock, topic_id=None) -> LogManager:
    logs = LogManager(directory, BrokerConfig(), clock)
    logs.load()
    if logs.topic(TOPIC) is None:
        logs.create_topic(TOPIC, 1, {}, topic_id=topic_id)
    return logs


def batch(clock: ManualClock, *values: bytes) -> bytearray:
    return bytearray(encode_batch([(None, v, clock.now_ms(), ()) for v in values]))


def produce(logs: LogManager, clock: ManualClock, *values: bytes):
    """Append as a client's Produce would (the leader assigns offsets and its epoch)."""
    return logs.partition(*TP).append_records(batch(clock, *values), 9, clock.now_ms())


class Store:
    def __init__(self) -> None:
        self.states: dict = {}
        self.proposals: list[tuple] = []   # (tp, isr, leader epoch, version) as asked
        self.refuse = False

    def set(self, tp, replicas, leader, epoch, isr) -> Assignment:
        old = self.states.get(tp)
        a = Assignment(tuple(replicas), leader, epoch, tuple(isr), (old.version + 1) if old else 1)
        self.states[tp] = a
        return a

    async def propose_isr(self, tp, isr, leader_epoch: int, version: int):
        self.proposals.append((tp, tuple(isr), leader_epoch, version))
        old = self.states[tp]
        if self.refuse or (old.version, old.leader_epoch) != (version, leader_epoch):
            return None
        self.states[tp] = Assignment(old.replicas, old.leader, old.leader_epoch, tuple(isr), old.version + 1)
        return old.version + 1


def manager(broker_id: int, logs: LogManager, clock: ManualClock, store: Store, address_of=lambda _id: None,
            **kwargs) -> ReplicaManager:
    """A ReplicaManager without its ISR timer (tests call check_isr with the clock moved)."""
    settings = {"lag_max_ms": LAG_MS, "fetch_max_wait_ms": 50, "backoff_ms": 20, **kwargs}
    return ReplicaManager(broker_id, logs, clock, address_of=address_of, propose_isr=store.propose_isr,
                          **settings)


async def settle(rounds: int = 5) -> None:
    """Let tasks the manager started (ISR proposals) run to their end."""
    for _ in range(rounds):
        await asyncio.sleep(0)
