"""The listening socket, the set of live connections, and the limits they share.

Lifecycle: ``start`` binds (a busy port raises ``OSError`` for the caller to
report), connections beyond ``max.connections`` in all or
``max.connections.per.ip`` (``max.connections.per.ip.overrides``) from one
address, or faster than the address's ``connection_creation_rate`` client quota
(an ``ip`` entity's, else the default ip entity's, measured as Kafka's Rate over
``quota.window.num`` samples), are closed on arrival (Kafka closes a throttled
one after its throttle time instead), and ``stop`` stops accepting, lets each connection finish the request it
is handling (bounded by a timeout) and closes the rest.

On an SSL or SASL_SSL listener (``security``, kavka.security.listeners) each accepted socket
is accepted by the listener's own accept loop and runs the TLS handshake
(``loop.connect_accepted_socket``, which reports a failed handshake to its caller) within ``kavka.ssl.handshake.timeout.ms``; a
handshake that fails (plaintext bytes to the TLS port, an untrusted client certificate) or
times out closes the socket with one logged line, and only a finished one becomes a
``Connection``, with the client certificate's principal.

A sweep task looks at every connection a few times per limit period and closes
those idle for ``connections.max.idle.ms`` and those whose frame started
arriving more than ``socket.request.receive.timeout.ms`` ago and is still not
complete (a client trickling bytes would otherwise hold its buffer and its share
of the memory budget for ever).  One pass over a set is cheap next to per-connection
timers re-armed on every read.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Callable

from kavka.config import ConfigError
from kavka.security.listeners import PLAINTEXT, ListenerSecurity
from kavka.server.budget import MemoryBudget
from kavka.server.connection import Connection, Dispatcher
from kavka.windowed_rate import WindowedRate

log = logging.getLogger("kavka.server")

INT_MAX = 2**31 - 1


@dataclass(frozen=True)
class ServerLimits:
    max_frame_size: int = 104857600          # socket.request.max.bytes
    max_connections: int = INT_MAX           # max.connections
    max_connections_per_ip: int = INT_MAX    # max.connections.per.ip
    per_ip_overrides: dict = field(default_factory=dict)  # max.connections.per.ip.overrides
    idle_ms: int = 600000                    # connections.max.idle.ms (<= 0: never)
    receive_timeout_ms: int = 60000          # socket.request.receive.timeout.ms (<= 0: never)
    queued_max_request_bytes: int = 268435456  # queued.max.request.bytes (<= 0: unbounded)
    quota_window_num: int = 11               # quota.window.num (connection_creation_rate's samples)
    quota_window_size_s: int = 1             # quota.window.size.seconds


def parse_per_ip_overrides(entries) -> dict[str, int]:
    """``max.connections.per.ip.overrides``: "host:count" items (Kafka's format)."""
    result: dict[str, int] = {}
    for item in entries or ():
        host, sep, count = str(item).rpartition(":")
        if not sep or not host or not count.strip().isdigit():
            raise ConfigError(f"max.connections.per.ip.overrides: {item!r} is not HOST:COUNT")
        result[host.strip()] = int(count)
    return result


def server_limits(config) -> ServerLimits:
    """The listener's limits from broker settings (kavka.config.BrokerConfig)."""
    return ServerLimits(
        max_frame_size=config.get("socket.request.max.bytes"),
        max_connections=config.get("max.connections"),
        max_connections_per_ip=config.get("max.connections.per.ip"),
        per_ip_overrides=parse_per_ip_overrides(config.get("max.connections.per.ip.overrides")),
        idle_ms=config.get("connections.max.idle.ms"),
        receive_timeout_ms=config.get("socket.request.receive.timeout.ms"),
        queued_max_request_bytes=config.get("queued.max.request.bytes"),
        quota_window_num=config.get("quota.window.num"),
        quota_window_size_s=config.get("quota.window.size.seconds"))


class Listener:
    def __init__(self, dispatcher: Dispatcher, *, max_frame_size: int | None = None,
                 max_connections: int | None = None, limits: ServerLimits | None = None,
                 security: ListenerSecurity = PLAINTEXT,
                 connection_quota: Callable[[str], float | None] = lambda ip: None) -> None:
        limits = limits or ServerLimits()
        if max_frame_size is not None or max_connections is not None:
            limits = ServerLimits(**{**limits.__dict__,
                                     **({"max_frame_size": max_frame_size} if max_frame_size is not None else {}),
                                     **({"max_connections": max_connections} if max_connections is not None else {})})
        self.limits = limits
        self.security = security
        self._dispatcher = dispatcher
        self.budget = MemoryBudget(limits.queued_max_request_bytes)
        self._connections: set[Connection] = set()
        self._per_ip: dict[str, int] = {}
        self._connection_quota = connection_quota   # ip -> its connection_creation_rate, or None
        self._creation_rates: dict[str, WindowedRate] = {}
        self._server: asyncio.AbstractServer | None = None
        self._tls_socket: socket.socket | None = None   # a TLS listener accepts itself
        self._acceptor: asyncio.Task | None = None
        self._handshakes: set[asyncio.Task] = set()
        self._sweeper: asyncio.Task | None = None
        self.host = ""
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        if self.security.ssl_context is not None:
            self._tls_socket = socket.create_server((host, port), reuse_port=False, backlog=1024)
            self._tls_socket.setblocking(False)
            self._acceptor = loop.create_task(self._accept_tls())
            sockname = self._tls_socket.getsockname()
        else:
            self._server = await loop.create_server(
                self._make_connection, host, port, reuse_address=True, backlog=1024)
            sockname = self._server.sockets[0].getsockname()
            for sock in self._server.sockets:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.host, self.port = sockname[0], sockname[1]
        periods = [p for p in (self.limits.idle_ms, self.limits.receive_timeout_ms) if p > 0]
        if periods:
            self._sweeper = loop.create_task(self._sweep(min(periods) / 1000))

    def _make_connection(self) -> Connection:
        return Connection(self, self._dispatcher, self.limits.max_frame_size)

    async def _accept_tls(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            sock, address = await loop.sock_accept(self._tls_socket)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = loop.create_task(self._handshake(sock, f"{address[0]}:{address[1]}"))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, sock: socket.socket, where: str) -> None:
        """TLS on an accepted socket; the Connection starts once it is done (with the client
        certificate's principal), and a handshake that fails or times out is logged and closed."""
        sec = self.security
        loop = asyncio.get_running_loop()
        conn = self._make_connection()
        try:
            transport, _ = await loop.connect_accepted_socket(
                lambda: conn, sock, ssl=sec.ssl_context, ssl_handshake_timeout=sec.handshake_timeout_s)
        except (OSError, asyncio.TimeoutError) as exc:
            reason = (f"TLS handshake not done within {sec.handshake_timeout_s * 1000:.0f} ms"
                      if isinstance(exc, (asyncio.TimeoutError, ConnectionAbortedError)) else
                      f"TLS handshake failed: {exc or type(exc).__name__}")
            log.warning("closing connection from %s to listener %s: %s", where, sec.name, reason)
            sock.close()
            return
        try:
            principal = conn.security.tls_established(transport.get_extra_info("ssl_object"))
        except ValueError as exc:
            conn.close(str(exc))
            return
        if principal is not None:
            log.info("%s on listener %s: TLS client certificate authenticated as %s", where, sec.name, principal)

    def admit(self, conn: Connection) -> bool:
        if len(self._connections) >= self.limits.max_connections:
            log.warning("refusing connection from %s: max.connections=%d reached",
                        conn.peer, self.limits.max_connections)
            return False
        ip = conn.peer_ip
        cap = self.limits.per_ip_overrides.get(ip, self.limits.max_connections_per_ip)
        if self._per_ip.get(ip, 0) >= cap:
            log.warning("refusing connection from %s: max.connections.per.ip=%d reached for %s",
                        conn.peer, cap, ip)
            return False
        if not self._creation_allowed(ip):
            log.warning("refusing connection from %s: connection_creation_rate quota of %s exceeded", conn.peer, ip)
            return False
        self._connections.add(conn)
        self._per_ip[ip] = self._per_ip.get(ip, 0) + 1
        return True

    def _creation_allowed(self, ip: str) -> bool:
        """Count a new connection from ``ip`` against its connection_creation_rate (an ip entity's
        quota, else the default ip's); one over the quota is not counted, so a client retrying
        faster than its quota still gets that many connections a second."""
        quota = self._connection_quota(ip)
        if quota is None:
            self._creation_rates.pop(ip, None)
            return True
        rate = self._creation_rates.get(ip)
        if rate is None:
            rate = self._creation_rates[ip] = WindowedRate(self.limits.quota_window_num,
                                                           self.limits.quota_window_size_s, time.monotonic)
        rate.record(1)
        if rate.rate() <= quota:
            return True
        rate.record(-1)
        return False

    def forget(self, conn: Connection) -> None:
        if conn in self._connections:
            self._connections.discard(conn)
            ip = conn.peer_ip
            left = self._per_ip.get(ip, 1) - 1
            if left > 0:
                self._per_ip[ip] = left
            else:
                self._per_ip.pop(ip, None)

    async def _sweep(self, period_s: float) -> None:
        # A connection is closed between period and period * 1.25 after it went quiet.
        interval = min(max(period_s / 4, 0.05), 10.0)
        idle_s = self.limits.idle_ms / 1000 if self.limits.idle_ms > 0 else None
        receive_s = self.limits.receive_timeout_ms / 1000 if self.limits.receive_timeout_ms > 0 else None
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            now = loop.time()
            for conn in list(self._connections):
                conn.check_timeouts(now, idle_s, receive_s)

    async def stop(self, timeout: float = 5.0) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._server is not None:
            self._server.close()
        if self._acceptor is not None:
            self._acceptor.cancel()
            self._acceptor = None
            for task in list(self._handshakes):
                task.cancel()
            self._tls_socket.close()
        conns = list(self._connections)
        if conns:
            await asyncio.gather(*(c.finish(timeout) for c in conns), return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
