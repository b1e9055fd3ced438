"""Faults for the transactional tests on a ProcessCluster: each kind takes a broker and a
random generator; :class:`RotatingFaults` applies them in turn, each to the broker the next
victim picker names (a transaction coordinator, the group coordinator, a partition leader),
and keeps a line per fault for the test's report."""

from __future__ import annotations

import random
import time
from typing import Callable

from cluster_process import find_coordinator, wait_for


def kill9(broker, rng: random.Random) -> None:
    """kill -9, restarted after 0.5-3 s (a cluster's etcd session may expire meanwhile)."""
    broker.kill9()
    time.sleep(rng.uniform(0.5, 3.0))
    broker.restart()


def pause(broker, rng: random.Random) -> None:
    """SIGSTOP for 1-4 s."""
    broker.pause()
    time.sleep(rng.uniform(1.0, 4.0))
    broker.resume()


def cut_off(broker, rng: random.Random) -> None:
    """A cluster broker's proxies (to etcd, and its advertised listener) cut for 3-6 s."""
    broker.etcd_proxy.cut()
    broker.listener_proxy.cut()
    time.sleep(rng.uniform(3.0, 6.0))
    broker.etcd_proxy.heal()
    broker.listener_proxy.heal()


FAULT_KINDS = [kill9, pause, cut_off]


Victim = Callable[[], tuple[int, str]]   # (broker id, its role)


def txn_coordinator(cluster, transactional_ids: list[str], rng: random.Random) -> Victim:
    def pick() -> tuple[int, str]:
        tid = rng.choice(transactional_ids)
        return wait_for(lambda: find_coordinator(cluster, tid, 1), 30, f"the coordinator of {tid}"), \
            f"coordinator of {tid}"
    return pick


def group_coordinator(cluster, group: str) -> Victim:
    def pick() -> tuple[int, str]:
        return wait_for(lambda: find_coordinator(cluster, group, 0), 30, "the group coordinator"), \
            f"coordinator of group {group}"
    return pick


def partition_leader(cluster, topics: list[str], partitions: int, rng: random.Random) -> Victim:
    def pick() -> tuple[int, str]:
        topic, partition = rng.choice(topics), rng.randrange(partitions)
        return wait_for(lambda: cluster.leader_of(topic, partition), 30, f"the leader of {topic}-{partition}"), \
            f"leader of {topic}-{partition}"
    return pick


class RotatingFaults:
    def __init__(self, cluster, rng: random.Random, victims: list[Victim]) -> None:
        self.cluster, self.rng, self.victims = cluster, rng, victims
        self.done: list[str] = []

    def __call__(self) -> None:
        broker_id, role = self.victims[len(self.done) % len(self.victims)]()
        kind = FAULT_KINDS[len(self.done) % len(FAULT_KINDS)]
        self.done.append(f"{kind.__name__} {broker_id} ({role})")
        kind(self.cluster.brokers[broker_id], self.rng)
