"""One broker in cluster mode: what ties etcd to the broker's logs, replicas and API.

Theory of operation
-------------------
At start the broker registers under a lease (``session.py``), campaigns for
controller (``election.py``) and follows every change of the cluster's keys
(``watch.py``) into a ``ClusterView``.  Each change is then *reconciled*:

* topics in etcd with a replica here exist locally (created with etcd's topic
  id and configs), local topics that etcd no longer has are deleted;
* every partition state becomes a role in the ReplicaManager (lead, follow,
  nothing), so replication follows the store and nothing else;
* the group coordinator loads the groups of the ``__consumer_offsets``
  partitions this broker starts to lead and drops those it stops leading.

The controller (one broker, elected) is the only writer of leaders: when a
broker's registration goes or comes it elects leaders from the ISR
(``decisions.py``), and it creates and deletes topics — other brokers forward
those requests to it over the Kafka protocol.  Its writes are fenced by the
controller epoch (``state_store.py``).  Leaders change only the ISR, by
compare-and-swap.  A broker whose session is lost stops leading at once
(``ReplicaManager.fence``) and re-registers.

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
import logging
import uuid
from dataclasses import dataclass

from kavka.cluster import decisions
from kavka.cluster.model import NO_LEADER, BrokerInfo, TopicAssignment
from kavka.internal_topics import BROKER_CLIENT_PREFIX, OFFSETS_TOPIC
from kavka.replication.manager import Assignment, ReplicaManager

log = logging.getLogger("kavka.cluster")


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    endpoints: str                      # etcd HOST:PORT[,HOST:PORT...]
    cluster_id: str = "kavka"
    session_timeout_ms: int = 6000      # lease TTL: how soon a dead broker is noticed


def _ms(n: int):
    import datetime
    return datetime.timedelta(milliseconds=n)


class ControllerUnavailable(Exception):
    """No controller, or it could not be reached: the client should retry."""


class ClusterNode:
    def __init__(self, broker, settings: ClusterSettings) -> None:
        self.broker = broker
        self.settings = settings
        self.broker_id: int = broker.config.get("broker.id")
        from kavka.cluster.watch import ClusterView
        self.view = ClusterView()
        self.replicas: ReplicaManager | None = None
        self.claim = None
        self._tasks: list[asyncio.Task] = []
        self._controller_dirty = asyncio.Event()
        self._led_offsets: set[int] = set()
        self.log_dir_offline = False
        self._gave_up_roles = False
        self._loop: asyncio.AbstractEventLoop | None = None  # set by start()

    # -- lifecycle -------------------------------------------------------------------------

    def attach(self, context) -> None:
        """Give the API layer a replica manager that leads nothing yet, and this node."""
        b = self.broker
        self.replicas = ReplicaManager(
            self.broker_id, b.logs, b._clock, address_of=self.address_of, propose_isr=self._propose_isr,
            lag_max_ms=b.config.get("replica.lag.time.max.ms"))
        context.replicas = self.replicas
        context.cluster = self
        if b.groups is not None:
            b.groups.replicated = self._offsets_replicated
        b.logs.health.on_offline.append(self._log_dir_failed)

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
        self._tasks.append(loop.create_task(self.watcher.run(self._on_item), name="kavka-cluster-watch"))
        self._tasks.append(loop.create_task(self._controller_loop(), name="kavka-controller"))
        await self.election.start()
        log.info("broker %d joined cluster %s (etcd %s)", self.broker_id, self.settings.cluster_id,
                 self.settings.endpoints)

    async def _register(self) -> None:
        """A new session (lease + registration) and election; used at start and after a loss."""
        from kavka.cluster.election import ControllerElection
        from kavka.cluster.session import BrokerSession, lease_ttl_seconds
        b = self.broker
        ttl = lease_ttl_seconds(self.settings.session_timeout_ms)
        info = BrokerInfo(self.broker_id, b.context.host, b.context.port, b.config.get("broker.rack"),
                          self.log_dir_offline)
        self.session = BrokerSession(self.etcd, self.layout, info, ttl=ttl)
        await self.session.register(retry_for=ttl + 2)
        self.session.on_lost(self._session_lost)
        self.election = ControllerElection(self.etcd, self.layout, self.session)
        self.election.on_change(self._on_claim)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        try:
            await self.election.stop()
        except Exception:
            log.debug("election stop failed", exc_info=True)
        if self.replicas is not None:
            await self.replicas.stop()
            self.broker.context.replicas = None
        try:
            await self.session.close()
        finally:
            await self.etcd.close()

    def _session_lost(self) -> None:
        log.error("broker %d lost its etcd session: no longer leading anything", self.broker_id)
        if self.replicas is not None:
            self.replicas.fence()
        self.claim = None
        self._set_offsets_leadership(set())
        if not any(t.get_name() == "kavka-rejoin" and not t.done() for t in self._tasks):
            self._tasks.append(asyncio.get_running_loop().create_task(self._rejoin(), name="kavka-rejoin"))

    def _log_dir_failed(self) -> None:
        """LogDirHealth went offline: on the event loop (the group-commit flusher reports
        from its worker thread), give up every role, then tell the controller."""
        self.log_dir_offline = True  # read by _apply_role and the next _register
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._give_up_roles)

    def _give_up_roles(self) -> None:
        if self._gave_up_roles:
            return
        self._gave_up_roles = True
        log.error("broker %d: log directory offline; giving up leadership and ISR membership of every partition",
                  self.broker_id)
        if self.replicas is not None:
            for tp in set(self.replicas.leaders) | set(self.replicas.followers):
                self.replicas.apply(tp, None)
        self._set_offsets_leadership(set())
        self._tasks.append(asyncio.get_running_loop().create_task(self._report_offline(),
                                                                  name="kavka-report-offline"))

    async def _report_offline(self) -> None:
        import dataclasses

        from kavka.cluster.errors import ClusterError
        while True:
            session = self.session
            try:
                await session.update(dataclasses.replace(session.info, log_dir_offline=True))
                return  # written, or the session is lost and its successor registers offline
            except ClusterError as exc:
                log.warning("broker %d cannot report its offline log directory yet: %s", self.broker_id, exc)
                await asyncio.sleep(0.5)

    async def _rejoin(self) -> None:
        """Register again once etcd answers; lead again only what the store then says."""
        from kavka.cluster.errors import ClusterError
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
            await self._wait_seen(lambda: self.view.revision >= self.session.broker_epoch, timeout=30.0)
            if self.session.is_live:
                self.replicas.unfence()
                await self.election.start()
            # A new session can be lost before it is used (its grant waited out an etcd outage
            # longer than the TTL): its loss finds this task still running and starts no other,
            # so register again here rather than stay unregistered (and unfenced) for good.
            if self.session.is_live:
                break
            log.warning("broker %d lost its new etcd session at once; registering again", self.broker_id)
        self._reconcile_roles(None)
        log.info("broker %d is back in cluster %s", self.broker_id, self.settings.cluster_id)

    # -- what the API layer asks -----------------------------------------------------------

    def address_of(self, broker_id: int) -> tuple[str, int] | None:
        v = self.view.brokers.get(broker_id) if self.view else None
        return None if v is None else (v.value.host, v.value.port)

    @property
    def cluster_id(self) -> str:
        return self.settings.cluster_id

    def brokers(self) -> list[BrokerInfo]:
        return [v.value for _, v in sorted(self.view.brokers.items())]

    def live_broker_ids(self) -> frozenset[int]:
        return frozenset(self.view.brokers)

    def eligible_broker_ids(self) -> set[int]:
        """Registered brokers whose log directory is online: those that may lead, be in
        an ISR, or get new replicas."""
        return {b for b, v in self.view.brokers.items() if not v.value.log_dir_offline}

    def controller_id(self) -> int:
        c = self.view.controller
        return -1 if c is None else c.value.broker_id

    def topic_names(self) -> list[str]:
        return sorted(self.view.topics)

    def topic(self, name: str) -> TopicAssignment | None:
        v = self.view.topics.get(name)
        return None if v is None else v.value

    def partition(self, topic: str, index: int):
        """(leader, leader_epoch, replicas, isr, offline replicas) or None."""
        t = self.topic(topic)
        v = self.view.partitions.get((topic, index))
        if t is None or v is None or index not in t.replicas:
            return None
        replicas = t.replicas[index]
        live = self.eligible_broker_ids()
        return (v.value.leader, v.value.leader_epoch, replicas, v.value.isr,
                tuple(r for r in replicas if r not in live))

    def coordinator_of(self, group_id: str) -> BrokerInfo | None:
        from kavka.group.log_format import partition_for
        t = self.topic(OFFSETS_TOPIC)
        if t is None:
            return None
        p = self.partition(OFFSETS_TOPIC, partition_for(group_id, len(t.replicas)))
        if p is None or p[0] == NO_LEADER or p[0] not in self.view.brokers:
            return None
        return self.view.brokers[p[0]].value

    def is_controller(self) -> bool:
        return self.claim is not None and self.session.is_live

    # -- topics: done by the controller, forwarded to it by the others --------------------------

    async def create_topic(self, name: str, partitions: int, replication_factor: int,
                           assignments: dict[int, tuple[int, ...]] | None, configs: dict[str, str]) -> uuid.UUID:
        """Create in etcd (on the controller); raises PlacementError, ConcurrentUpdate, ControllerUnavailable."""
        claim = self._claim()
        live = self.eligible_broker_ids()
        replicas = assignments or decisions.place(name, range(partitions), replication_factor, live)
        self._check_capacity(replicas)
        topic_id = uuid.uuid4()
        states = {p: decisions.initial_state(r, live, claim.epoch) for p, r in replicas.items()}
        await self.store.create_topic(claim, TopicAssignment(name, str(topic_id), dict(replicas), dict(configs)),
                                      states)
        await self._wait_seen(lambda: name in self.view.topics)
        return topic_id

    def capacity_refusal(self, name: str, partitions: range, replication_factor: int | None,
                         assignments: dict[int, tuple[int, ...]] | None) -> str | None:
        """Why the controller would refuse these partitions for max.partitions.per.broker,
        or None (checked by the receiving broker first, so validate-only answers it too).
        ``replication_factor`` None: that of the existing topic ``name``."""
        try:
            if assignments is None:
                if replication_factor is None:
                    replication_factor = len(self.view.topics[name].value.replicas[0])
                assignments = decisions.place(name, partitions, replication_factor, self.eligible_broker_ids())
            self._check_capacity(assignments)
        except decisions.OverCapacity as exc:
            return str(exc)
        except (decisions.PlacementError, KeyError):
            pass  # answered by the controller's own checks
        return None

    def _check_capacity(self, adding: dict[int, tuple[int, ...]]) -> None:
        """OverCapacity when a target broker would hold more than max.partitions.per.broker
        replicas (counted from the cluster view, every topic's assignment).  The
        controller's setting rules, as Kafka's controller-side policies do; a replica
        broker's own LogManager cap would otherwise refuse the local creation after
        etcd already holds the topic."""
        held = decisions.replicas_per_broker(v.value.replicas for v in self.view.topics.values())
        decisions.check_capacity(held, adding, self.broker.config.get("max.partitions.per.broker"))

    async def _through_controller(self, here, request, seen, conflict: tuple[int, str]) -> tuple[int, str | None]:
        """Run ``here()`` if this broker is the controller, else send ``request()`` (a kio
        request and a function reading (error code, message) from its answer) to the
        controller; then wait until this broker's view shows the change.  ``here()`` may
        return (code, message) to answer at once.  (Kafka error code, message)."""
        from kavka.cluster.errors import ConcurrentUpdate
        from kavka.protocol.errors import ErrorCode
        try:
            if self.is_controller():
                refused = await here()
                if refused is not None:
                    return refused
            else:
                body, answer_of = request()
                code, message = answer_of(await self._ask_controller(body))
                if code != ErrorCode.none:
                    return code, message
        except decisions.PlacementError as exc:
            return ErrorCode.invalid_replication_factor, str(exc)
        except decisions.OverCapacity as exc:
            return ErrorCode.policy_violation, str(exc)
        except ConcurrentUpdate:
            return conflict
        except ControllerUnavailable as exc:
            return ErrorCode.not_controller, str(exc)
        await self._wait_seen(seen)
        return ErrorCode.none, None

    async def create_topic_anywhere(self, name: str, partitions: int, replication_factor: int,
                                    assignments: dict[int, tuple[int, ...]] | None,
                                    configs: dict[str, str]) -> tuple[int, str | None]:
        """Create on the controller (here or forwarded as CreateTopics)."""
        from kavka.protocol.errors import ErrorCode

        async def here():
            await self.create_topic(name, partitions, replication_factor, assignments, configs)

        def request():
            from kio.schema.create_topics.v5 import request as q

            from kavka.api.responses import make
            topic = make(q.CreatableTopic, name=name, num_partitions=-1 if assignments else partitions,
                         replication_factor=-1 if assignments else replication_factor,
                         assignments=tuple(make(q.CreatableReplicaAssignment, partition_index=p, broker_ids=tuple(r))
                                           for p, r in sorted((assignments or {}).items())),
                         configs=tuple(make(q.CreatableTopicConfig, name=k, value=v) for k, v in configs.items()))
            body = make(q.CreateTopicsRequest, topics=(topic,), timeout=_ms(10_000), validate_only=False)
            return body, lambda answer: (answer.topics[0].error_code, answer.topics[0].error_message)

        return await self._through_controller(
            here, request, lambda: name in self.view.topics and all(
                (name, p) in self.view.partitions for p in self.view.topics[name].value.replicas),
            (ErrorCode.topic_already_exists, f"Topic '{name}' already exists."))

    async def add_partitions_anywhere(self, name: str, total: int,
                                      assignments: dict[int, tuple[int, ...]] | None) -> tuple[int, str | None]:
        """Grow a topic to ``total`` partitions on the controller (here or forwarded)."""
        from kavka.protocol.errors import ErrorCode

        def request():
            from kio.schema.create_partitions.v3 import request as q

            from kavka.api.responses import make
            topic = make(q.CreatePartitionsTopic, name=name, count=total, assignments=None if not assignments
                         else tuple(make(q.CreatePartitionsAssignment, broker_ids=tuple(r))
                                    for _, r in sorted(assignments.items())))
            body = make(q.CreatePartitionsRequest, topics=(topic,), timeout=_ms(10_000), validate_only=False)
            return body, lambda answer: (answer.results[0].error_code, answer.results[0].error_message)

        return await self._through_controller(
            lambda: self._add_partitions(name, total, assignments), request,
            lambda: name in self.view.topics and len(self.view.topics[name].value.replicas) >= total,
            (ErrorCode.reassignment_in_progress, f"Topic '{name}' changed meanwhile; try again."))

    async def _add_partitions(self, name: str, total: int, assignments) -> None:
        import dataclasses
        claim = self._claim()
        v = self.view.topics[name]
        current = v.value
        existing = len(current.replicas)
        live = self.eligible_broker_ids()
        rf = len(current.replicas[0])
        added = assignments or decisions.place(name, range(existing, total), rf, live)
        self._check_capacity(added)
        states = {p: decisions.initial_state(r, live, claim.epoch) for p, r in added.items()}
        grown = dataclasses.replace(current, replicas={**current.replicas, **added})
        await self.store.add_partitions(claim, grown, v.mod_revision, states)

    async def alter_topic_config_anywhere(self, name: str, overrides: dict[str, str]) -> tuple[int, str | None]:
        """Replace a topic's config overrides (on the controller, here or forwarded as an
        AlterConfigs of the whole set); every replica applies them from etcd."""
        import dataclasses

        from kavka.protocol.errors import ErrorCode

        async def here():
            v = self.view.topics.get(name)
            if v is None:
                return ErrorCode.unknown_topic_or_partition, f"The topic '{name}' does not exist."
            await self.store.write_topic(self._claim(), dataclasses.replace(v.value, config=dict(overrides)),
                                         v.mod_revision)

        def request():
            from kio.schema.alter_configs.v2 import request as q

            from kavka.api.responses import make
            resource = make(q.AlterConfigsResource, resource_type=2, resource_name=name, configs=tuple(
                make(q.AlterableConfig, name=k, value=v) for k, v in sorted(overrides.items())))
            body = make(q.AlterConfigsRequest, resources=(resource,), validate_only=False)
            return body, lambda answer: (answer.responses[0].error_code, answer.responses[0].error_message)

        return await self._through_controller(
            here, request, lambda: name in self.view.topics and self.view.topics[name].value.config == overrides,
            (ErrorCode.reassignment_in_progress, f"Topic '{name}' changed meanwhile; try again."))

    async def delete_topic_anywhere(self, name: str) -> tuple[int, str | None]:
        """Delete on the controller (here or forwarded as DeleteTopics)."""
        from kavka.protocol.errors import ErrorCode

        def request():
            from kio.schema.delete_topics.v5 import request as q

            from kavka.api.responses import make
            body = make(q.DeleteTopicsRequest, topic_names=(name,), timeout=_ms(10_000))
            return body, lambda answer: (answer.responses[0].error_code, answer.responses[0].error_message)

        return await self._through_controller(
            lambda: self.delete_topic(name), request, lambda: name not in self.view.topics,
            (ErrorCode.reassignment_in_progress, f"Topic '{name}' changed meanwhile; try again."))

    async def _ask_controller(self, body):
        from kavka.replication.peer import Peer, PeerError
        address = self.address_of(self.controller_id())
        if address is None:
            raise ControllerUnavailable("no controller is known yet")
        try:
            peer = await Peer.connect(*address, client_id=f"{BROKER_CLIENT_PREFIX}{self.broker_id}")
            try:
                return await peer.request(body, 15.0)
            finally:
                peer.close()
        except PeerError as exc:
            raise ControllerUnavailable(f"controller unreachable: {exc}") from None

    async def delete_topic(self, name: str) -> None:
        claim = self._claim()
        v = self.view.topics.get(name)
        if v is None:
            return
        await self.store.delete_topic(claim, name, v.mod_revision)
        await self._wait_seen(lambda: name not in self.view.topics)

    def _claim(self):
        """This broker's controller claim; ControllerUnavailable if it is not the controller."""
        claim = self.claim
        if claim is None or not self.session.is_live:
            raise ControllerUnavailable("this broker is not the controller")
        return claim

    async def _wait_seen(self, predicate, timeout: float = 5.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)

    # -- following the store ---------------------------------------------------------------

    def _on_item(self, item) -> None:
        from kavka.cluster.watch import Snapshot
        self.view.apply(item)
        try:
            if isinstance(item, Snapshot):
                self._reconcile_topics()
                self._reconcile_roles(None)
                self._controller_dirty.set()
                return
            kind = item.ref.kind
            if kind == "topic":
                self._reconcile_topics()
                self._reconcile_roles(item.ref.topic)
            elif kind == "partition":
                self._apply_role((item.ref.topic, item.ref.partition))
            elif kind == "broker":
                self._controller_dirty.set()
        except Exception:
            log.exception("could not apply a cluster change (%r)", item)

    def _reconcile_topics(self) -> None:
        logs = self.broker.logs
        wanted = {name: v.value for name, v in self.view.topics.items()
                  if any(self.broker_id in r for r in v.value.replicas.values())}
        for name, info in list(logs.topics().items()):
            t = wanted.get(name)
            if t is None or str(info.topic_id) != t.topic_id:
                log.info("deleting local topic %s: the cluster does not place it here", name)
                for p in range(info.partitions):
                    self.replicas.apply((name, p), None)
                logs.delete_topic(name)
        for name, t in wanted.items():
            info = logs.topic(name)
            count = max(t.replicas) + 1
            if info is None:
                logs.create_topic(name, count, t.config, topic_id=uuid.UUID(t.topic_id))
                continue
            if info.partitions < count:
                logs.create_partitions(name, count)
            if dict(info.overrides) != t.config:
                changes = {k: None for k in info.overrides if k not in t.config}
                changes.update(t.config)
                logs.alter_topic_config(name, changes)
                log.info("topic %s: configs now %s", name, t.config)

    def _reconcile_roles(self, topic: str | None) -> None:
        for tp in list(self.view.partitions):
            if topic is None or tp[0] == topic:
                self._apply_role(tp)

    def _apply_role(self, tp) -> None:
        t = self.topic(tp[0])
        v = self.view.partitions.get(tp)
        if t is None or v is None or tp[1] not in t.replicas or self.log_dir_offline:
            self.replicas.apply(tp, None)
        else:
            s = v.value
            self.replicas.apply(tp, Assignment(t.replicas[tp[1]], s.leader, s.leader_epoch, s.isr, v.mod_revision))
        if tp[0] == OFFSETS_TOPIC:
            self._set_offsets_leadership({p for (name, p) in self.replicas.leaders if name == OFFSETS_TOPIC})

    def _set_offsets_leadership(self, led: set[int]) -> None:
        groups = self.broker.groups
        if groups is None or led == self._led_offsets:
            return
        gained, lost = led - self._led_offsets, self._led_offsets - led
        self._led_offsets = set(led)
        for p in sorted(lost):
            groups.unload_partition(p)
        for p in sorted(gained):
            groups.load_partition(p)

    def leads_offsets_partition(self, index: int) -> bool:
        return index in self._led_offsets

    async def _offsets_replicated(self, written) -> int:
        """Group records are answered once replicated (Kafka appends them with acks=all):
        NOT_COORDINATOR if leadership moved meanwhile, COORDINATOR_NOT_AVAILABLE after
        offsets.commit.timeout.ms; the client retries either way."""
        from kavka.protocol.errors import ErrorCode
        waits = []
        for index, offset in written:
            waited = self.replicas.wait_replicated((OFFSETS_TOPIC, index), offset, 1)
            if isinstance(waited, ErrorCode):
                if waited != ErrorCode.none:
                    return ErrorCode.not_coordinator
            else:
                waits.append(waited)
        if not waits:
            return ErrorCode.none
        timeout = self.broker.config.get("offsets.commit.timeout.ms") / 1000
        done, pending = await asyncio.wait(waits, timeout=timeout)
        for future in pending:
            future.cancel()
        if pending:
            return ErrorCode.coordinator_not_available
        errors = [f.result() for f in done if f.result() != ErrorCode.none]
        return ErrorCode.not_coordinator if errors else ErrorCode.none

    async def _propose_isr(self, tp, isr, leader_epoch: int, version: int) -> int | None:
        from kavka.cluster.errors import ClusterError
        current = self.view.partitions.get(tp)
        if current is None or current.mod_revision != version or current.value.leader_epoch != leader_epoch:
            return None
        try:
            return await self.store.leader_update_isr(self.session, tp[0], tp[1], current, list(isr))
        except ClusterError as exc:
            log.info("ISR change of %s-%d refused: %s", tp[0], tp[1], exc)
            return None

    # -- controller ------------------------------------------------------------------------

    def _on_claim(self, claim) -> None:
        self.claim = claim
        if claim is not None:
            self._controller_dirty.set()

    async def _controller_loop(self) -> None:
        """Leader elections when brokers come and go; every leader.imbalance.check.interval.seconds
        (with auto.leader.rebalance.enable) leadership back to preferred replicas."""
        from kavka.cluster.errors import ClusterError
        config = self.broker.config
        interval = config.get("leader.imbalance.check.interval.seconds")
        next_preferred = asyncio.get_running_loop().time() + interval
        while True:
            timeout = max(0.0, next_preferred - asyncio.get_running_loop().time())
            try:
                async with asyncio.timeout(timeout):   # not wait_for: it can swallow a cancel on 3.11
                    await self._controller_dirty.wait()
            except TimeoutError:
                pass
            self._controller_dirty.clear()
            claim = self.claim
            if claim is None:
                continue
            preferred = asyncio.get_running_loop().time() >= next_preferred
            if preferred:
                next_preferred = asyncio.get_running_loop().time() + interval
            try:
                await self._elect_leaders(claim)
                if preferred and config.get("auto.leader.rebalance.enable"):
                    await self._elect_preferred(claim)
            except ClusterError as exc:
                log.info("controller: %s; trying again", exc)
                await asyncio.sleep(0.2)
                self._controller_dirty.set()
            except Exception:
                log.exception("controller pass failed")
                await asyncio.sleep(0.5)
                self._controller_dirty.set()

    async def _elect_preferred(self, claim) -> None:
        live = self.eligible_broker_ids()
        for tp, v in list(self.view.partitions.items()):
            t = self.topic(tp[0])
            if t is None or tp[1] not in t.replicas:
                continue
            new = decisions.preferred(v.value, t.replicas[tp[1]], live, claim.epoch)
            if new is not None:
                log.info("controller: %s-%d back to its preferred leader %d (epoch %d)", tp[0], tp[1], new.leader,
                         new.leader_epoch)
                await self.store.write_partition(claim, tp[0], tp[1], new, v.mod_revision)

    async def _elect_leaders(self, claim) -> None:
        live = self.eligible_broker_ids()
        unclean = bool(self.broker.config.get("unclean.leader.election.enable"))
        for tp, v in list(self.view.partitions.items()):
            t = self.topic(tp[0])
            if t is None or tp[1] not in t.replicas:
                continue
            new = decisions.after_broker_change(v.value, t.replicas[tp[1]], live, claim.epoch, unclean)
            if new is not None:
                log.info("controller: %s-%d leader %d -> %d (epoch %d), isr %s", tp[0], tp[1], v.value.leader,
                         new.leader, new.leader_epoch, list(new.isr))
                await self.store.write_partition(claim, tp[0], tp[1], new, v.mod_revision)
