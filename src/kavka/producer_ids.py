"""Producer ids for InitProducerId: unguessable, so no client can reach another's state.

A partition judges an idempotent batch only by its (producer id, epoch,
sequence); Kafka's partition, like ours, accepts a higher epoch at sequence 0
from whoever sends it, and that fences every batch of the older epoch (it is
how librdkafka's idempotent producer bumps its epoch on its own, KIP-360).
With sequential ids any client could name its neighbour's id and fence it, or
interleave sequences so that its next retry fails.  Kafka hands out ids from
blocks, sequentially, and relies on ACLs; kavka has no ACLs yet, so ids are
random instead:

* 63 random bits from :mod:`secrets` (non-negative: -1 means "no producer id"
  on the wire), independent on every broker of a cluster and across restarts,
  so nothing is persisted and no broker coordinates with another;
* two ids collide with probability about n²/2^64 for n ids ever issued (under
  one in 10^7 for a million); a collision matters only when both producers
  write one partition within ``producer.id.expiration.ms``;
* an id is only as secret as the topic: batch headers carry it, so a client
  that can fetch a topic learns the ids of its producers (in Kafka too).

:class:`ProducerIdAllocator` is the interface InitProducerId uses; the
transaction coordinator will allocate the ids of its transactional ids through
the same one.
"""

from __future__ import annotations

import secrets
from typing import Callable, Protocol

ID_BITS = 63


class ProducerIdAllocator(Protocol):
    def allocate(self) -> int:
        """A new producer id, ≥ 0, that no one has been given before (with overwhelming probability)."""
        ...


class RandomProducerIds:
    """Random 63-bit ids.  ``randbits`` is injectable so tests can make them predictable."""

    def __init__(self, randbits: Callable[[int], int] = secrets.randbits) -> None:
        self._randbits = randbits

    def allocate(self) -> int:
        return self._randbits(ID_BITS)
