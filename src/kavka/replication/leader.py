"""What a partition leader knows of its followers, and what follows from it.

Followers copy the leader with Fetch requests (``replica_id`` = their broker
id).  Each fetch says where the follower's log ends: it asks for the offset
after its last record.  From that the leader keeps, per follower:

* its log end offset (LEO);
* when it was last *caught up*: Kafka's rule — a fetch at or beyond the
  leader's LEO of that moment means caught up now; a fetch at or beyond the
  leader's LEO at the follower's *previous* fetch means it was caught up at
  that previous fetch (it has since read everything that existed then).

From those:

* the **high watermark** is the smallest LEO in the ISR (the leader's own
  included); it only moves forward while this broker leads, and consumers never
  read past it;
* a follower in the ISR that has not been caught up for
  ``replica.lag.time.max.ms`` should leave it (**shrink**);
* a follower outside the ISR whose LEO reached the high watermark, and the
  start of the leader's current epoch, may join again (**expand**).

ISR changes are not made here: the leader proposes them to the cluster store
(a compare-and-swap against the partition state it knows) and applies them
when the store accepts, via :meth:`LeaderState.set_isr`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Follower:
    leo: int = -1                    # unknown until its first fetch
    last_caught_up_ms: int = 0
    last_fetch_ms: int = 0
    leader_leo_at_last_fetch: int = -1


class LeaderState:
    def __init__(self, local_id: int, replicas: tuple[int, ...], isr: tuple[int, ...], leader_epoch: int,
                 epoch_start_offset: int, now_ms: int) -> None:
        self.local_id = local_id
        self.replicas = tuple(replicas)
        self.isr = frozenset(isr) | {local_id}
        self.leader_epoch = leader_epoch
        self.epoch_start_offset = epoch_start_offset
        # A new leader gives every follower a full lag period before it may be dropped.
        self.followers = {r: Follower(last_caught_up_ms=now_ms, last_fetch_ms=now_ms)
                          for r in replicas if r != local_id}

    def set_replicas(self, replicas: tuple[int, ...], now_ms: int) -> None:
        """The replica list changed (a reassignment): a new follower gets a full lag period,
        a removed one is forgotten."""
        self.replicas = tuple(replicas)
        self.followers = {r: self.followers.get(r) or Follower(last_caught_up_ms=now_ms, last_fetch_ms=now_ms)
                          for r in replicas if r != self.local_id}

    def is_replica(self, broker_id: int) -> bool:
        return broker_id in self.followers

    def on_fetch(self, follower_id: int, fetch_offset: int, leader_leo: int, now_ms: int) -> None:
        """A follower's fetch arrived asking for ``fetch_offset``."""
        f = self.followers[follower_id]
        if fetch_offset >= leader_leo:
            f.last_caught_up_ms = now_ms
        elif fetch_offset >= f.leader_leo_at_last_fetch >= 0:
            f.last_caught_up_ms = max(f.last_caught_up_ms, f.last_fetch_ms)
        f.leo = fetch_offset
        f.last_fetch_ms = now_ms
        f.leader_leo_at_last_fetch = leader_leo

    def high_watermark(self, leader_leo: int) -> int:
        """The smallest LEO in the ISR; a follower not heard from yet counts as 0."""
        hw = leader_leo
        for r in self.isr:
            if r != self.local_id:
                hw = min(hw, max(self.followers[r].leo, 0) if r in self.followers else 0)
        return hw

    def out_of_sync(self, now_ms: int, lag_max_ms: int) -> set[int]:
        """ISR followers not caught up for longer than ``lag_max_ms``."""
        return {r for r in self.isr if r != self.local_id
                and now_ms - self.followers[r].last_caught_up_ms > lag_max_ms}

    def may_join(self, follower_id: int, high_watermark: int) -> bool:
        """Whether a follower outside the ISR may join it, judged as its fetch arrives (so a
        follower that has since died is never brought back by an old position)."""
        f = self.followers.get(follower_id)
        return (f is not None and follower_id not in self.isr
                and f.leo >= max(high_watermark, self.epoch_start_offset))

    def set_isr(self, isr) -> None:
        self.isr = frozenset(isr) | {self.local_id}
