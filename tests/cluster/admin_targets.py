"""The brokers an admin contract runs against: a lone broker, or three brokers on etcd.

Both are started with the same Kafka settings, scaled to their broker count
(``default.replication.factor`` and ``offsets.topic.replication.factor`` are the
number of brokers), so one test body, with expectations derived from
``broker_count`` and ``broker_ids`` (never from the mode's name), runs on both.
Brokers run in this process, each on its own event loop thread.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from kavka.broker import Broker

READY_TIMEOUT = 15.0


def contract_settings(broker_count: int) -> dict[str, str]:
    return {"num.partitions": "2", "default.replication.factor": str(broker_count),
            "offsets.topic.replication.factor": str(broker_count), "offsets.topic.num.partitions": "4",
            "group.initial.rebalance.delay.ms": "0", "replica.lag.time.max.ms": "5000"}


@dataclass
class AdminTarget:
    mode: str                       # for test ids and messages only
    brokers: dict[int, Broker]      # broker id -> a running broker
    restart: Callable[[int], Broker] | None = None   # cluster: start broker i again on its data dir

    @property
    def broker_ids(self) -> list[int]:
        return sorted(self.brokers)

    @property
    def broker_count(self) -> int:
        return len(self.brokers)

    def bootstrap(self, *ids: int) -> str:
        """Bootstrap servers of the given brokers (all of them by default)."""
        return ",".join(self.brokers[i].bootstrap_servers for i in ids or self.broker_ids)

    def stop(self) -> None:
        for broker in self.brokers.values():
            broker.stop()


def start_lone(directory: Path) -> AdminTarget:
    broker = Broker(directory / "lone", config=contract_settings(1)).start()
    return AdminTarget("lone", {broker.config.get("broker.id"): broker})


def start_cluster(etcd_endpoint: str, directory: Path, count: int = 3,
                  extra: dict[str, str] | Callable[[int], dict[str, str]] | None = None,
                  listeners: str | None = None) -> AdminTarget:
    """``count`` brokers; ``extra``: settings on top of the contract's, for every broker, or
    ``extra(broker_id)`` for each; ``listeners``: Kafka's ``listeners`` of each broker (ports
    0), None: one PLAINTEXT listener."""
    from kavka.cluster.node import ClusterSettings

    settings = ClusterSettings(etcd_endpoint, "contract-" + uuid.uuid4().hex[:10], 2000)
    target = AdminTarget(f"cluster{count}", {})

    def start(i: int) -> Broker:
        own = extra(i) if callable(extra) else (extra or {})
        config = {**contract_settings(count), **own, "broker.id": str(i)}
        target.brokers[i] = Broker(directory / f"b{i}", config=config, cluster=settings, listeners=listeners).start()
        return target.brokers[i]

    target.restart = start
    try:
        for i in range(1, count + 1):
            start(i)
        wait_until(lambda: all(len(b.node.view.brokers) == count and b.node.controller_id() > 0
                          for b in target.brokers.values()), READY_TIMEOUT, f"{count} brokers and a controller")
    except BaseException:
        target.stop()
        raise
    return target


def add_broker(target: AdminTarget, broker_id: int) -> Broker:
    """One more broker joining ``target``'s cluster (a scale-out), with the settings
    start_cluster gave the first ones; returned once every broker sees it."""
    count = len(target.brokers)
    broker = target.restart(broker_id)
    wait_until(lambda: all(len(b.node.view.brokers) == count + 1 for b in target.brokers.values()), READY_TIMEOUT,
               f"broker {broker_id} seen by every broker")
    return broker


@contextlib.contextmanager
def scaled_out(etcd_endpoint: str, directory: Path, extra: dict[str, str] | None = None) -> Iterator[AdminTarget]:
    """Three brokers (with ``extra`` settings), then a fourth, empty one joining; stopped on exit."""
    target = start_cluster(etcd_endpoint, directory, 3, extra)
    try:
        add_broker(target, 4)
        yield target
    finally:
        target.stop()


async def register_fake_broker(target: AdminTarget, broker_id: int, ttl: int) -> int:
    """Broker ``broker_id`` registered in etcd with the first broker's address (clients that
    try it reach a real broker) but never fetching, under a lease that outlives this
    coroutine (``ttl`` s): a reassignment onto it cannot complete.  Its lease id."""
    from kavka.cluster.etcd_client import Etcd
    from kavka.cluster.keys import KeyLayout
    from kavka.cluster.model import BrokerInfo
    from kavka.cluster.session import BrokerSession

    first = target.brokers[min(target.brokers)]
    etcd = await Etcd.connect(first.node.settings.endpoints)
    host, port = first.bootstrap_servers.rsplit(":", 1)
    session = BrokerSession(etcd, KeyLayout(first.node.settings.cluster_id), BrokerInfo(broker_id, host, int(port)),
                            ttl=ttl)
    await session.register()
    await session.close(revoke=False)   # the registration stays until its lease lapses or is revoked
    await etcd.close()
    return session.lease_id


async def revoke_lease(target: AdminTarget, lease: int) -> None:
    from kavka.cluster.etcd_client import Etcd

    etcd = await Etcd.connect(target.brokers[min(target.brokers)].node.settings.endpoints)
    try:
        await etcd.revoke(lease)
    finally:
        await etcd.close()


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(0.05)
