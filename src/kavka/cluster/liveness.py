"""When must a broker assume its etcd lease is gone? A pure tracker (no I/O, injected time).

etcd deletes a lease ``TTL`` seconds after the last keepalive it *received*. The broker only
knows when it *sent* each keepalive, and sending happens before receiving, so

    lease deadline seen by the broker = (send time of the last acknowledged keepalive) + TTL
                                      <= the moment etcd can expire the lease.

Declaring the session lost at that deadline therefore happens no later than etcd deletes the
broker's keys, and so before the controller can react to the deletion by moving leadership
away (assuming the two monotonic clocks run at about the same rate). That ordering is what
lets a leader cut off from etcd stop acknowledging writes before a new leader exists.

A keepalive answered with TTL <= 0 means etcd no longer knows the lease: lost at once.
"""

from __future__ import annotations


class LeaseLiveness:
    """Tracks the conservative deadline of one lease."""

    def __init__(self, ttl: float, granted_at: float) -> None:
        """``granted_at``: monotonic time at which the grant request was sent."""
        self.ttl = ttl
        self.deadline = granted_at + ttl
        self.revoked = False

    def acknowledged(self, sent_at: float, remaining_ttl: float) -> None:
        """A keepalive sent at ``sent_at`` was answered with ``remaining_ttl`` seconds."""
        if remaining_ttl <= 0:
            self.revoked = True
        elif not self.revoked:
            self.deadline = max(self.deadline, sent_at + remaining_ttl)

    def is_lost(self, now: float) -> bool:
        return self.revoked or now >= self.deadline

    def time_left(self, now: float) -> float:
        return 0.0 if self.revoked else max(0.0, self.deadline - now)
