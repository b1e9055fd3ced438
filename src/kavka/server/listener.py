"""The listening socket and the set of live connections.

Lifecycle: ``start`` binds (a busy port raises ``OSError`` for the caller to
report), connections beyond ``max_connections`` are closed on arrival, and
``stop`` stops accepting, lets each connection finish the request it is
handling (bounded by a timeout) and closes the rest.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from kavka.server.connection import Connection, Dispatcher

log = logging.getLogger("kavka.server")


class Listener:
    def __init__(self, dispatcher: Dispatcher, *, max_frame_size: int, max_connections: int) -> None:
        self._dispatcher = dispatcher
        self._max_frame_size = max_frame_size
        self._max_connections = max_connections
        self._connections: set[Connection] = set()
        self._server: asyncio.AbstractServer | None = None
        self.host = ""
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._make_connection, host, port, reuse_address=True, backlog=1024)
        sockname = self._server.sockets[0].getsockname()
        self.host, self.port = sockname[0], sockname[1]
        for sock in self._server.sockets:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _make_connection(self) -> Connection:
        return Connection(self, self._dispatcher, self._max_frame_size)

    def admit(self, conn: Connection) -> bool:
        if len(self._connections) >= self._max_connections:
            log.warning("refusing connection from %s: max.connections=%d reached",
                        conn.peer, self._max_connections)
            return False
        self._connections.add(conn)
        return True

    def forget(self, conn: Connection) -> None:
        self._connections.discard(conn)

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def stop(self, timeout: float = 5.0) -> None:
        if self._server is not None:
            self._server.close()
        conns = list(self._connections)
        if conns:
            await asyncio.gather(*(c.finish(timeout) for c in conns), return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
