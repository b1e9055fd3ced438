"""A kavka broker as a real OS process, for fault-injection tests (kill -9, SIGTERM, restart).

``BrokerProcess`` runs ``python -m kavka serve`` on a fixed loopback port with a
given data directory, so it can be killed and started again at the same address
with the same data.  Each start writes its stderr to its own log file
(``log_text()`` reads the latest one), so a test can check what *that* start
logged (recovery or not).  Every wait is bounded.

Also: small confluent-kafka helpers shared by the fault tests (watermarks,
read a whole partition from offset 0 with ``assign``).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from kavka.testing import TINY_SEGMENTS

READY_LINE = "kavka listening on"
RECOVERED_PHRASE = "recovered after an unclean shutdown"
# The brokers' --log-level; KAVKA_FAULTS_LOG_LEVEL=DEBUG to follow a failing fault test.
LOG_LEVEL = os.environ.get("KAVKA_FAULTS_LOG_LEVEL", "INFO")


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A free port *below* the kernel's ephemeral range.

    A broker that is restarted on the same port must not find it taken by a
    client's outgoing connection meanwhile: clients reconnecting to a dead
    127.0.0.1:P can even be handed P itself as their local port (a TCP
    self-connect), which would then block the restart.  Ports outside the
    ephemeral range are never handed out that way.

    A port is handed out once per test process: ports are only probed, not held, so two
    brokers (or a broker and a proxy) of one cluster could otherwise be given the same one.
    """
    low, _high = _ephemeral_range()
    if low < 4096:  # an unusual ephemeral range: let the kernel choose
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            return sock.getsockname()[1]
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12000), low)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
    raise BrokerError("no free port below the ephemeral range")


class BrokerError(AssertionError):
    """The broker process did not start or stop as expected."""


def die_with_parent() -> None:  # runs in the child before exec
    """The kernel SIGKILLs the broker if the test process dies first (PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


class BrokerProcess:
    """``kavka serve`` as a child process: start, restart on the same port and data dir,
    SIGKILL, SIGTERM, SIGSTOP/SIGCONT.  Subclasses change ``command()`` (cluster mode)."""

    Error: type[AssertionError] = None  # set below: BrokerError

    def __init__(self, data_dir: str | Path, *, port: int | None = None, host: str = "127.0.0.1",
                 overrides: dict | None = None, log_dir: str | Path | None = None,
                 advertised: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port or free_port(host)
        self.advertised = advertised  # HOST:PORT told to clients (--advertised-listener)
        # TINY_SEGMENTS: fault tests roll segments of a few KB (the floors are for clients).
        self.overrides = {**TINY_SEGMENTS, **{k: str(v) for k, v in (overrides or {}).items()}}
        self.log_dir = Path(log_dir) if log_dir else self.data_dir.parent
        self.logs: list[Path] = []  # one stderr file per start, oldest first
        self.proc: subprocess.Popen | None = None
        self.paused = False
        self._stderr = None
        self.preexec = None  # also run in the child before exec (e.g. resource.setrlimit)

    # -- addresses and state ---------------------------------------------------------------

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self, start: int = -1) -> str:
        """stderr of one start (default: the latest)."""
        return self.logs[start].read_text(errors="replace") if self.logs else ""

    def name(self) -> str:
        return f"broker-{self.port}"

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "kavka", "serve", "--data-dir", str(self.data_dir),
                "--listen", f"{self.host}:{self.port}", "--log-level", LOG_LEVEL]
        if self.advertised:
            args += ["--advertised-listener", self.advertised]
        for name, value in self.overrides.items():
            args += ["--override", f"{name}={value}"]
        return args

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 20.0, wait: bool = True) -> "BrokerProcess":
        """Spawn the broker and (with ``wait``) return once it logged readiness and accepts
        a connection."""
        if self.running:
            raise self.Error(f"{self.name()} (pid {self.pid}) is already running")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{self.name()}-{len(self.logs)}.log"
        self.logs.append(log_path)
        self._stderr = open(log_path, "wb")
        self.paused = False
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=self._stderr,
                                     stderr=self._stderr, env=env, close_fds=True, preexec_fn=self._preexec)
        if wait:
            self.wait_ready(timeout)
        return self

    def _preexec(self) -> None:
        die_with_parent()
        if self.preexec is not None:
            self.preexec()

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.proc.poll()
            if code is not None:
                raise self.Error(f"{self.name()} exited with status {code} while starting:\n"
                                 f"{self.log_text()[-4000:]}")
            if READY_LINE in self.log_text() and self._accepts():
                return
            time.sleep(0.02)
        self.kill9()
        raise self.Error(f"{self.name()} not ready within {timeout}s:\n{self.log_text()[-4000:]}")

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0):
                return True
        except OSError:
            return False

    def kill9(self, timeout: float = 10.0) -> None:
        """SIGKILL (no shutdown code runs; works on a paused process too) and reap."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        try:
            self.proc.wait(timeout)
        finally:
            self._forget()

    def terminate(self, timeout: float = 15.0) -> int:
        """SIGTERM (resuming a paused broker first) and wait for a clean exit; returns the
        exit status.  If the broker does not exit within ``timeout`` it is killed and an
        error raised."""
        if self.proc is None:
            raise self.Error(f"{self.name()} is not running")
        if self.proc.poll() is None:
            if self.paused:
                self.resume()
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise self.Error(f"{self.name()} did not exit within {timeout}s of SIGTERM") from None
        self._forget()
        return code

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def restart(self, timeout: float = 20.0) -> "BrokerProcess":
        """Start again on the same port and data directory (the broker must be stopped)."""
        if self.running:
            raise self.Error("restart() needs a stopped broker: kill9() or terminate() first")
        return self.start(timeout)

    def cleanup(self) -> None:
        """Always safe: kill the process if it is still alive."""
        if self.running:
            try:
                self.kill9()
            except Exception:
                pass
        self._forget()

    def _forget(self) -> None:
        self.proc = None
        self.paused = False
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.bootstrap_servers}, pid={self.pid}, data_dir={self.data_dir})"


