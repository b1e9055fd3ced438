"""``kavka serve``: run a broker in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
import sys
import time
from pathlib import Path
from typing import NamedTuple

from kavka.cli.common import CliError
from kavka.config import BrokerConfig, ConfigError, Listener, closest_name, parse_properties

DEFAULT_DATA_DIR = "./kavka-data"
DEFAULT_LISTEN = "127.0.0.1:9092"


class UnknownSetting(CliError):
    """A setting kavka does not know (likely misspelt): exit status 2, as for a bad command line."""
    exit_code = 2


def add_parser(commands) -> None:
    p = commands.add_parser("serve", help="run a broker", description="Run a Kafka-compatible broker.")
    p.add_argument("--data-dir", help=f"where the logs live (log.dirs; default {DEFAULT_DATA_DIR})")
    p.add_argument("--listen", metavar="HOST:PORT",
                   help=f"address to accept clients on (listeners; default {DEFAULT_LISTEN})")
    p.add_argument("--advertised-listener", metavar="HOST:PORT",
                   help="address clients are told to use (advertised.listeners)")
    p.add_argument("--config", metavar="FILE", help="a server.properties-style file of broker settings")
    p.add_argument("--override", action="append", default=[], metavar="NAME=VALUE",
                   help="a broker setting, e.g. num.partitions=3 (repeatable; wins over --config)")
    p.add_argument("--allow-unknown", action="store_true",
                   help="start despite settings kavka does not know (each is logged and ignored); "
                        "without it an unknown setting stops kavka serve with exit status 2")
    p.add_argument("--durable", action="store_true",
                   help="fsync before acknowledging a produce (group-committed; kavka.flush.before.ack=true). "
                        "Without it an acknowledged record survives a crash of kavka but not of the machine "
                        "or its disk, as in Kafka with its default flush settings")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--broker-id", type=int, metavar="N",
                   help="this broker's id (broker.id / node.id; needed with --cluster)")
    p.add_argument("--cluster", metavar="etcd://HOST:PORT[,HOST:PORT...]",
                   help="join a cluster coordinated through etcd (replication, failover)")
    p.add_argument("--cluster-id", default="kavka", metavar="NAME",
                   help="the cluster's name in etcd, so clusters can share one etcd (default kavka)")
    p.add_argument("--session-timeout-ms", type=int, default=6000, metavar="MS",
                   help="how soon the cluster notices this broker is gone (etcd lease, default 6000)")


def flag_overrides(args) -> list[str]:
    """The command-line flags as the Kafka settings they stand for (they win over --config)."""
    overrides = []
    if args.broker_id is not None:
        overrides.append(f"broker.id={args.broker_id}")
    if args.data_dir is not None:
        overrides.append(f"log.dirs={args.data_dir}")
    if args.listen is not None:
        host, port = parse_host_port(args.listen, "--listen")
        overrides.append(f"listeners=PLAINTEXT://{_bracketed(host)}:{port}")
    if args.advertised_listener is not None:
        host, port = parse_host_port(args.advertised_listener, "--advertised-listener")
        overrides.append(f"advertised.listeners=PLAINTEXT://{_bracketed(host)}:{port}")
    if args.durable:
        overrides.append("kavka.flush.before.ack=true")
    return overrides


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def parse_cluster(args, config: BrokerConfig):
    """ClusterSettings from --cluster, or None."""
    if not args.cluster:
        return None
    spec = args.cluster
    if spec.startswith("etcd://"):
        spec = spec[len("etcd://"):]
    elif "://" in spec:
        raise CliError(f"--cluster wants etcd://HOST:PORT[,HOST:PORT...], got {args.cluster!r}")
    for item in spec.split(","):
        parse_host_port(item, "--cluster")
    if not config.is_explicit("broker.id"):
        raise CliError("--cluster needs --broker-id N (or node.id / broker.id; unique in the cluster)")
    from kavka.cluster.node import ClusterSettings
    return ClusterSettings(spec, args.cluster_id, args.session_timeout_ms)


def parse_host_port(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise CliError(f"{what} must be HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def load_settings(config_file: str | None, overrides: list[str], allow_unknown: bool = True) -> BrokerConfig:
    settings: dict[str, str] = {}
    if config_file:
        try:
            settings.update(parse_properties(Path(config_file).read_text()))
        except OSError as exc:
            raise CliError(f"cannot read config file {config_file}: {exc.strerror}") from None
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise CliError(f"--override wants NAME=VALUE, got {item!r}")
        settings[name.strip()] = value.strip()
    try:
        config = BrokerConfig.from_strings(settings)
    except ConfigError as exc:
        raise CliError(f"bad setting: {exc}") from None
    if config.unknown and not allow_unknown:
        raise UnknownSetting("; ".join(_unknown(name) for name in config.unknown)
                             + " (--allow-unknown starts anyway and ignores it)")
    return config


def _unknown(name: str) -> str:
    near = closest_name(name)
    return f"unknown setting {name}" + (f" (did you mean {near}?)" if near else "")


class Addresses(NamedTuple):
    """Where ``kavka serve`` keeps its data and listens, from the settings: ``host``/``port`` of
    the first listener, ``listeners`` all of them (kavka.config.Listener, with protocols)."""
    data_dir: str
    host: str
    port: int
    advertised: tuple[str, int] | None
    listeners: tuple = ()
    advertised_listeners: tuple = ()


def addresses(config: BrokerConfig) -> Addresses:
    """The data directory and listeners the settings name (``log.dirs``, ``listeners``,
    ``advertised.listeners``), else kavka's defaults; a listener's empty host is every interface."""
    try:
        data_dir = config.data_dir() or DEFAULT_DATA_DIR
        listeners = config.listeners("listeners")
        advertised_all = config.listeners("advertised.listeners") or []
    except ConfigError as exc:
        raise CliError(f"bad setting: {exc}") from None
    if not listeners:
        host, port = parse_host_port(DEFAULT_LISTEN, "")
        listeners = [Listener("PLAINTEXT", host, port, "PLAINTEXT")]
    first = listeners[0]
    advertised = next((a for a in advertised_all if a.name == first.name), None)
    return Addresses(data_dir, first.host or "0.0.0.0", first.port,
                     (advertised.host or socket.getfqdn(), advertised.port) if advertised else None,
                     tuple(listeners), tuple(advertised_all))


def run(args) -> int:
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_settings(args.config, args.override + flag_overrides(args), args.allow_unknown)
    cluster = parse_cluster(args, config)
    where = addresses(config)
    started = time.monotonic()
    try:
        _run_loop(_serve(where, config, started, cluster))
    except OSError as exc:
        raise CliError(_describe_os_error(exc, where)) from None
    except Exception as exc:
        if type(exc).__module__.startswith("kavka."):
            raise CliError(str(exc)) from None
        raise
    return 0


async def _serve(where: Addresses, config, started, cluster=None) -> None:
    from kavka.broker import Broker
    data_dir, host = where.data_dir, where.host
    broker = Broker(data_dir, config=config, cluster=cluster, listeners=list(where.listeners),
                    advertised=list(where.advertised_listeners))
    await broker.start_async()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, broker.request_stop)
    logging.getLogger("kavka").info(
        "kavka listening on %s:%d%s, data in %s (started in %.0f ms)",
        host, broker.port, _other_listeners(broker), Path(data_dir).resolve(), (time.monotonic() - started) * 1000)
    try:
        await broker.wait_stopped()
        logging.getLogger("kavka").info("shutting down")
    finally:
        await broker.stop_async()


def _other_listeners(broker) -> str:
    """" (FIRST), and SSL://host:port, ..." naming the listeners after the first, or nothing."""
    first, *rest = broker.listener_specs
    others = [f"{s.name}://{_bracketed(s.host or '0.0.0.0')}:{broker.listener_port(s.name)}" for s in rest]
    return f" ({first.name}), and {', '.join(others)}" if others else ""


def _run_loop(coro) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def _describe_os_error(exc: OSError, where: Addresses) -> str:
    listen = f"{_bracketed(where.host)}:{where.port}"
    if exc.errno == errno.EADDRINUSE:
        return f"cannot listen on {listen}: the address is already in use"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"permission denied: {exc.filename or where.data_dir} (is the data dir writable?)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {listen}: no such local address"
    return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
