"""The brokers an admin contract runs against: a lone broker, or three brokers on etcd.

Both are started with the same Kafka settings, scaled to their broker count
(``default.replication.factor`` and ``offsets.topic.replication.factor`` are the
number of brokers), so one test body, with expectations derived from
``broker_count`` and ``broker_ids`` (never from the mode's name), runs on both.
Brokers run in this process, each on its own event loop thread.
"""

from __future__ import annotations

import time
import uuid
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
                  extra: dict[str, str] | Callable[[int], dict[str, str]] | None = None) -> AdminTarget:
    """``count`` brokers; ``extra``: settings on top of the contract's, for every broker, or
    ``extra(broker_id)`` for each."""
    from kavka.cluster.node import ClusterSettings

    settings = ClusterSettings(etcd_endpoint, "contract-" + uuid.uuid4().hex[:10], 2000)
    target = AdminTarget(f"cluster{count}", {})

    def start(i: int) -> Broker:
        own = extra(i) if callable(extra) else (extra or {})
        config = {**contract_settings(count), **own, "broker.id": str(i)}
        target.brokers[i] = Broker(directory / f"b{i}", config=config, cluster=settings).start()
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


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(0.05)
