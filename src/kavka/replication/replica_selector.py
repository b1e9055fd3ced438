"""Which replica a consumer should read from (KIP-392), as Kafka's ``replica.selector.class`` picks it.

A leader asked by a consumer that names its rack (``client.rack``, Fetch v11+) may point it
at a replica in that rack through the response's ``preferred_read_replica``; the consumer
then fetches from that follower, which serves consumers up to its own high watermark.
Kafka ships one selector, ``RackAwareReplicaSelector``, and none is configured by default
(every consumer reads from the leader).  Its rule, here as a pure function:

* no client rack, or no replica in the client's rack: the leader;
* the leader is in the client's rack: the leader;
* else the most caught-up replica of that rack: the highest log end offset, then the one
  caught up most recently (then, for a stable answer, the lowest broker id).

The candidates are the leader and the in-sync followers whose log reaches the fetch offset
(the manager filters them, as Kafka's ReplicaManager does); choosing the leader means "no
preferred replica", which the response carries as -1.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReplicaView:
    broker_id: int
    rack: str | None
    log_end_offset: int
    since_caught_up_ms: int


def rack_aware(client_rack: str, leader: ReplicaView, followers: list[ReplicaView]) -> ReplicaView:
    """RackAwareReplicaSelector's choice among the leader and ``followers``."""
    if not client_rack or leader.rack == client_rack:
        return leader
    same_rack = [r for r in followers if r.rack == client_rack]
    if not same_rack:
        return leader
    return max(same_rack, key=lambda r: (r.log_end_offset, -r.since_caught_up_ms, -r.broker_id))
