"""One client connection: frames in, responses out, strictly in request order.

Reading uses ``asyncio.BufferedProtocol``: uvloop ``recv_into``s the buffer
``get_buffer`` returns.  Each connection starts with a small buffer
(``SMALL_BUFFER``) that holds size prefixes, small frames and pipelined runs of
them.  A frame too big for it gets a buffer of exactly its declared size, once
the broker-wide memory budget (``queued.max.request.bytes``, see
:mod:`kavka.server.budget`) grants that many bytes: the rest of the frame is
received straight into it (no growing, no copying), and it is freed when the
request has been handled.  Until the budget grants it, the connection is not
read (pause_reading), so a thousand clients each sending half of a 100 MB frame
cost the kernel's socket buffers, not the broker's heap.

Complete frames queue up and a single task per connection handles them one at a
time, like Kafka, which mutes a channel until its response is sent: responses
can never overtake each other, and a long-polling fetch holds back only its own
connection.

Writing: a response is a list of parts, ``bytes`` or ``FileSlice`` (a region of a
segment file).  When the transport has nothing buffered, parts go straight to the
socket (``os.sendfile`` for file regions, so log bytes never pass through Python);
whatever the socket does not take at once waits for the socket to drain.  When
the transport still holds bytes of an earlier answer, a large file region is
copied through it in ``COPY_CHUNK`` pieces, each written only once the transport
is below its high-water mark, so a client that does not read costs a bounded
amount of memory however large the answer.

Under TLS (an SSL or SASL_SSL listener) the socket carries encrypted bytes, so sendfile
cannot be used: every file region goes through the SSL transport, read with ``pread`` in
``COPY_CHUNK`` pieces, each written once the transport is below its high-water mark.

Back-pressure: reading pauses while too many frames wait, while the transport is
above its high-water mark (the client is not reading its answers), while a
client quota throttles the client (after the response, as Kafka 2.0+), and while a
frame waits for budget; the task waits for the transport to drain before
handling the next request.

Timeouts (checked by the listener's sweep, :meth:`Connection.check_timeouts`):
a connection with no request being handled and no bytes moved for
``connections.max.idle.ms`` is closed, as in Kafka; a frame that started
arriving longer than ``socket.request.receive.timeout.ms`` ago and is still
incomplete closes the connection (Kafka has no such limit; its idle timer does
not fire while bytes trickle in).

One exception to one-at-a-time: an API registered ``pipelined`` (Produce) whose
answer must wait (acks=all in a cluster, until the followers have the records)
has done its work when its handler returns, so the next requests are handled
meanwhile — up to
``MAX_PIPELINED`` produces wait together and one round of replica fetches
acknowledges them all.  Their answers still go out in request order: a later
response is written only after every earlier one.  Kafka mutes the connection
instead, which serialises a pipelining producer behind the replication round trip.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections import deque
from typing import TYPE_CHECKING, Protocol

from kavka.protocol.errors import FrameTooLarge, InvalidFrame, ProtocolError

if TYPE_CHECKING:
    from kavka.server.listener import Listener

log = logging.getLogger("kavka.server")

# Big enough for most produce batches of a lingering producer and every other
# request; frames over it get an exact-size buffer from the memory budget.
SMALL_BUFFER = 16 * 1024
MAX_QUEUED_FRAMES = 64
# Below this many file bytes a response is read and written in one go: a few
# syscalls cost more than copying a little data.
SENDFILE_MIN_BYTES = 64 * 1024
COPY_CHUNK = 256 * 1024
MAX_PIPELINED = 16
_API_KEY = struct.Struct(">h")
_SIZE = struct.Struct(">i")

# Why reading is paused (bits): any one keeps the socket unread.
_PAUSE_QUEUE, _PAUSE_WRITE, _PAUSE_BUDGET, _PAUSE_THROTTLE = 1, 2, 4, 8


class FilePart(Protocol):
    fd: int
    position: int
    size: int

    def read(self) -> bytes: ...


class Dispatcher(Protocol):
    def handle(self, frame: bytes, conn: "Connection"): ...

    def pipelined(self, api_key: int) -> bool:
        """Whether a pending answer of this API may wait while later requests are handled."""


class CloseConnection(Exception):
    """Raised by a handler to close this connection after logging ``reason``."""


class Connection(asyncio.BufferedProtocol):
    def __init__(self, listener: "Listener", dispatcher: Dispatcher, max_frame_size: int) -> None:
        self._listener = listener
        self._dispatcher = dispatcher
        self._max_frame = max_frame_size
        self._budget = listener.budget
        self._loop = asyncio.get_event_loop()
        # Small buffer: received bytes are small[_start:_end].
        self._small = bytearray(SMALL_BUFFER)
        self._view = memoryview(self._small)
        self._start = 0
        self._end = 0
        # A big frame being received into its own buffer, and what the budget granted it.
        self._body: bytearray | None = None
        self._body_view: memoryview | None = None
        self._body_pos = 0
        self._wanted = 0                 # size of a big frame waiting for budget
        self._held = 0                   # budget bytes this connection holds
        self._frames: deque[tuple[bytes | bytearray, int]] = deque()  # (frame, budget bytes)
        self._frame_ready: asyncio.Future | None = None
        self._drained: asyncio.Future | None = None
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task | None = None
        self._paused = 0
        self._closing = False
        self._sock_fd = -1
        self._watch_fd = -1
        self._last_active = self._loop.time()
        self._frame_started: float | None = None   # first byte of an incomplete frame
        self._handling = 0                          # requests being handled (not waiting on the peer)
        self._muted_until = 0.0                     # a client quota's throttle (loop time)
        self._unmuted: asyncio.Future | None = None  # resolved when the throttle ends or we close
        self.peer = "?"
        self.peer_ip = "?"
        # This connection's listener, TLS principal and SASL state (kavka.security.listeners).
        self.security = listener.security.connection()

    # -- asyncio protocol callbacks -------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.peer_ip = peer[0] if peer else "?"
        sock = transport.get_extra_info("socket")
        tls = transport.get_extra_info("ssl_object") is not None
        self._sock_fd = sock.fileno() if sock is not None and not tls else -1
        if not self._listener.admit(self):
            self._closing = True
            transport.abort()
            return
        self._task = self._loop.create_task(self._serve())

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._body_view is not None:
            return self._body_view[self._body_pos:]
        return self._view[self._end:]

    def buffer_updated(self, nbytes: int) -> None:
        self._last_active = self._loop.time()
        if self._body is not None:
            self._body_pos += nbytes
            if self._body_pos < len(self._body):
                return
            frame, held = self._body, self._wanted
            self._body = self._body_view = None
            self._body_pos = self._wanted = 0
            self._frame_started = None
            self._queue(frame, held)
        else:
            self._end += nbytes
            try:
                self._split()
            except ProtocolError as exc:
                self.close(f"bad frame: {exc}")
                return
        if self._frames:
            self._wake(self._frame_ready)
            if len(self._frames) >= MAX_QUEUED_FRAMES:
                self._pause(_PAUSE_QUEUE)

    def _split(self) -> None:
        """Queue every whole frame in the small buffer; start a big one if one begins."""
        buf, view = self._small, self._view
        pos, end = self._start, self._end
        found = False
        while end - pos >= 4:
            (size,) = _SIZE.unpack_from(buf, pos)
            if size < 0:
                raise InvalidFrame(f"negative frame size {size}")
            if size > self._max_frame:
                raise FrameTooLarge(size, self._max_frame)
            if end - pos - 4 >= size:
                self._queue(bytes(view[pos + 4:pos + 4 + size]), 0)
                pos += 4 + size
                found = True
                continue
            if size + 4 > len(buf):
                self._start = pos
                self._begin_big(size)
                return
            break
        if pos == end:
            self._start = self._end = 0
            self._frame_started = None
            return
        if pos:  # keep the partial frame at the front, so the buffer always has room for it
            view[:end - pos] = view[pos:end]
        self._start, self._end = 0, end - pos
        if found or self._frame_started is None:
            self._frame_started = self._last_active

    def _begin_big(self, size: int) -> None:
        self._wanted = size
        self._frame_started = None
        if self._budget.try_acquire(size, self):
            self._receive_big()
        else:
            self._pause(_PAUSE_BUDGET)

    def budget_granted(self, size: int) -> None:
        """The memory budget gave this connection the frame it waited for."""
        if self._closing:
            self._budget.release(size)
            return
        self._receive_big()
        self._resume(_PAUSE_BUDGET)

    def _receive_big(self) -> None:
        size = self._wanted
        self._held += size
        have = self._end - self._start - 4
        body = bytearray(size)
        body[:have] = self._view[self._start + 4:self._end]
        self._start = self._end = 0
        self._body, self._body_view, self._body_pos = body, memoryview(body), have
        self._frame_started = self._loop.time()

    def _queue(self, frame, held: int) -> None:
        self._frames.append((frame, held))

    def _release(self, size: int) -> None:
        size = min(size, self._held)
        if size > 0:
            self._held -= size
            self._budget.release(size)

    def _pause(self, reason: int) -> None:
        if not self._paused and self._transport is not None and not self._closing:
            self._transport.pause_reading()
        self._paused |= reason

    def _resume(self, reason: int) -> None:
        if not self._paused & reason:
            return
        self._paused &= ~reason
        if not self._paused and self._transport is not None and not self._closing:
            self._transport.resume_reading()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._listener.forget(self)
        # Nobody is left to answer: a parked fetch or a drain wait ends here.  The
        # task only ever awaits between requests, so no request is cut in half.
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if self._watch_fd >= 0:
            os.close(self._watch_fd)
            self._watch_fd = -1
        # Give back the memory: the frame half received, frames never handled.
        self._budget.cancel(self)
        self._body = self._body_view = None
        self._frames.clear()
        self._release(self._held)
        self._wake(self._drained)

    def pause_writing(self) -> None:
        self._drained = self._loop.create_future()
        self._pause(_PAUSE_WRITE)

    def resume_writing(self) -> None:
        self._last_active = self._loop.time()
        self._wake(self._drained)
        self._drained = None
        self._resume(_PAUSE_WRITE)

    def check_timeouts(self, now: float, idle_s: float | None, receive_s: float | None) -> None:
        """Close this connection if idle too long or a frame is taking too long to arrive."""
        if self._closing:
            return
        started = self._frame_started
        if receive_s is not None and started is not None and now - started > receive_s:
            log.info("closing connection from %s: a request frame still incomplete after %.0f ms "
                     "(socket.request.receive.timeout.ms)", self.peer, receive_s * 1000)
            self.close()
            return
        if (idle_s is not None and now - self._last_active > idle_s and not self._handling
                and not self._frames and started is None and self._body is None and not self._wanted):
            log.info("closing connection from %s: idle for %.0f ms (connections.max.idle.ms)",
                     self.peer, idle_s * 1000)
            self.close()

    # -- request loop -----------------------------------------------------------------------

    async def _serve(self) -> None:
        waiting: deque[asyncio.Task] = deque()   # pipelined produces, oldest first
        try:
            while not self._closing:
                while waiting and waiting[0].done():
                    await self._respond(waiting.popleft().result())
                if not self._frames:
                    self._frame_ready = self._loop.create_future()
                    if waiting:   # whichever comes first: a new request or the oldest answer
                        await asyncio.wait((self._frame_ready, waiting[0]), return_when=asyncio.FIRST_COMPLETED)
                    else:
                        await self._frame_ready
                    self._frame_ready = None
                    continue
                frame, held = self._frames.popleft()
                if self._paused & _PAUSE_QUEUE and len(self._frames) < MAX_QUEUED_FRAMES // 2:
                    self._resume(_PAUSE_QUEUE)
                self._handling += 1
                try:
                    response = self._dispatcher.handle(frame, self)
                    pending = asyncio.iscoroutine(response)
                    pipelined = pending and self._dispatcher.pipelined(_API_KEY.unpack_from(frame, 0)[0])
                    del frame  # a big frame's buffer goes as soon as the handler is done with it
                    if pending:
                        if pipelined and len(waiting) < MAX_PIPELINED:
                            waiting.append(self._loop.create_task(response))
                            continue
                        while waiting:   # answers stay in request order
                            await self._respond(await waiting.popleft())
                        response = await response
                finally:
                    self._handling -= 1
                    self._release(held)
                while waiting:
                    await self._respond(await waiting.popleft())
                await self._respond(response)
        except CloseConnection as exc:
            self.close(str(exc))
        except ProtocolError as exc:
            self.close(f"protocol error: {exc}")
        except ConnectionError as exc:
            self.close(f"socket error: {exc}")
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("connection %s: unexpected error; closing it", self.peer)
            self.close("internal error")
        finally:
            for task in waiting:
                task.cancel()

    async def _respond(self, response) -> None:
        if response is not None and not self._closing:
            pending = self._send(response)
            if pending is not None:
                await pending
            self._last_active = self._loop.time()
            if self._drained is not None:
                await self._drained
        if self.security.close_reason is not None:
            raise CloseConnection(self.security.close_reason)
        await self._sit_out_throttle()

    def throttle(self, ms: int) -> None:
        """A client quota throttles this client: once the response being built is sent, read
        and handle nothing more from it for ``ms`` (Kafka mutes the channel, KIP-219)."""
        self._muted_until = max(self._muted_until, self._loop.time() + ms / 1000)

    async def _sit_out_throttle(self) -> None:
        delay = self._muted_until - self._loop.time()
        if delay <= 0:
            return
        self._pause(_PAUSE_THROTTLE)
        self._unmuted = self._loop.create_future()
        timer = self._loop.call_later(delay, self._wake, self._unmuted)
        try:
            await self._unmuted
        finally:
            timer.cancel()
            self._unmuted = None
            self._muted_until = 0.0
            self._resume(_PAUSE_THROTTLE)

    def _send(self, parts: list):
        """Write one response; returns a coroutine when it must wait on the socket."""
        file_bytes = sum(p.size for p in parts if not isinstance(p, (bytes, bytearray, memoryview)))
        if file_bytes == 0:
            self._transport.writelines(parts)
        elif file_bytes < SENDFILE_MIN_BYTES:
            self._transport.writelines([_materialise(p) for p in parts])
        elif self._sock_fd < 0 or self._transport.get_write_buffer_size() > 0:
            return self._send_copied(parts)
        else:
            return self._send_direct(parts)
        return None

    async def _send_copied(self, parts: list) -> None:
        """Write parts through the transport, file regions ``COPY_CHUNK`` bytes at a time.

        Each chunk waits until the transport is below its high-water mark, so at
        most one chunk more than that is ever buffered for a slow reader.
        """
        for part in parts:
            if isinstance(part, (bytes, bytearray, memoryview)):
                self._transport.write(part)
            else:
                sent = 0
                while sent < part.size:
                    if self._drained is not None:
                        await self._drained
                    if self._closing:
                        return
                    chunk = os.pread(part.fd, min(COPY_CHUNK, part.size - sent), part.position + sent)
                    if not chunk:
                        raise CloseConnection(f"log file ended {part.size - sent} bytes early while sending")
                    self._transport.write(chunk)
                    sent += len(chunk)
                    self._last_active = self._loop.time()

    async def _send_direct(self, parts: list) -> None:
        """Write parts to the socket ourselves: sendfile for file regions.

        The transport has nothing buffered (checked by the caller) and nothing
        else writes to this connection until this returns, so bytes stay in order.
        When the socket is full we wait for it to drain rather than copy.
        """
        for part in parts:
            if isinstance(part, (bytes, bytearray, memoryview)):
                view = memoryview(part)
                while view:
                    view = view[_write_some(self._sock_fd, view):]
                    if view:
                        await self._writable()
            else:
                sent = 0
                while sent < part.size:
                    n = _sendfile_some(self._sock_fd, part, sent)
                    if n is None:
                        await self._writable()
                    elif n == 0:
                        raise CloseConnection(f"log file ended {part.size - sent} bytes early while sending")
                    else:
                        sent += n
                        self._last_active = self._loop.time()

    def _writable(self) -> asyncio.Future:
        """A future resolved when the socket can take more bytes.

        uvloop refuses a second watcher on a transport's own fd, so we watch a
        duplicate of it (same socket, another descriptor number).
        """
        loop = asyncio.get_running_loop()
        if self._watch_fd < 0:
            self._watch_fd = os.dup(self._sock_fd)
        future = loop.create_future()
        fd = self._watch_fd

        def ready() -> None:
            loop.remove_writer(fd)
            if not future.done():
                future.set_result(None)

        loop.add_writer(fd, ready)
        future.add_done_callback(lambda _f: loop.remove_writer(fd))
        return future

    # -- lifecycle --------------------------------------------------------------------------

    def close(self, reason: str | None = None) -> None:
        if reason:
            log.warning("closing connection from %s: %s", self.peer, reason)
        self._closing = True
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        self._wake(self._frame_ready)
        self._wake(self._unmuted)

    async def finish(self, timeout: float) -> None:
        """Shutdown: let the request in progress finish, then close."""
        for _frame, held in self._frames:
            self._release(held)
        self._frames.clear()
        self._closing = True
        self._wake(self._frame_ready)
        self._wake(self._unmuted)   # a throttled client waits no longer: nothing more is read
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                self._task.cancel()
        if self._transport is not None:
            self._transport.close()

    @staticmethod
    def _wake(future: asyncio.Future | None) -> None:
        if future is not None and not future.done():
            future.set_result(None)


def _materialise(part) -> bytes:
    return part if isinstance(part, (bytes, bytearray, memoryview)) else part.read()


def _write_some(fd: int, data) -> int:
    try:
        return os.write(fd, data)
    except (BlockingIOError, InterruptedError):
        return 0


def _sendfile_some(fd: int, part: FilePart, offset: int) -> int | None:
    """Bytes sent from ``part`` starting ``offset`` bytes in; None if the socket is full."""
    try:
        return os.sendfile(fd, part.fd, part.position + offset, part.size - offset)
    except (BlockingIOError, InterruptedError):
        return None
