"""The broker-wide memory budget for request frames being received or handled.

``queued.max.request.bytes`` bounds the bytes of large request frames held at
once, across all connections.  A connection that starts reading a frame larger
than its small read buffer asks for the frame's size here first; if the budget
cannot cover it the connection stops reading (``pause_reading``: the bytes stay
in the kernel and the client's socket buffers) and is queued, first come first
served.  When a frame's request has been handled its bytes are returned and the
oldest waiter that now fits is granted and resumes reading.  Nothing is dropped.

A frame larger than the whole budget is still granted when nothing else is held
(like Kafka's non-strict memory pool), so ``socket.request.max.bytes`` stays
the only size limit; the bytes held never exceed ``max(limit, largest frame)``.

Frames that fit the connection's small read buffer are not counted: each
connection queues at most ``MAX_QUEUED_FRAMES`` of them, so they cost at most a
fixed amount per connection, and counting them would cost the hot path.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol


class Waiter(Protocol):
    def budget_granted(self, size: int) -> None: ...


class MemoryBudget:
    __slots__ = ("limit", "in_use", "_waiters")

    def __init__(self, limit: int) -> None:
        self.limit = limit  # <= 0: unbounded (Kafka's -1)
        self.in_use = 0
        self._waiters: deque[tuple[Waiter, int]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def _fits(self, size: int) -> bool:
        return self.limit <= 0 or self.in_use == 0 or self.in_use + size <= self.limit

    def try_acquire(self, size: int, waiter: Waiter) -> bool:
        """Take ``size`` bytes now (True), or queue ``waiter`` to be granted them later."""
        if not self._waiters and self._fits(size):
            self.in_use += size
            return True
        self._waiters.append((waiter, size))
        return False

    def release(self, size: int) -> None:
        if size <= 0:
            return
        self.in_use = max(0, self.in_use - size)
        self._grant()

    def cancel(self, waiter: Waiter) -> None:
        """Forget a waiter whose connection closed."""
        if any(w is waiter for w, _ in self._waiters):
            self._waiters = deque((w, s) for w, s in self._waiters if w is not waiter)
            self._grant()

    def _grant(self) -> None:
        while self._waiters and self._fits(self._waiters[0][1]):
            waiter, size = self._waiters.popleft()
            self.in_use += size
            waiter.budget_granted(size)
