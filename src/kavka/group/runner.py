"""Asyncio glue for the coordinator: parked requests become futures, deadlines timers.

The coordinator is synchronous and knows nothing of the event loop.  Handlers
call :meth:`GroupRunner.run` with an operation; a :class:`Parked` reply becomes
a future that a later operation resolves through its ``replies``.  After every
operation the runner re-arms one ``loop.call_later`` for the coordinator's
earliest deadline; when it fires, ``tick()`` runs whatever is due.

All of this runs on the broker's event loop thread, so operations never
interleave.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from kavka.deadline_timer import DeadlineTimer
from kavka.group.coordinator import GroupCoordinator
from kavka.group.outcome import Outcome, Parked, error_reply
from kavka.internal_topics import OFFSETS_TOPIC
from kavka.protocol.errors import ErrorCode

log = logging.getLogger("kavka.group")



class GroupRunner:
    def __init__(self, coordinator: GroupCoordinator) -> None:
        self.coordinator = coordinator
        self.timer = DeadlineTimer(lambda: coordinator.next_deadline() if coordinator.active else None,
                                   coordinator.now, lambda: self._settle(coordinator.tick()), log, "group coordinator")
        # In a cluster: fn([(journal partition, end offset)]) -> awaitable ErrorCode, so that
        # answers wait until their records are replicated (None: a lone broker, no wait).
        self.replicated = None
        self._waiting: dict[int, asyncio.Future] = {}
        self._releases: set[asyncio.Task] = set()

    def run(self, operation: Callable[[GroupCoordinator], Outcome]) -> Any:
        """The reply of ``operation``, or a future of it when the request is parked."""
        return self._settle(operation(self.coordinator))

    def query(self, read: Callable[[GroupCoordinator], Any]) -> Any:
        """A read-only look at the coordinator (ListGroups, DescribeGroups, OffsetFetch)."""
        return read(self.coordinator)

    def marker_written(self, topic: str, index: int, producer_id: int, commit: bool) -> None:
        """A transaction marker is in ``topic``-``index`` (kavka.txn.local_markers,
        WriteTxnMarkers); in ``__consumer_offsets`` it ends the producer's pending offsets."""
        if topic == OFFSETS_TOPIC:
            self._settle(self.coordinator.transaction_ended(index, producer_id, commit))

    def load_partition(self, index: int) -> None:
        self.coordinator.load_partition(index)
        self.timer.rearm()

    def unload_partition(self, index: int) -> None:
        self._settle(self.coordinator.unload_partition(index))

    def close(self) -> None:
        self._settle(self.coordinator.close())
        self.timer.cancel()

    def _settle(self, out: Outcome) -> Any:
        reply = out.reply
        if isinstance(reply, Parked):
            future = asyncio.get_running_loop().create_future()
            self._waiting[reply.token] = future
            reply = future
        answers = [(self._waiting.pop(token, None), answer) for token, answer in out.replies]
        self.timer.rearm()
        if out.written and self.replicated is not None:
            return self._after_replication(out.written, reply, answers)
        for future, answer in answers:
            if future is not None and not future.done():
                future.set_result(answer)
        return reply

    def _after_replication(self, written, reply, answers) -> Any:
        """Hold every answer of the operation until its records are replicated; if they
        cannot be, answer with the error instead (the members retry elsewhere)."""
        loop = asyncio.get_running_loop()
        direct = None if isinstance(reply, asyncio.Future) else loop.create_future()

        async def release() -> None:
            error = await self.replicated(written)
            settled = []
            if direct is not None:
                settled.append((direct, reply))
            settled += answers
            for future, answer in settled:
                if future is not None and not future.done():
                    future.set_result(answer if error == ErrorCode.none else error_reply(answer, error))

        task = loop.create_task(release())
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)
        return reply if direct is None else direct
