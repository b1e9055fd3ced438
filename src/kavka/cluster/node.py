"""One broker in cluster mode: its membership, and the parts that tie etcd to the broker.

Theory of operation
-------------------
At start the broker registers under a lease (``session.py``), campaigns for
controller (``election.py``) and follows every change of the cluster's keys
(``watch.py``) into a ``ClusterView``.  The jobs are split by module:

* this module: lifecycle and membership — registering, losing the session
  (stop leading at once: ``ReplicaManager.fence``) and registering again,
  reporting a failed log directory;
* ``reconcile.py``: every watched change becomes local state (topics in the
  log directory, replica roles, the group and transaction coordinators' partitions);
* ``txn_markers.py``: the transaction coordinator's markers, sent to each
  partition's leader;
* ``txn_verifier.py``: a partition leader's questions to the coordinator of a
  transactional id before a transactional write (KIP-890);
* ``controller.py``: the elected controller's topic writes, leader elections,
  and the forwarding of other brokers' topic changes to it;
* ``metadata.py``: what the API layer asks (kavka.metadata), answered from the
  view and the controller.

Leaders change only the ISR, by compare-and-swap (``_propose_isr``).  Anything
waiting for the view to show a change (``wait_seen``) is woken by the watch,
not by polling.

A broker whose log directory goes offline (kavka.log.log_dir) drops every
role at once (no leading, no fetching as follower) and rewrites its
registration with ``log_dir_offline`` (Kafka's heartbeat ``offlineLogDirs``).
The controller treats such a broker as it treats a dead one for leadership,
ISR and placement (``eligible_broker_ids``): leaders move to the rest of the
ISR, the broker leaves it, and Metadata lists its replicas as offline; the
broker itself stays registered, answering Metadata, until it is restarted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from typing import Callable

from kavka.cluster.controller import Controller, ViewTimeout
from kavka.cluster.errors import ClusterError
from kavka.cluster.metadata import EtcdMetadata
from kavka.cluster.model import BrokerInfo
from kavka.cluster.reconcile import Reconciler
from kavka.cluster.txn_markers import ClusterMarkerWriter
from kavka.cluster.txn_verifier import ClusterTxnVerifier, peer_connector
from kavka.cluster.view import ClusterView
from kavka.internal_topics import BROKER_CLIENT_PREFIX
from kavka.replication.manager import ReplicaManager
from kavka.replication.quota import ReplicationQuota
from kavka.txn.verifier import LocalTxnVerifier

log = logging.getLogger("kavka.cluster")


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    endpoints: str                      # etcd HOST:PORT[,HOST:PORT...]
    cluster_id: str = "kavka"
    session_timeout_ms: int = 6000      # lease TTL: how soon a dead broker is noticed


REJOIN_VIEW_WAIT = 30.0   # seconds a re-registered broker waits for its view to catch up


class ClusterNode:
    def __init__(self, broker, settings: ClusterSettings, peer_security=None) -> None:
        """``peer_security``: how this broker connects to the others' inter-broker listener
        (kavka.client_security.ClientSecurity; None: PLAINTEXT), for every such connection."""
        self.broker = broker
        self.settings = settings
        self.peer_security = peer_security
        self.broker_id: int = broker.config.get("broker.id")
        self.view = ClusterView()
        self.controller = Controller(self)
        self.reconciler = Reconciler(self)
        self.metadata = EtcdMetadata(self)
        self.replicas = ReplicaManager(
            self.broker_id, broker.logs, broker._clock, address_of=self.address_of, propose_isr=self._propose_isr,
            rack_of=self.rack_of, replica_selector=broker.config.get("replica.selector.class"),
            lag_max_ms=broker.config.get("replica.lag.time.max.ms"),
            leader_quota=_throttle(broker, "leader.replication.throttled.rate"),
            follower_quota=_throttle(broker, "follower.replication.throttled.rate"), peer_security=peer_security)
        self.txn_markers = ClusterMarkerWriter(self, broker._clock)
        self.txn_verifier = ClusterTxnVerifier(self.broker_id, self.metadata.transaction_coordinator,
                                               self._local_txn_verifier,
                                               peer_connector(f"{BROKER_CLIENT_PREFIX}{self.broker_id}", peer_security))
        self._tasks: list[asyncio.Task] = []
        self._view_waiters: list[tuple[Callable[[], bool], asyncio.Future]] = []
        self.log_dir_offline = False
        self._gave_up_roles = False
        self._loop: asyncio.AbstractEventLoop | None = None  # set by start()
        for log_dir in broker.logs.log_dirs():  # any failed log dir gives up every role (coarser than Kafka)
            log_dir.on_offline.append(self._log_dir_failed)

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        from kavka.cluster.etcd_client import Etcd
        from kavka.cluster.keys import KeyLayout
        from kavka.cluster.state_store import ClusterStore
        from kavka.cluster.watch import ClusterWatcher

        self._loop = asyncio.get_running_loop()
        self.etcd = await Etcd.connect(self.settings.endpoints)
        self.layout = KeyLayout(self.settings.cluster_id)
        self.store = ClusterStore(self.etcd, self.layout)
        await self._register()
        self.replicas.start()
        self.watcher = ClusterWatcher(self.etcd, self.layout)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self.watcher.run(self.reconciler.on_item), name="kavka-cluster-watch"))
        self._tasks.append(loop.create_task(self.controller.run(), name="kavka-controller"))
        await self.election.start()
        log.info("broker %d joined cluster %s (etcd %s)", self.broker_id, self.settings.cluster_id,
                 self.settings.endpoints)

    async def _register(self) -> None:
        """A new session (lease + registration) and election; used at start and after a loss."""
        from kavka.cluster.election import ControllerElection
        from kavka.cluster.session import BrokerSession, lease_ttl_seconds
        b = self.broker
        ttl = lease_ttl_seconds(self.settings.session_timeout_ms)
        listeners = b.context.listeners if len(b.context.listeners) > 1 else ()
        info = BrokerInfo(self.broker_id, b.context.host, b.context.port, b.config.get("broker.rack"),
                          self.log_dir_offline, listeners=listeners)
        self.session = BrokerSession(self.etcd, self.layout, info, ttl=ttl)
        await self.session.register(retry_for=ttl + 2)
        self.session.on_lost(self._session_lost)
        self.election = ControllerElection(self.etcd, self.layout, self.session)
        self.election.on_change(self.controller.on_claim)

    async def controlled_shutdown(self) -> None:
        """Kafka's ControlledShutdown: say in the registration that this broker is stopping,
        so the controller moves each leadership it holds to an in-sync follower and drops
        it from the ISRs (a partition with no other in-sync replica loses its leader now
        rather than at the stop); return once the view shows that, or after
        ``controlled.shutdown.max.retries`` x ``retry.backoff.ms``.  Meanwhile the broker
        still serves, so clients learn the new leaders from it too."""
        config = self.broker.config
        if not config.get("controlled.shutdown.enable") or not self.session.is_live:
            return
        attempts = max(1, config.get("controlled.shutdown.max.retries"))
        backoff = config.get("controlled.shutdown.retry.backoff.ms") / 1000
        started = asyncio.get_running_loop().time()
        for attempt in range(attempts):
            try:
                await self.session.update(dataclasses.replace(self.session.info, shutting_down=True))
                await self.wait_seen(self._handed_over, backoff)
                log.info("broker %d: controlled shutdown done in %.0f ms", self.broker_id,
                         (asyncio.get_running_loop().time() - started) * 1000)
                return
            except (ClusterError, ViewTimeout) as exc:
                log.warning("broker %d: controlled shutdown attempt %d of %d: %s", self.broker_id, attempt + 1,
                            attempts, exc or "leaderships not moved yet")
        log.warning("broker %d: stopping without a complete controlled shutdown", self.broker_id)

    def _handed_over(self) -> bool:
        """Nothing left to hand over: no partition led here or with this broker in its ISR
        next to another eligible replica."""
        me = self.broker_id
        eligible = self.eligible_broker_ids()
        return not any((s.leader == me or me in s.isr) and any(b != me and b in eligible for b in s.isr)
                       for s in (v.value for v in self.view.partitions.values()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        try:
            await self.election.stop()
        except Exception:
            log.debug("election stop failed", exc_info=True)
        await self.replicas.stop()
        self.txn_markers.close()
        self.txn_verifier.close()
        try:
            await self.session.close()
        finally:
            await self.etcd.close()

    # -- membership: losing the session, registering again -------------------------------------

    def _session_lost(self) -> None:
        log.error("broker %d lost its etcd session: no longer leading anything", self.broker_id)
        self.replicas.fence()
        self.controller.claim = None
        self.reconciler.set_offsets_leadership(set())
        self.reconciler.set_txn_leadership({})
        if not any(t.get_name() == "kavka-rejoin" and not t.done() for t in self._tasks):
            self._tasks.append(asyncio.get_running_loop().create_task(self._rejoin(), name="kavka-rejoin"))

    async def _rejoin(self) -> None:
        """Register again once etcd answers; lead again only what the store then says."""
        while True:
            old = self.election
            try:
                await old.stop(resign=False)
            except Exception:
                log.debug("stopping the old election failed", exc_info=True)
            while True:
                try:
                    await self._register()
                    break
                except ClusterError as exc:
                    log.warning("broker %d cannot register again yet: %s", self.broker_id, exc)
                    await asyncio.sleep(1.0)
            # Everything the cluster decided while we were away comes before our new registration:
            # lead nothing until the view has caught up with it.
            try:
                await self.wait_seen(lambda: self.view.revision >= self.session.broker_epoch, REJOIN_VIEW_WAIT)
            except ViewTimeout:
                log.warning("broker %d: the cluster view did not catch up with its new registration in %.0f s",
                            self.broker_id, REJOIN_VIEW_WAIT)
            if self.session.is_live:
                self.replicas.unfence()
                await self.election.start()
            # A new session can be lost before it is used (its grant waited out an etcd outage
            # longer than the TTL): its loss finds this task still running and starts no other,
            # so register again here rather than stay unregistered (and unfenced) for good.
            if self.session.is_live:
                break
            log.warning("broker %d lost its new etcd session at once; registering again", self.broker_id)
        self.reconciler.reconcile_roles(None)
        log.info("broker %d is back in cluster %s", self.broker_id, self.settings.cluster_id)

    # -- a failed log directory ----------------------------------------------------------------

    def _log_dir_failed(self) -> None:
        """LogDirHealth went offline: on the event loop (the group-commit flusher reports
        from its worker thread), give up every role, then tell the controller."""
        self.log_dir_offline = True  # read by the reconciler and the next _register
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._give_up_roles)

    def _give_up_roles(self) -> None:
        if self._gave_up_roles:
            return
        self._gave_up_roles = True
        log.error("broker %d: log directory offline; giving up leadership and ISR membership of every partition",
                  self.broker_id)
        self.reconciler.give_up_roles()
        self._tasks.append(asyncio.get_running_loop().create_task(self._report_offline(),
                                                                  name="kavka-report-offline"))

    async def _report_offline(self) -> None:
        while True:
            session = self.session
            try:
                await session.update(dataclasses.replace(session.info, log_dir_offline=True))
                return  # written, or the session is lost and its successor registers offline
            except ClusterError as exc:
                log.warning("broker %d cannot report its offline log directory yet: %s", self.broker_id, exc)
                await asyncio.sleep(0.5)

    # -- waiting for the view ----------------------------------------------------------------

    async def wait_seen(self, predicate: Callable[[], bool], timeout: float) -> None:
        """Return once ``predicate()`` holds of the view (checked after every watched change);
        ViewTimeout after ``timeout`` seconds."""
        if predicate():
            return
        future = asyncio.get_running_loop().create_future()
        entry = (predicate, future)
        self._view_waiters.append(entry)
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError:
            raise ViewTimeout(f"broker {self.broker_id} has not seen the change within {timeout:g} s; "
                              "it was made and will show shortly") from None
        finally:
            if entry in self._view_waiters:
                self._view_waiters.remove(entry)

    def view_changed(self) -> None:
        """Called by the reconciler after every watched change: wake the waiters it satisfies."""
        for entry in list(self._view_waiters):
            predicate, future = entry
            try:
                satisfied = predicate()
            except Exception:   # e.g. a key gone between two lookups: not yet
                satisfied = False
            if satisfied and not future.done():
                future.set_result(None)
                self._view_waiters.remove(entry)

    # -- what the parts ask of each other ------------------------------------------------------

    def address_of(self, broker_id: int) -> tuple[str, int] | None:
        v = self.view.brokers.get(broker_id)
        return None if v is None else (v.value.host, v.value.port)

    def rack_of(self, broker_id: int) -> str | None:
        v = self.view.brokers.get(broker_id)
        return None if v is None else v.value.rack

    def eligible_broker_ids(self) -> set[int]:
        """Registered brokers whose log directory is online and that are not shutting
        down: those that may lead, be in an ISR, or get new replicas."""
        return {b for b, v in self.view.brokers.items() if v.value.eligible}

    def controller_id(self) -> int:
        return self.metadata.controller_id()

    def leads_offsets_partition(self, index: int) -> bool:
        return index in self.reconciler.led_offsets

    async def offsets_replicated(self, written) -> int:
        return await self.reconciler.offsets_replicated(written)

    def leads_txn_partition(self, index: int) -> bool:
        return index in self.reconciler.led_txn

    def txn_coordinator_epoch(self, index: int) -> int:
        """Kafka's coordinator epoch: the leader epoch of the ``__transaction_state``
        partition at which this broker coordinates its ids (-1 if it does not)."""
        return self.reconciler.led_txn.get(index, -1)

    async def txn_replicated(self, written) -> int:
        return await self.reconciler.txn_replicated(written)

    def _local_txn_verifier(self) -> LocalTxnVerifier | None:
        runner = self.broker.transactions
        return None if runner is None else LocalTxnVerifier(runner)

    def txn_partition_writable(self, index: int) -> bool:
        return self.reconciler.txn_partition_writable(index)

    async def _propose_isr(self, tp, isr, leader_epoch: int, version: int) -> int | None:
        current = self.view.partitions.get(tp)
        if current is None or current.mod_revision != version or current.value.leader_epoch != leader_epoch:
            return None
        eligible = self.eligible_broker_ids()   # a broker shutting down does not join an ISR
        isr = [b for b in isr if b == self.broker_id or b in eligible or b in current.value.isr]
        if set(isr) == set(current.value.isr):
            return None
        try:
            return await self.store.leader_update_isr(self.session, tp[0], tp[1], current, list(isr))
        except ClusterError as exc:
            log.info("ISR change of %s-%d refused: %s", tp[0], tp[1], exc)
            return None


def _throttle(broker, setting: str) -> ReplicationQuota:
    """The replication throttle of a rate setting, read at each check (it is dynamic)."""
    c = broker.config
    return ReplicationQuota(lambda: c.get(setting), c.get("replication.quota.window.num"),
                            c.get("replication.quota.window.size.seconds"), broker._clock.monotonic)
