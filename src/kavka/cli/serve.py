"""``kavka serve``: run a broker in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import sys
import time
from pathlib import Path

from kavka.config import BrokerConfig, ConfigError, parse_properties

DEFAULT_DATA_DIR = "./kavka-data"
DEFAULT_LISTEN = "127.0.0.1:9092"


def add_parser(commands) -> None:
    p = commands.add_parser("serve", help="run a broker", description="Run a Kafka-compatible broker.")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR, help=f"where the logs live (default {DEFAULT_DATA_DIR})")
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT",
                   help=f"address to accept clients on (default {DEFAULT_LISTEN})")
    p.add_argument("--advertised-listener", metavar="HOST:PORT", help="address clients are told to use")
    p.add_argument("--config", metavar="FILE", help="a server.properties-style file of broker settings")
    p.add_argument("--override", action="append", default=[], metavar="NAME=VALUE",
                   help="a broker setting, e.g. num.partitions=3 (repeatable; wins over --config)")
    p.add_argument("--durable", action="store_true",
                   help="fsync before acknowledging a produce (group-committed; kavka.flush.before.ack=true). "
                        "Without it an acknowledged record survives a crash of kavka but not of the machine "
                        "or its disk, as in Kafka with its default flush settings")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--broker-id", type=int, metavar="N", help="this broker's id (broker.id; needed with --cluster)")
    p.add_argument("--cluster", metavar="etcd://HOST:PORT[,HOST:PORT...]",
                   help="join a cluster coordinated through etcd (replication, failover)")
    p.add_argument("--cluster-id", default="kavka", metavar="NAME",
                   help="the cluster's name in etcd, so clusters can share one etcd (default kavka)")
    p.add_argument("--session-timeout-ms", type=int, default=6000, metavar="MS",
                   help="how soon the cluster notices this broker is gone (etcd lease, default 6000)")


def parse_cluster(args):
    """ClusterSettings from --cluster, or None."""
    from kavka.cli.main import CliError
    if not args.cluster:
        if args.broker_id is not None:
            args.override.append(f"broker.id={args.broker_id}")
        return None
    spec = args.cluster
    if spec.startswith("etcd://"):
        spec = spec[len("etcd://"):]
    elif "://" in spec:
        raise CliError(f"--cluster wants etcd://HOST:PORT[,HOST:PORT...], got {args.cluster!r}")
    for item in spec.split(","):
        parse_host_port(item, "--cluster")
    if args.broker_id is None:
        raise CliError("--cluster needs --broker-id N (unique in the cluster)")
    args.override.append(f"broker.id={args.broker_id}")
    from kavka.cluster.node import ClusterSettings
    return ClusterSettings(spec, args.cluster_id, args.session_timeout_ms)


def parse_host_port(text: str, what: str) -> tuple[str, int]:
    from kavka.cli.main import CliError
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise CliError(f"{what} must be HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def load_settings(config_file: str | None, overrides: list[str]) -> BrokerConfig:
    from kavka.cli.main import CliError
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
        return BrokerConfig.from_strings(settings)
    except ConfigError as exc:
        raise CliError(f"bad setting: {exc}") from None


def run(args) -> int:
    from kavka.cli.main import CliError
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cluster = parse_cluster(args)
    if args.durable:
        args.override.append("kavka.flush.before.ack=true")
    config = load_settings(args.config, args.override)
    host, port = parse_host_port(args.listen, "--listen")
    advertised = parse_host_port(args.advertised_listener, "--advertised-listener") if args.advertised_listener else None
    started = time.monotonic()
    try:
        _run_loop(_serve(args.data_dir, host, port, config, advertised, started, cluster))
    except OSError as exc:
        raise CliError(_describe_os_error(exc, args)) from None
    except Exception as exc:
        if type(exc).__module__.startswith("kavka."):
            raise CliError(str(exc)) from None
        raise
    return 0


async def _serve(data_dir, host, port, config, advertised, started, cluster=None) -> None:
    from kavka.broker import Broker
    broker = Broker(data_dir, host=host, port=port, config=config,
                    advertised_host=advertised[0] if advertised else None,
                    advertised_port=advertised[1] if advertised else None, cluster=cluster)
    await broker.start_async()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, broker.request_stop)
    logging.getLogger("kavka").info(
        "kavka listening on %s:%d, data in %s (started in %.0f ms)",
        host, broker.port, Path(data_dir).resolve(), (time.monotonic() - started) * 1000)
    try:
        await broker.wait_stopped()
        logging.getLogger("kavka").info("shutting down")
    finally:
        await broker.stop_async()


def _run_loop(coro) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def _describe_os_error(exc: OSError, args) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"cannot listen on {args.listen}: the address is already in use"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        where = exc.filename or args.data_dir
        return f"permission denied: {where} (is the data dir writable?)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {args.listen}: no such local address"
    return f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