BrokerProcess.Error = BrokerError


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy (returned); bounded by ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# -- client helpers ------------------------------------------------------------------------

def create_topic(bootstrap: str, name: str, partitions: int, config: dict | None = None) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=config or {})], operation_timeout=10)
    futures[name].result(timeout=15)


def watermarks(bootstrap: str, topic: str, partitions: int, timeout: float = 10.0) -> dict[int, tuple[int, int]]:
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "faults-watermarks",
                         "enable.auto.commit": False})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
                for p in range(partitions)}
    finally:
        consumer.close()


def read_all(bootstrap: str, topic: str, partitions: int, timeout: float = 30.0,
             start: dict[int, int] | None = None) -> dict[int, list]:
    """Every record of every partition, from offset 0 (or ``start[partition]``) up to the
    high watermark now: {partition: [(offset, key, value), ...]}.  Uses assign(), commits nothing."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    ends = {p: high for p, (_low, high) in watermarks(bootstrap, topic, partitions).items()}
    got: dict[int, list] = {p: [] for p in range(partitions)}
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "faults-reader",
                         "enable.auto.commit": False, "enable.partition.eof": False,
                         "auto.offset.reset": "error"})
    first = start or {}
    consumer.assign([TopicPartition(topic, p, first.get(p, 0)) for p in range(partitions) if ends[p] > first.get(p, 0)])
    deadline = time.monotonic() + timeout
    try:
        def missing() -> bool:
            return any(ends[p] > first.get(p, 0) and (not got[p] or got[p][-1][0] < ends[p] - 1)
                       for p in range(partitions))
        while missing():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out reading {topic}: ends {ends}, got "
                                     f"{ {p: len(v) for p, v in got.items()} }")
            for msg in consumer.consume(num_messages=5000, timeout=0.2):
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"consume error: {msg.error()}")
                got[msg.partition()].append((msg.offset(), msg.key(), msg.value()))
    finally:
        consumer.close()
    for p in range(partitions):
        got[p] = [r for r in got[p] if r[0] < ends[p]]
    return got
