"""One client connection: frames in, responses out, strictly in request order.

Reading uses ``asyncio.BufferedProtocol`` (``recv_into`` a preallocated buffer,
the fastest uvloop read path measured here).  Complete frames queue up and a
single task per connection handles them one at a time, like Kafka, which mutes a
channel until its response is sent: responses can never overtake each other, and
a long-polling fetch holds back only its own connection.

Writing: a response is a list of parts, ``bytes`` or ``FileSlice`` (a region of a
segment file).  When the transport has nothing buffered, parts go straight to the
socket (``os.sendfile`` for file regions, so log bytes never pass through Python);
whatever the socket does not take at once is handed to the transport, which keeps
order because nothing else writes to this socket meanwhile.

Back-pressure: reading pauses while too many frames wait, and the task waits for
the transport to drain before handling the next request.

One exception to one-at-a-time: a Produce whose answer must wait (acks=all in a
cluster, until the followers have the records) has already appended when its
handler returns, so the next requests are handled meanwhile — up to
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

from kavka.protocol.errors import ProtocolError
from kavka.protocol.framing import FrameDecoder

if TYPE_CHECKING:
    from kavka.server.listener import Listener

log = logging.getLogger("kavka.server")

READ_BUFFER = 256 * 1024
MAX_QUEUED_FRAMES = 64
# Below this many file bytes a response is read and written in one go: a few
# syscalls cost more than copying a little data.
SENDFILE_MIN_BYTES = 64 * 1024
MAX_PIPELINED = 16
PRODUCE = 0
_API_KEY = struct.Struct(">h")


class FilePart(Protocol):
    fd: int
    position: int
    size: int

    def read(self) -> bytes: ...


class Dispatcher(Protocol):
    def handle(self, frame: bytes, conn: "Connection"): ...


class CloseConnection(Exception):
    """Raised by a handler to close this connection after logging ``reason``."""


class Connection(asyncio.BufferedProtocol):
    def __init__(self, listener: "Listener", dispatcher: Dispatcher, max_frame_size: int) -> None:
        self._listener = listener
        self._dispatcher = dispatcher
        self._decoder = FrameDecoder(max_frame_size)
        self._buffer = memoryview(bytearray(READ_BUFFER))
        self._frames: deque[bytes] = deque()
        self._frame_ready: asyncio.Future | None = None
        self._drained: asyncio.Future | None = None
        self._transport: asyncio.Transport | None = None
        self._task: asyncio.Task | None = None
        self._reading_paused = False
        self._closing = False
        self._sock_fd = -1
        self._watch_fd = -1
        self.peer = "?"

    # -- asyncio protocol callbacks -------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        sock = transport.get_extra_info("socket")
        self._sock_fd = sock.fileno() if sock is not None else -1
        if not self._listener.admit(self):
            self._closing = True
            transport.abort()
            return
        self._task = asyncio.get_running_loop().create_task(self._serve())

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        try:
            self._decoder.feed(self._buffer[:nbytes])
            while (frame := self._decoder.next_frame()) is not None:
                self._frames.append(frame)
        except ProtocolError as exc:
            self.close(f"bad frame: {exc}")
            return
        if self._frames:
            self._wake(self._frame_ready)
            if len(self._frames) >= MAX_QUEUED_FRAMES and not self._reading_paused:
                self._reading_paused = True
                self._transport.pause_reading()

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

    def pause_writing(self) -> None:
        self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake(self._drained)
        self._drained = None

    # -- request loop -----------------------------------------------------------------------

    async def _serve(self) -> None:
        waiting: deque[asyncio.Task] = deque()   # pipelined produces, oldest first
        try:
            while not self._closing:
                while waiting and waiting[0].done():
                    await self._respond(waiting.popleft().result())
                if not self._frames:
                    self._frame_ready = asyncio.get_running_loop().create_future()
                    if waiting:   # whichever comes first: a new request or the oldest answer
                        await asyncio.wait((self._frame_ready, waiting[0]), return_when=asyncio.FIRST_COMPLETED)
                    else:
                        await self._frame_ready
                    self._frame_ready = None
                    continue
                frame = self._frames.popleft()
                if self._reading_paused and len(self._frames) < MAX_QUEUED_FRAMES // 2:
                    self._reading_paused = False
                    self._transport.resume_reading()
                response = self._dispatcher.handle(frame, self)
                if asyncio.iscoroutine(response):
                    if _API_KEY.unpack_from(frame, 0)[0] == PRODUCE and len(waiting) < MAX_PIPELINED:
                        waiting.append(asyncio.get_running_loop().create_task(response))
                        continue
                    while waiting:   # answers stay in request order
                        await self._respond(await waiting.popleft())
                    response = await response
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
            if self._drained is not None:
                await self._drained

    def _send(self, parts: list):
        """Write one response; returns a coroutine when it must wait on the socket."""
        file_bytes = sum(p.size for p in parts if not isinstance(p, (bytes, bytearray, memoryview)))
        if file_bytes == 0:
            self._transport.writelines(parts)
        elif (file_bytes < SENDFILE_MIN_BYTES or self._sock_fd < 0
              or self._transport.get_write_buffer_size() > 0):
            self._transport.writelines([_materialise(p) for p in parts])
        else:
            return self._send_direct(parts)
        return None

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

    async def finish(self, timeout: float) -> None:
        """Shutdown: let the request in progress finish, then close."""
        self._frames.clear()
        self._closing = True
        self._wake(self._frame_ready)
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
