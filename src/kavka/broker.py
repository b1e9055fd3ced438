"""The broker as one object: storage, API context and listener on one event loop.

``Broker`` is what ``kavka serve`` runs and what Python users embed::

    with kavka.Broker() as broker:          # temp data dir, free port
        producer = Producer({"bootstrap.servers": broker.bootstrap_servers})

Used as a context manager (or ``start()``/``stop()``), it runs its own event
loop in a background thread; ``serve()`` runs it in the calling coroutine.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Mapping

import kavka.api  # noqa: F401  (registers every API handler)
from kavka import group_configs
from kavka.api.context import BrokerContext
from kavka.clock import SYSTEM_CLOCK, Clock
from kavka.config import BrokerConfig, ConfigError
from kavka.config import Listener as ListenerSpec
from kavka.group.consumer_group import TopicMeta
from kavka.group.coordinator import GroupCoordinator
from kavka.group.env import GroupConfig
from kavka.group.offsets_topic import OffsetsTopic
from kavka.group.runner import GroupRunner
from kavka.internal_topics import OFFSETS_TOPIC, coordinator_partition
from kavka.log.cleaner import LogCleaner
from kavka.log.log_manager import LogManager
from kavka.producer_ids import RandomProducerIds
from kavka.security.listeners import listener_security
from kavka.server.dispatch import Dispatcher
from kavka.server.listener import Listener, server_limits
from kavka.txn.coordinator import TransactionCoordinator, TxnConfig
from kavka.txn.local_markers import local_marker_writer
from kavka.txn.runner import TxnRunner
from kavka.txn.state_topic import TransactionStateTopic

log = logging.getLogger("kavka")

WILDCARD_HOSTS = ("", "0.0.0.0", "::")
INITIAL_TASK_DELAY_MS = 30_000  # Kafka's log manager waits this long before its first retention check


class Broker:
    def __init__(self, data_dir: str | Path | None = None, *, host: str = "127.0.0.1", port: int = 0,
                 config: Mapping[str, str] | BrokerConfig | None = None,
                 advertised_host: str | None = None, advertised_port: int | None = None,
                 clock: Clock = SYSTEM_CLOCK, cluster=None,
                 listeners: "str | list[ListenerSpec] | None" = None,
                 advertised: "str | list[ListenerSpec] | None" = None) -> None:
        """``cluster``: a kavka.cluster.node.ClusterSettings to join a cluster through etcd.
        ``listeners``: Kafka's ``listeners`` (``"PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0"``, port 0:
        any free one) or their parsed specs, with protocols from listener.security.protocol.map;
        None: one PLAINTEXT listener on ``host``:``port``.  ``advertised``: advertised.listeners
        the same way (by name; a listener not named advertises where it listens)."""
        self.config = config if isinstance(config, BrokerConfig) else BrokerConfig.from_strings(config or {})
        self._own_dir = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix="kavka-")) if data_dir is None else Path(data_dir)
        self.host = host
        self.port = port
        self._advertised_host = advertised_host
        self._advertised_port = advertised_port  # e.g. a proxy's; None: the listening port
        self._clock = clock
        self.logs: LogManager | None = None
        self.groups: GroupRunner | None = None
        self.transactions: TxnRunner | None = None
        self._specs = self._parse_listeners(listeners, "listeners") or [
            ListenerSpec("PLAINTEXT", host, port, "PLAINTEXT")]
        self._advertised_specs = {s.name: s for s in self._parse_listeners(advertised, "advertised.listeners") or ()}
        self._listeners: dict[str, Listener] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._background: list[asyncio.Task] = []
        self.context: BrokerContext | None = None
        self.cluster_settings = cluster
        self.node = None
        self._cleaner: LogCleaner | None = None
        self.producer_ids = RandomProducerIds()   # idempotent and transactional producers alike

    # -- in the caller's event loop ---------------------------------------------------------

    async def start_async(self) -> None:
        for name in self.config.unknown:
            log.warning("ignoring unknown setting %s", name)
        if self.config.inert():
            log.info("these settings have no effect in kavka: %s", ", ".join(self.config.inert()))
        raise_open_file_limit()
        self.logs = LogManager(self.data_dir, self.config, self._clock)
        self.logs.load()
        try:
            if self.cluster_settings is not None:
                from kavka.cluster.node import ClusterNode
                self.node = ClusterNode(self, self.cluster_settings, self._inter_broker_security())
            self.groups = self._load_groups()
            self.transactions = self._load_transactions()
            await self._listen()
            if self.node is not None:
                await self.node.start()
        except BaseException:
            self.logs.close()
            raise
        self._start_background()

    def _start_background(self) -> None:
        """Storage work on this loop: retention every log.retention.check.interval.ms, producer
        expiry every producer.id.expiration.check.interval.ms (Kafka's first check also waits one
        interval), and the compaction cleaner (its copying runs in a worker thread, kavka.log.cleaner)."""
        loop = asyncio.get_running_loop()
        interval_ms = self.config.get("log.retention.check.interval.ms")
        self._background.append(loop.create_task(
            self._every(min(interval_ms, INITIAL_TASK_DELAY_MS), interval_ms, self._housekeeping),
            name="kavka-retention"))
        expiry_ms = self.config.get("producer.id.expiration.check.interval.ms")
        self._background.append(loop.create_task(
            self._every(expiry_ms, expiry_ms, self._expire_producers), name="kavka-producer-expiry"))
        if self.config.get("log.cleaner.enable"):
            self._cleaner = LogCleaner(self.logs, self.config, self._clock)
            self._background.append(loop.create_task(self._clean_forever(), name="kavka-cleaner"))

    async def _clean_forever(self) -> None:
        """Clean the dirtiest compacted log, again at once if there was one, else back off
        (log.cleaner.backoff.ms, read each time: it changes live)."""
        while True:
            try:
                cleaned = await self._cleaner.run_once()
            except Exception:
                log.exception("log cleaning failed")
                cleaned = None
            await asyncio.sleep(0 if cleaned is not None else self.config.get("log.cleaner.backoff.ms") / 1000)

    def _housekeeping(self) -> None:
        self.logs.housekeeping(self._clock.now_ms())

    def _expire_producers(self) -> int:
        """Forget idempotent producers idle for producer.id.expiration.ms, in every partition."""
        now, expiration = self._clock.now_ms(), self.config.get("producer.id.expiration.ms")
        removed = sum(p.producers.remove_expired(now, expiration) for p in self.logs.partitions())
        if removed:
            log.info("forgot %d idle producers (producer.id.expiration.ms=%d)", removed, expiration)
        return removed

    @staticmethod
    async def _every(first_ms: int, interval_ms: int, task) -> None:
        """Run ``task`` after ``first_ms``, then every ``interval_ms``; a failure is logged, not fatal."""
        await asyncio.sleep(first_ms / 1000)
        while True:
            try:
                task()
            except Exception:
                log.exception("background task %s failed", getattr(task, "__name__", task))
            await asyncio.sleep(interval_ms / 1000)

    async def _stop_background(self) -> None:
        tasks, self._background = self._background, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._cleaner is not None:
            await self._cleaner.close()  # waits for the worker: the logs are closed next
            self._cleaner = None

    def _load_groups(self) -> GroupRunner:
        """The group coordinator, its state replayed from __consumer_offsets before we listen."""
        settings = GroupConfig.from_broker(self.config)
        leads = None
        if self.node is not None:  # groups load as this broker comes to lead their partition
            leads = self.node.leads_offsets_partition
        journal = OffsetsTopic(self.logs, settings.offsets_partitions, settings.offsets_segment_bytes, self._clock,
                               leads)
        coordinator = GroupCoordinator(settings, self._clock, journal, topics=self._topic_meta)
        for group, texts in self.logs.group_configs().items():   # GROUP configs (kavka.group_configs)
            coordinator.set_group_config(group, group_configs.coordinator_settings(group_configs.parse(texts)))
        coordinator.load()
        runner = GroupRunner(coordinator)
        if self.node is not None:  # answers wait until their records are replicated
            runner.replicated = self.node.offsets_replicated
        return runner

    def _load_transactions(self) -> TxnRunner:
        """The transaction coordinator.  A lone broker replays every __transaction_state
        partition before we listen and writes markers straight into its own partitions; in a
        cluster it loads a partition as this broker comes to lead it (kavka.cluster.reconcile),
        answers once its records are replicated, and sends markers to each partition's leader
        (kavka.cluster.txn_markers)."""
        get = self.config.get
        node = self.node
        cluster = {} if node is None else dict(leads=node.leads_txn_partition, leader_epoch=node.txn_coordinator_epoch,
                                               writable=node.txn_partition_writable)
        journal = TransactionStateTopic(self.logs, get("transaction.state.log.num.partitions"),
                                        get("transaction.state.log.segment.bytes"), self._clock, **cluster)
        offsets_partitions = get("offsets.topic.num.partitions")
        coordinator = TransactionCoordinator(
            TxnConfig.from_broker(self.config), self._clock, journal, self.producer_ids,
            lambda group_id: (OFFSETS_TOPIC, coordinator_partition(group_id, offsets_partitions)))
        if node is not None:
            return TxnRunner(coordinator, node.txn_markers.write_markers, replicated=node.txn_replicated)
        runner = TxnRunner(coordinator, local_marker_writer(self.logs, self._clock, self.groups.marker_written))
        for index in range(journal.partitions):
            runner.load_partition(index)
        return runner

    def _topic_meta(self) -> dict[str, TopicMeta]:
        """Topics as the group coordinator's server-side assignors see them (the whole
        cluster's, not only those with a replica here)."""
        view = self.context.metadata
        return {name: TopicMeta(t.topic_id, t.partitions, name.startswith("__"))
                for name in view.topic_names() if (t := view.topic(name)) is not None}

    def _parse_listeners(self, value, setting: str) -> "list[ListenerSpec] | None":
        if value is None or not isinstance(value, str):
            return value
        return BrokerConfig.from_strings({setting: value, "listener.security.protocol.map": ",".join(
            self.config.get("listener.security.protocol.map"))}).listeners(setting)

    async def _listen(self) -> None:
        boundary = {}
        if self.node is not None:  # until etcd says otherwise, this broker leads nothing
            boundary = dict(metadata=self.node.metadata, admin=self.node.metadata, replicas=self.node.replicas,
                            txn_verifier=self.node.txn_verifier)
        context = self.context = BrokerContext(
            logs=self.logs, config=self.config, clock=self._clock, node_id=self.config.get("broker.id"),
            host="", port=0, producer_ids=self.producer_ids, groups=self.groups,
            transactions=self.transactions, inter_broker=self._inter_broker_identity(), **boundary)
        if context.authorizer is not None:   # read the stored ACLs now: a damaged file stops the start
            log.info("authorizer %s: %d ACL bindings, super users %s", self.config.get("authorizer.class.name"),
                     len(context.metadata.acls()), sorted(context.authorizer.super_users) or "none")
        context.metadata.scram_credentials()   # a lone broker reads its file now: a damaged one stops the start
        if self.config.get("kavka.flush.before.ack"):
            from kavka.log.group_commit import GroupCommit
            context.durable = GroupCommit()
        inter = self._inter_broker_listener()
        dispatcher, limits = Dispatcher(context), server_limits(self.config)
        try:
            for spec in self._specs:
                security = listener_security(self.config, spec.name, spec.protocol, context.metadata.scram_credentials)
                listener = self._listeners[spec.name] = Listener(
                    dispatcher, limits=limits, security=security,
                    connection_quota=lambda ip: context.metadata.client_quotas().ip_quota(ip))
                await listener.start(spec.host or "0.0.0.0", spec.port)
        except BaseException:
            await self._stop_listeners(0)
            raise
        first = self._listeners[self._specs[0].name]
        self.host, self.port = self._specs[0].host or "0.0.0.0", first.port
        advertised = tuple((spec.name, *self._advertised_address(spec)) for spec in self._specs)
        found = [a for a in advertised if a[0] == inter]
        context.advertise(found[0][1], found[0][2], advertised)
        self._stopped = asyncio.Event()

    def _inter_broker_listener(self) -> str:
        """inter.broker.listener.name (default: the first listener), checked before any listener opens."""
        inter = (self.config.get("inter.broker.listener.name") or self._specs[0].name).upper()
        spec = next((s for s in self._specs if s.name == inter), None)
        if spec is None:
            raise ConfigError(f"inter.broker.listener.name: {inter} is not one of the listeners "
                              f"({', '.join(s.name for s in self._specs)})")
        return inter

    def _inter_broker_spec(self) -> ListenerSpec:
        inter = self._inter_broker_listener()
        return next(s for s in self._specs if s.name == inter)

    def _inter_broker_security(self):
        """How this broker connects to the others (a cluster's): the inter-broker listener's
        protocol, TLS and SASL settings as a kavka.client_security.ClientSecurity, None for
        PLAINTEXT; ConfigError (before any listener opens) when they cannot work."""
        from kavka.client_security import ClientSecurity
        spec = self._inter_broker_spec()
        if spec.protocol == "PLAINTEXT":
            return None
        return ClientSecurity.inter_broker(self.config, spec.name, spec.protocol)

    def _inter_broker_identity(self):
        """Who counts as another broker of the cluster on this broker's listeners
        (kavka.api.inter_broker); None for a lone broker, which has no other brokers."""
        if self.node is None:
            return None
        from kavka.api.inter_broker import InterBrokerIdentity
        spec = self._inter_broker_spec()
        return InterBrokerIdentity.of(self.config, spec.name, spec.protocol, self.node.peer_security)

    def _advertised_address(self, spec: ListenerSpec) -> tuple[str, int]:
        """Where clients are told to reach listener ``spec``: advertised.listeners by name, else
        the legacy advertised host/port (the first listener), else where it listens."""
        bound = self._listeners[spec.name].port
        given = self._advertised_specs.get(spec.name)
        if given is not None:
            return given.host or self._advertise(spec.host), given.port or bound
        if spec.name == self._specs[0].name:
            return self._advertised_host or self._advertise(spec.host), self._advertised_port or bound
        return self._advertise(spec.host), bound

    @property
    def listener_specs(self) -> "list[ListenerSpec]":
        return list(self._specs)

    def listener_port(self, listener: str) -> int:
        """The port listener ``listener`` (by name) is bound to, once started."""
        return self._listeners[listener.upper()].port

    def bootstrap(self, listener: str) -> str:
        """host:port of listener ``listener`` (by name) for a client on this machine."""
        spec = next(s for s in self._specs if s.name == listener.upper())
        host = "127.0.0.1" if spec.host in WILDCARD_HOSTS else spec.host
        return f"{host}:{self._listeners[spec.name].port}"

    async def _stop_listeners(self, timeout: float) -> None:
        listeners, self._listeners = list(self._listeners.values()), {}
        await asyncio.gather(*(lst.stop(timeout) for lst in listeners))

    @staticmethod
    def _advertise(host: str) -> str:
        return socket.getfqdn() if host in WILDCARD_HOSTS else host

    async def stop_async(self, timeout: float = 5.0) -> None:
        if self.node is not None:   # hand the leaderships over while still serving
            try:
                await self.node.controlled_shutdown()
            except Exception:
                log.exception("controlled shutdown failed; stopping anyway")
        await self._stop_background()
        if self.node is not None:
            try:
                await self.node.stop()
            except Exception:
                log.exception("leaving the cluster failed")
            self.node = None
        if self.context is not None:
            # acks=all produces still waiting are answered NOT_LEADER_OR_FOLLOWER; fetchers stop.
            await self.context.replicas.stop()
        if self.groups is not None:
            # Parked JoinGroup/SyncGroup requests would hold the drain until their
            # rebalance timeout: answer them NOT_COORDINATOR first.
            self.groups.close()
            self.groups = None
        await self._stop_listeners(timeout)
        if self.transactions is not None:
            self.transactions.close()   # marker tasks and timers: before the logs close
            self.transactions = None
        if self.context is not None and self.context.durable is not None:
            await self.context.durable.close()  # its last round, before the logs close
        if self.logs is not None:
            self.logs.close()
            self.logs = None
        if self._stopped is not None:
            self._stopped.set()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    async def serve(self) -> None:
        """Start, then run until ``request_stop`` (or cancellation)."""
        await self.start_async()
        try:
            await self._stopped.wait()
        finally:
            await self.stop_async()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    def request_stop(self) -> None:
        if self._stopped is not None:
            self._stopped.set()

    @property
    def bootstrap_servers(self) -> str:
        host = self._advertised_host or ("127.0.0.1" if self.host in WILDCARD_HOSTS else self.host)
        return f"{host}:{self._advertised_port or self.port}"

    # -- in a background thread ----------------------------------------------------------------

    def start(self) -> "Broker":
        """Start on a private event loop in a daemon thread; returns once listening."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            self._loop = _new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self.start_async())
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=run, name="kavka-broker", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def call(self, fn, *args, timeout: float = 10.0):
        """Run ``fn(*args)`` on the broker's event loop thread and return its result
        (a coroutine function's result is awaited there).  For tests and embedding."""
        async def run():
            result = fn(*args)
            if asyncio.iscoroutine(result):
                result = await result
            return result
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        if self._loop is None or self._thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self.stop_async(timeout), self._loop)
        future.result(timeout + 10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout + 10)
        self._thread = None

    def __enter__(self) -> "Broker":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def raise_open_file_limit() -> None:
    """RLIMIT_NOFILE soft -> hard (often 1024 -> 524288): segments, sockets and slices in
    flight all need fds; the segment LRU (log.max.open.files) uses at most half."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY or soft >= hard:
            log.info("open file limit (RLIMIT_NOFILE) is %s", "unlimited" if soft == resource.RLIM_INFINITY else soft)
            return
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        log.info("raised the open file limit (RLIMIT_NOFILE) from %d to %d", soft, hard)
    except (OSError, ValueError) as exc:
        log.warning("could not raise the open file limit: %s", exc)


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is a dependency
        return asyncio.new_event_loop()
