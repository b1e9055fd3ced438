"""The controller's decisions as pure functions: replica placement and leader election.

The controller reads etcd (through ``ClusterView``), calls these, and writes their results
with the guarded writes of ``state_store.py``; keeping them pure lets tests check the rules
without etcd. Every function stamps the given controller epoch into the state it returns, and
returns None when nothing would change (so the controller writes nothing).

Invariants kept: the leader is in the ISR, or is NO_LEADER; the leader epoch goes up by one
exactly when the leader changes; a broker outside the ISR becomes leader only with unclean
election enabled (it may lack acknowledged records).

* ``place``: partition p gets ``rf`` consecutive brokers (in id order) starting at
  ``(start + p) mod n``, where ``start`` comes from a stable hash of the topic name. Leaders
  (first replicas) spread evenly within a topic, and topics start on different brokers.
* ``initial_state``: the live replicas form the ISR, the first of them leads.
* ``after_broker_change``: dead brokers leave the ISR (unless that would empty it: the last
  ISR is kept so that one of its members can lead again when it returns). A live leader stays;
  otherwise the first replica (assignment order) that is live and in the ISR leads, or the
  partition goes offline (NO_LEADER).
* ``preferred``: move leadership to the first replica when it is live and in the ISR.
* ``unclean``: for a partition without a live leader (an ElectLeaders UNCLEAN asked for),
  the election ``after_broker_change`` makes with unclean election enabled: the ISR first,
  else any live replica; None while a live replica leads or none is live.
* ``check_capacity``: no broker may end up holding more than ``max.partitions.per.broker``
  replicas (counted over every topic's assignment), else OverCapacity (POLICY_VIOLATION).
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence

from .model import NO_LEADER, PartitionState


class PlacementError(ValueError):
    """The replicas asked for cannot be placed (INVALID_REPLICATION_FACTOR)."""


class OverCapacity(ValueError):
    """A broker would hold more replicas than max.partitions.per.broker (POLICY_VIOLATION)."""


def replicas_per_broker(assignments: Iterable[Mapping[int, Sequence[int]]]) -> Counter:
    """How many partition replicas each broker holds, over topics' replica assignments."""
    held: Counter = Counter()
    for replicas in assignments:
        for brokers in replicas.values():
            held.update(brokers)
    return held


def check_capacity(held: Counter, adding: Mapping[int, Sequence[int]], limit: int) -> None:
    """OverCapacity unless every broker still holds at most ``limit`` replicas after ``adding``."""
    added = replicas_per_broker([adding])
    over = sorted(b for b, n in added.items() if held[b] + n > limit)
    if over:
        b = over[0]
        raise OverCapacity(f"broker {b} holds {held[b]} partitions; {added[b]} more would exceed "
                           f"max.partitions.per.broker={limit}" + (f" (also brokers {over[1:]})" if over[1:] else ""))


def place(topic: str, partitions: Iterable[int], replication_factor: int,
          brokers: Collection[int]) -> dict[int, tuple[int, ...]]:
    ordered = sorted(brokers)
    n = len(ordered)
    if replication_factor < 1:
        raise PlacementError(f"Replication factor must be larger than 0: {replication_factor}.")
    if replication_factor > n:
        raise PlacementError(f"Replication factor: {replication_factor} larger than available "
                             f"brokers: {n}.")
    start = zlib.crc32(topic.encode("utf-8", "surrogatepass")) % n
    return {p: tuple(ordered[(start + p + j) % n] for j in range(replication_factor))
            for p in partitions}


def initial_state(replicas: Sequence[int], live: Collection[int],
                  controller_epoch: int) -> PartitionState:
    isr = tuple(r for r in replicas if r in live)
    if not isr:  # nobody to lead yet: whichever replica registers first may (none has data)
        return PartitionState(NO_LEADER, 0, tuple(replicas), controller_epoch)
    return PartitionState(isr[0], 0, isr, controller_epoch)


def after_broker_change(state: PartitionState, replicas: Sequence[int], live: Collection[int],
                        controller_epoch: int, unclean: bool = False) -> PartitionState | None:
    isr = tuple(b for b in state.isr if b in live) or state.isr
    if state.leader != NO_LEADER and state.leader in live:
        return _changed(state, state.leader, isr, controller_epoch)
    candidates = [b for b in replicas if b in live and b in isr]
    if candidates:
        leader = candidates[0]
        return _changed(state, leader, (leader,) + tuple(b for b in isr if b != leader),
                        controller_epoch)
    if unclean:
        alive = [b for b in replicas if b in live]
        if alive:
            return _changed(state, alive[0], (alive[0],), controller_epoch)
    return _changed(state, NO_LEADER, isr, controller_epoch)


def preferred(state: PartitionState, replicas: Sequence[int], live: Collection[int],
              controller_epoch: int) -> PartitionState | None:
    first = replicas[0]
    if state.leader == first or first not in live or first not in state.isr:
        return None
    return _changed(state, first, state.isr, controller_epoch)


def unclean(state: PartitionState, replicas: Sequence[int], live: Collection[int],
            controller_epoch: int) -> PartitionState | None:
    if state.leader != NO_LEADER and state.leader in live:
        return None
    new = after_broker_change(state, replicas, live, controller_epoch, unclean=True)
    return None if new is None or new.leader == NO_LEADER else new


def _changed(state: PartitionState, leader: int, isr: tuple[int, ...],
             controller_epoch: int) -> PartitionState | None:
    if (leader, isr) == (state.leader, state.isr):
        return None
    epoch = state.leader_epoch + (1 if leader != state.leader else 0)
    return PartitionState(leader, epoch, isr, controller_epoch)
