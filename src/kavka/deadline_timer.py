"""One ``loop.call_later`` for a coordinator's earliest deadline (the group and the
transaction coordinators alike).

The coordinator keeps its deadlines as milliseconds on its own clock; after every operation
the runner calls :meth:`DeadlineTimer.rearm`, which keeps the armed timer when the earliest
deadline did not change.  When the timer fires it runs ``tick`` (the coordinator's due work,
settled by the runner); an exception there is logged and retried a second later, so a bug
can neither stop every timer nor spin the loop.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Callable

# Timers fire a little late rather than early, so tick() finds the deadline due.
SLACK_S = 0.001
RETRY_AFTER_FAILURE_S = 1.0


class DeadlineTimer:
    def __init__(self, next_deadline: Callable[[], int | None], now_ms: Callable[[], int],
                 tick: Callable[[], None], log: logging.Logger, what: str) -> None:
        self._next_deadline = next_deadline
        self._now_ms = now_ms
        self._tick = tick
        self._log = log
        self._what = what
        self._handle: asyncio.TimerHandle | None = None
        self.due: int | None = None

    @property
    def armed(self) -> bool:
        return self._handle is not None

    def rearm(self) -> None:
        due = self._next_deadline()
        if due == self.due and (due is None or self._handle is not None):
            return
        self.cancel()
        if due is not None:
            delay = max(0.0, (due - self._now_ms()) / 1000) + SLACK_S
            self._handle = asyncio.get_running_loop().call_later(delay, self.fire)
            self.due = due

    def fire(self) -> None:
        self._handle = None
        self.due = None
        try:
            self._tick()
        except Exception:
            self._log.exception("%s tick failed; retrying in %.0f s", self._what, RETRY_AFTER_FAILURE_S)
            self._handle = asyncio.get_running_loop().call_later(RETRY_AFTER_FAILURE_S, self.fire)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self.due = None
