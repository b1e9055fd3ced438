"""The controller: the one broker that writes topics and leaders into etcd.

One broker is elected (election.py); its claim carries the controller epoch,
which fences every write it makes (state_store.py).  It

* creates, grows, reconfigures and deletes topics: placing replicas
  (``decisions.place``), checking ``max.partitions.per.broker`` against the
  whole cluster's assignment, writing the topic and its partition states in one
  transaction;
* elects leaders from the ISR when a broker's registration comes or goes, and
  (``auto.leader.rebalance.enable``) moves leadership back to preferred replicas
  every ``leader.imbalance.check.interval.seconds``;
* reassigns partitions (KIP-455): it records the target in the topic's
  assignment (the replicas become target + those being removed, with the
  ``adding`` and ``removing`` sets), the added brokers start following; when
  every target replica is in the ISR it completes the move in one transaction
  (replicas = target, the removed ones out of the ISR, a removed leader
  replaced).  The state is all in etcd, so a new controller carries on;
* runs the elections clients ask for (ElectLeaders): PREFERRED moves leadership
  to the first replica if it is live and in the ISR (``decisions.preferred``),
  UNCLEAN gives a partition without a live leader any live replica
  (``decisions.unclean``); each written with a compare-and-swap on the partition
  state, re-decided from the state found when another write came first.

Any other broker receiving a topic change forwards it here over the Kafka
protocol (as Kafka brokers forward to their controller, KIP-590), then waits
until its own view shows the change: a client that created a topic can use it
at the broker it asked.  If that takes longer than the request's wait
(``VIEW_WAIT``), the client is told REQUEST_TIMED_OUT: the change was made but
this broker has not seen it yet, and a retry will find it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import uuid
from typing import TYPE_CHECKING, Awaitable, Callable, Mapping

from kavka.cluster import decisions
from kavka.cluster.errors import ClusterError, ConcurrentUpdate, EtcdUnavailable
from kavka.cluster.model import NO_LEADER, TopicAssignment
from kavka.internal_topics import BROKER_CLIENT_PREFIX
from kavka.metadata.model import NO_REASSIGNMENT_MESSAGE, OK, AdminResult, ElectionType, NewTopic, election_result
from kavka.protocol.builders import make
from kavka.protocol.errors import ErrorCode

if TYPE_CHECKING:
    from kavka.cluster.node import ClusterNode

log = logging.getLogger("kavka.cluster")

FORWARD_TIMEOUT_MS = 10_000   # the timeout a forwarded admin request carries
VIEW_WAIT = 5.0               # seconds a change may take to reach this broker's view
REASSIGN_ATTEMPTS = 5         # a reassignment's write tried again when the topic changed meanwhile
ELECTION_ATTEMPTS = 3         # compare-and-swap tries of one requested election


class ControllerUnavailable(Exception):
    """No controller, or it could not be reached: the client should retry."""


class ViewTimeout(Exception):
    """A change was made, but this broker's view did not show it in time."""


def _ms(n: int) -> datetime.timedelta:
    return datetime.timedelta(milliseconds=n)


class Controller:
    def __init__(self, node: "ClusterNode") -> None:
        self.node = node
        self.claim = None                 # this broker's controller claim while it holds one
        self.dirty = asyncio.Event()      # brokers changed: elect leaders again

    @property
    def view(self):
        return self.node.view

    def on_claim(self, claim) -> None:
        self.claim = claim
        if claim is not None:
            self.dirty.set()

    def is_controller(self) -> bool:
        return self.claim is not None and self.node.session.is_live

    def _claim(self):
        """This broker's controller claim; ControllerUnavailable if it is not the controller."""
        claim = self.claim
        if claim is None or not self.node.session.is_live:
            raise ControllerUnavailable("this broker is not the controller")
        return claim

    # -- topic writes, on the controller -------------------------------------------------------

    async def create_topic(self, topic: NewTopic) -> uuid.UUID:
        """Create in etcd; raises PlacementError, OverCapacity, ConcurrentUpdate, ControllerUnavailable."""
        claim = self._claim()
        live = self.node.eligible_broker_ids()
        replicas = (dict(topic.assignments) if topic.assignments
                    else decisions.place(topic.name, range(topic.partitions), topic.replication_factor, live))
        self._check_capacity(replicas)
        topic_id = uuid.uuid4()
        states = {p: decisions.initial_state(r, live, claim.epoch) for p, r in replicas.items()}
        await self.node.store.create_topic(
            claim, TopicAssignment(topic.name, str(topic_id), replicas, dict(topic.overrides)), states)
        return topic_id

    async def _add_partitions(self, name: str, total: int, assignments) -> None:
        claim = self._claim()
        v = self.view.topics[name]
        current = v.value
        existing = len(current.replicas)
        live = self.node.eligible_broker_ids()
        rf = len(current.target(0))
        added = dict(assignments) if assignments else decisions.place(name, range(existing, total), rf, live)
        self._check_capacity(added)
        states = {p: decisions.initial_state(r, live, claim.epoch) for p, r in added.items()}
        grown = dataclasses.replace(current, replicas={**current.replicas, **added})
        await self.node.store.add_partitions(claim, grown, v.mod_revision, states)

    async def _write_config(self, name: str, overrides: dict[str, str]) -> AdminResult | None:
        v = self.view.topics.get(name)
        if v is None:
            return AdminResult(ErrorCode.unknown_topic_or_partition, f"The topic '{name}' does not exist.")
        await self.node.store.write_topic(self._claim(), dataclasses.replace(v.value, config=dict(overrides)),
                                          v.mod_revision)
        return None

    async def delete_topic(self, name: str) -> None:
        claim = self._claim()
        v = self.view.topics.get(name)
        if v is not None:
            await self.node.store.delete_topic(claim, name, v.mod_revision)

    async def alter_reassignments(self, name: str, targets: Mapping[int, tuple[int, ...] | None]
                                  ) -> dict[int, AdminResult]:
        """Start (a target) or cancel (None) reassignments of ``name``'s partitions, in one
        write of the topic (and of the states a cancel changes)."""
        claim = self._claim()
        v = self.view.topics.get(name)
        if v is None:
            return {p: AdminResult(ErrorCode.unknown_topic_or_partition, f"Unable to find a topic named {name}.")
                    for p in targets}
        t = v.value
        replicas, adding, removing = dict(t.replicas), dict(t.adding), dict(t.removing)
        states: dict[int, tuple] = {}
        results = {p: self._reassign_one(claim, t, p, target, (replicas, adding, removing), states)
                   for p, target in targets.items()}
        if any(r.ok for r in results.values()):
            changed = dataclasses.replace(t, replicas=replicas, adding=_nonempty(adding),
                                          removing=_nonempty(removing))
            if states:
                await self.node.store.write_topic_and_partitions(claim, changed, v.mod_revision, states)
            else:
                await self.node.store.write_topic(claim, changed, v.mod_revision)
            log.info("controller: reassigning %s: %s", name,
                     {p: (list(target) if target is not None else "cancel") for p, target in targets.items()
                      if results[p].ok})
            self.dirty.set()   # a reassignment may complete at once (only removals, a new order)
        return results

    def _reassign_one(self, claim, t: TopicAssignment, p: int, target, tables, states) -> AdminResult:
        """One partition's change into ``tables`` (replicas, adding, removing) and ``states``."""
        replicas, adding, removing = tables
        if p not in t.replicas or (t.name, p) not in self.view.partitions:
            return AdminResult(ErrorCode.unknown_topic_or_partition, f"Unable to find partition {t.name}:{p}.")
        if target is not None:
            replicas[p], adding[p], removing[p] = decisions.reassignment(t.replicas[p], target)
            return OK
        if not t.reassigning(p):
            return AdminResult(ErrorCode.no_reassignment_in_progress, NO_REASSIGNMENT_MESSAGE)
        v = self.view.partitions[(t.name, p)]
        unclean = t.config.get("unclean.leader.election.enable",
                               str(self.node.broker.config.get("unclean.leader.election.enable"))).lower() == "true"
        reverted = decisions.revert_reassignment(v.value, t.replicas[p], t.adding.get(p, ()),
                                                 self.node.eligible_broker_ids(), claim.epoch, unclean)
        if reverted is None:
            return AdminResult(ErrorCode.invalid_replica_assignment,
                               f"Unable to revert partition assignment for {t.name}:{p} because it would "
                               "require an unclean leader election.")
        replicas[p], state = reverted
        adding.pop(p, None)
        removing.pop(p, None)
        states[p] = (state, v.mod_revision)
        return OK

    def capacity_refusal(self, name: str, partitions: range, replication_factor: int | None,
                         assignments: Mapping[int, tuple[int, ...]] | None) -> str | None:
        """Why the controller would refuse these partitions for max.partitions.per.broker,
        or None (checked by the receiving broker first, so validate-only answers it too).
        ``replication_factor`` None: that of the existing topic ``name``."""
        try:
            if assignments is None:
                if replication_factor is None:
                    replication_factor = len(self.view.topics[name].value.replicas[0])
                assignments = decisions.place(name, partitions, replication_factor,
                                              self.node.eligible_broker_ids())
            self._check_capacity(assignments)
        except decisions.OverCapacity as exc:
            return str(exc)
        except (decisions.PlacementError, KeyError):
            pass  # answered by the controller's own checks
        return None

    def _check_capacity(self, adding: Mapping[int, tuple[int, ...]]) -> None:
        """OverCapacity when a target broker would hold more than max.partitions.per.broker
        replicas (counted from the cluster view, every topic's assignment).  The
        controller's setting rules, as Kafka's controller-side policies do; a replica
        broker's own LogManager cap would otherwise refuse the local creation after
        etcd already holds the topic."""
        held = decisions.replicas_per_broker(v.value.replicas for v in self.view.topics.values())
        decisions.check_capacity(held, adding, self.node.broker.config.get("max.partitions.per.broker"))

    # -- from any broker: here, or forwarded to the controller ---------------------------------

    async def create_topic_anywhere(self, topic: NewTopic) -> AdminResult:
        """Create on the controller (here or forwarded as CreateTopics)."""
        name, assignments = topic.name, topic.assignments

        def request():
            from kio.schema.create_topics.v5 import request as q
            body = make(q.CreateTopicsRequest, timeout=_ms(FORWARD_TIMEOUT_MS), validate_only=False, topics=(
                make(q.CreatableTopic, name=name, num_partitions=-1 if assignments else topic.partitions,
                     replication_factor=-1 if assignments else topic.replication_factor,
                     assignments=tuple(make(q.CreatableReplicaAssignment, partition_index=p, broker_ids=tuple(r))
                                       for p, r in sorted((assignments or {}).items())),
                     configs=tuple(make(q.CreatableTopicConfig, name=k, value=v)
                                   for k, v in topic.overrides.items())),))
            return body, lambda answer: (answer.topics[0].error_code, answer.topics[0].error_message)

        return await self._through_controller(
            lambda: self.create_topic(topic), request, lambda: name in self.view.topics and all(
                (name, p) in self.view.partitions for p in self.view.topics[name].value.replicas),
            (ErrorCode.topic_already_exists, f"Topic '{name}' already exists."))

    async def add_partitions_anywhere(self, name: str, total: int,
                                      assignments: Mapping[int, tuple[int, ...]] | None) -> AdminResult:
        """Grow a topic to ``total`` partitions on the controller (here or forwarded)."""
        def request():
            from kio.schema.create_partitions.v3 import request as q
            body = make(q.CreatePartitionsRequest, timeout=_ms(FORWARD_TIMEOUT_MS), validate_only=False, topics=(
                make(q.CreatePartitionsTopic, name=name, count=total, assignments=None if not assignments
                     else tuple(make(q.CreatePartitionsAssignment, broker_ids=tuple(r))
                                for _, r in sorted(assignments.items()))),))
            return body, lambda answer: (answer.results[0].error_code, answer.results[0].error_message)

        return await self._through_controller(
            lambda: self._add_partitions(name, total, assignments), request,
            lambda: name in self.view.topics and len(self.view.topics[name].value.replicas) >= total,
            (ErrorCode.reassignment_in_progress, f"Topic '{name}' changed meanwhile; try again."))

    async def alter_topic_config_anywhere(self, name: str, overrides: dict[str, str]) -> AdminResult:
        """Replace a topic's config overrides (on the controller, here or forwarded as an
        AlterConfigs of the whole set); every replica applies them from etcd."""
        def request():
            from kio.schema.alter_configs.v2 import request as q
            body = make(q.AlterConfigsRequest, validate_only=False, resources=(
                make(q.AlterConfigsResource, resource_type=2, resource_name=name, configs=tuple(
                    make(q.AlterableConfig, name=k, value=v) for k, v in sorted(overrides.items()))),))
            return body, lambda answer: (answer.responses[0].error_code, answer.responses[0].error_message)

        return await self._through_controller(
            lambda: self._write_config(name, overrides), request,
            lambda: name in self.view.topics and self.view.topics[name].value.config == overrides,
            (ErrorCode.reassignment_in_progress, f"Topic '{name}' changed meanwhile; try again."))

    async def delete_topic_anywhere(self, name: str) -> AdminResult:
        """Delete on the controller (here or forwarded as DeleteTopics)."""
        def request():
            from kio.schema.delete_topics.v5 import request as q
            body = make(q.DeleteTopicsRequest, topic_names=(name,), timeout=_ms(FORWARD_TIMEOUT_MS))
            return body, lambda answer: (answer.responses[0].error_code, answer.responses[0].error_message)

        return await self._through_controller(
            lambda: self.delete_topic(name), request, lambda: name not in self.view.topics,
            (ErrorCode.reassignment_in_progress, f"Topic '{name}' changed meanwhile; try again."))

    async def alter_reassignments_anywhere(self, name: str, targets: Mapping[int, tuple[int, ...] | None]
                                           ) -> dict[int, AdminResult]:
        """Reassign on the controller (here or forwarded as AlterPartitionReassignments);
        the accepted changes are answered once this broker's view shows them."""
        try:
            results = await self._reassign_on_controller(name, targets)
            accepted = {p: targets[p] for p, r in results.items() if r.ok}
            await self.node.wait_seen(lambda: self._shows_reassignment(name, accepted), VIEW_WAIT)
        except ControllerUnavailable as exc:
            return {p: AdminResult(ErrorCode.not_controller, str(exc)) for p in targets}
        except ViewTimeout as exc:
            return {p: AdminResult(ErrorCode.request_timed_out, str(exc)) if r.ok else r for p, r in results.items()}
        return results

    async def _reassign_on_controller(self, name: str, targets) -> dict[int, AdminResult]:
        if not self.is_controller():
            return await self._forward_reassignments(name, targets)
        for _ in range(REASSIGN_ATTEMPTS):   # the topic's key may move under us (a completion)
            try:
                return await self.alter_reassignments(name, targets)
            except ConcurrentUpdate:
                await asyncio.sleep(0.05)
        return {p: AdminResult(ErrorCode.reassignment_in_progress, f"Topic '{name}' changed meanwhile; try again.")
                for p in targets}

    async def _forward_reassignments(self, name: str, targets) -> dict[int, AdminResult]:
        from kio.schema.alter_partition_reassignments.v0 import request as q
        body = make(q.AlterPartitionReassignmentsRequest, timeout=_ms(FORWARD_TIMEOUT_MS), topics=(
            make(q.ReassignableTopic, name=name, partitions=tuple(
                make(q.ReassignablePartition, partition_index=p, replicas=None if r is None else tuple(r))
                for p, r in sorted(targets.items()))),))
        answer = await self._ask_controller(body)
        if answer.error_code != ErrorCode.none:
            return {p: AdminResult(ErrorCode(answer.error_code), answer.error_message) for p in targets}
        return {r.partition_index: AdminResult(ErrorCode(r.error_code), r.error_message)
                for topic in answer.responses for r in topic.partitions}

    def _shows_reassignment(self, name: str, accepted: Mapping[int, tuple[int, ...] | None]) -> bool:
        """The view has every accepted change: a cancelled partition is not reassigning, a
        reassigned one's replicas start with its target (while moving and once moved)."""
        v = self.view.topics.get(name)
        if v is None:
            return not accepted
        t = v.value
        return all(not t.reassigning(p) if target is None else t.replicas.get(p, ())[:len(target)] == tuple(target)
                   for p, target in accepted.items())

    async def _through_controller(self, here: Callable[[], Awaitable[object]], request,
                                  seen: Callable[[], bool], conflict: tuple[int, str]) -> AdminResult:
        """Run ``here()`` if this broker is the controller, else send ``request()`` (a kio
        request and a function reading (error code, message) from its answer) to the
        controller; then wait until this broker's view shows the change.  ``here()`` may
        answer an AdminResult to refuse at once."""
        try:
            if self.is_controller():
                refused = await here()
                if isinstance(refused, AdminResult):
                    return refused
            else:
                body, answer_of = request()
                code, message = answer_of(await self._ask_controller(body))
                if code != ErrorCode.none:
                    return AdminResult(ErrorCode(code), message)
            await self.node.wait_seen(seen, VIEW_WAIT)
        except decisions.PlacementError as exc:
            return AdminResult(ErrorCode.invalid_replication_factor, str(exc))
        except decisions.OverCapacity as exc:
            return AdminResult(ErrorCode.policy_violation, str(exc))
        except ConcurrentUpdate:
            return AdminResult(ErrorCode(conflict[0]), conflict[1])
        except ControllerUnavailable as exc:
            return AdminResult(ErrorCode.not_controller, str(exc))
        except ViewTimeout as exc:
            return AdminResult(ErrorCode.request_timed_out, str(exc))
        return OK

    async def elect_leaders_anywhere(self, election: ElectionType,
                                     partitions: list[tuple[str, int]]) -> list[AdminResult]:
        """Each partition's election on the controller (here, or forwarded as one
        ElectLeaders); then wait until this broker's view shows the leaders elected."""
        try:
            if self.is_controller():
                results = [await self._elect_requested(election, tp) for tp in partitions]
            else:
                answer = await self._ask_controller(_election_request(election, partitions))
                results = _election_answers(answer, partitions)
            elected = [tp for tp, result in zip(partitions, results) if result.ok]
            await self.node.wait_seen(lambda: all(self._has_elected(election, tp) for tp in elected), VIEW_WAIT)
        except ControllerUnavailable as exc:
            return [AdminResult(ErrorCode.not_controller, str(exc))] * len(partitions)
        except ViewTimeout as exc:
            return [AdminResult(ErrorCode.request_timed_out, str(exc)) if r.ok else r for r in results]
        return results

    async def _elect_requested(self, election: ElectionType, tp: tuple[str, int]) -> AdminResult:
        """One partition's election, here on the controller."""
        current = self.view.partitions.get(tp)
        try:
            for _ in range(ELECTION_ATTEMPTS):
                claim = self._claim()
                code, new = self._decide(election, tp, current, claim.epoch)
                if new is None:
                    return election_result(code, *tp)
                try:
                    await self.node.store.write_partition(claim, tp[0], tp[1], new, current.mod_revision)
                except ConcurrentUpdate as exc:
                    current = exc.current   # decide again from what another write left
                    continue
                log.info("controller: %s-%d leader %d -> %d (epoch %d) by a requested %s election", tp[0], tp[1],
                         current.value.leader, new.leader, new.leader_epoch, election.name.lower())
                return OK
        except EtcdUnavailable as exc:
            return AdminResult(ErrorCode.request_timed_out, str(exc))
        except ClusterError as exc:   # this broker's controller claim is gone
            return AdminResult(ErrorCode.not_controller, str(exc))
        return AdminResult(ErrorCode.request_timed_out, f"{tp[0]}-{tp[1]} kept changing meanwhile; try again.")

    def _decide(self, election: ElectionType, tp: tuple[str, int], current, controller_epoch: int):
        """(error code, new partition state or None) of electing ``tp`` from ``current``."""
        replicas = self._replicas(tp)
        if current is None or replicas is None:
            return ErrorCode.unknown_topic_or_partition, None
        state, live = current.value, self.node.eligible_broker_ids()
        if election == ElectionType.PREFERRED:
            if state.leader == replicas[0]:
                return ErrorCode.election_not_needed, None
            new = decisions.preferred(state, replicas, live, controller_epoch)
            return (ErrorCode.preferred_leader_not_available, None) if new is None else (ErrorCode.none, new)
        if state.leader != NO_LEADER and state.leader in live:
            return ErrorCode.election_not_needed, None
        new = decisions.unclean(state, replicas, live, controller_epoch)
        return (ErrorCode.eligible_leaders_not_available, None) if new is None else (ErrorCode.none, new)

    def _has_elected(self, election: ElectionType, tp: tuple[str, int]) -> bool:
        """Whether this broker's view shows ``tp`` with the leader the election gave it."""
        v, replicas = self.view.partitions.get(tp), self._replicas(tp)
        if v is None or replicas is None:
            return False
        return v.value.leader == replicas[0] if election == ElectionType.PREFERRED else v.value.leader != NO_LEADER

    async def _ask_controller(self, body):
        from kavka.replication.peer import Peer, PeerError
        address = self.node.address_of(self.node.controller_id())
        if address is None:
            raise ControllerUnavailable("no controller is known yet")
        try:
            peer = await Peer.connect(*address, client_id=f"{BROKER_CLIENT_PREFIX}{self.node.broker_id}",
                                      security=self.node.peer_security)
            try:
                return await peer.request(body, 15.0)
            finally:
                peer.close()
        except PeerError as exc:
            raise ControllerUnavailable(f"controller unreachable: {exc}") from None

    # -- leader elections ----------------------------------------------------------------------

    async def run(self) -> None:
        """Leader elections when brokers come and go; every leader.imbalance.check.interval.seconds
        (with auto.leader.rebalance.enable) leadership back to preferred replicas."""
        config = self.node.broker.config
        interval = config.get("leader.imbalance.check.interval.seconds")
        loop = asyncio.get_running_loop()
        next_preferred = loop.time() + interval
        while True:
            timeout = max(0.0, next_preferred - loop.time())
            try:
                async with asyncio.timeout(timeout):   # not wait_for: it can swallow a cancel on 3.11
                    await self.dirty.wait()
            except TimeoutError:
                pass
            self.dirty.clear()
            claim = self.claim
            if claim is None:
                continue
            preferred = loop.time() >= next_preferred
            if preferred:
                next_preferred = loop.time() + interval
            try:
                await self._elect_leaders(claim)
                await self._complete_reassignments(claim)
                if preferred and config.get("auto.leader.rebalance.enable"):
                    await self._elect_preferred(claim)
            except ClusterError as exc:
                log.info("controller: %s; trying again", exc)
                await asyncio.sleep(0.2)
                self.dirty.set()
            except Exception:
                log.exception("controller pass failed")
                await asyncio.sleep(0.5)
                self.dirty.set()

    async def _elect_preferred(self, claim) -> None:
        live = self.node.eligible_broker_ids()
        for tp, v in list(self.view.partitions.items()):
            replicas = self._replicas(tp)
            new = None if replicas is None else decisions.preferred(v.value, replicas, live, claim.epoch)
            if new is not None:
                log.info("controller: %s-%d back to its preferred leader %d (epoch %d)", tp[0], tp[1], new.leader,
                         new.leader_epoch)
                await self.node.store.write_partition(claim, tp[0], tp[1], new, v.mod_revision)

    async def _elect_leaders(self, claim) -> None:
        live = self.node.eligible_broker_ids()
        unclean = bool(self.node.broker.config.get("unclean.leader.election.enable"))
        for tp, v in list(self.view.partitions.items()):
            replicas = self._replicas(tp)
            new = (None if replicas is None
                   else decisions.after_broker_change(v.value, replicas, live, claim.epoch, unclean))
            if new is not None:
                log.info("controller: %s-%d leader %d -> %d (epoch %d), isr %s", tp[0], tp[1], v.value.leader,
                         new.leader, new.leader_epoch, list(new.isr))
                await self.node.store.write_partition(claim, tp[0], tp[1], new, v.mod_revision)

    async def _complete_reassignments(self, claim) -> None:
        """Finish every reassignment whose target replicas are all in the ISR (one
        transaction per topic: its assignment and the states of the partitions done)."""
        live = self.node.eligible_broker_ids()
        for name, v in list(self.view.topics.items()):
            t = v.value
            done: dict[int, tuple] = {}
            replicas = dict(t.replicas)
            for p in sorted(set(t.adding) | set(t.removing)):
                s = self.view.partitions.get((name, p))
                completed = None if s is None else decisions.complete_reassignment(
                    s.value, t.replicas[p], t.removing.get(p, ()), live, claim.epoch)
                if completed is not None:
                    replicas[p], state = completed
                    done[p] = (state, s.mod_revision)
            if not done:
                continue
            finished = dataclasses.replace(
                t, replicas=replicas, adding={p: r for p, r in t.adding.items() if p not in done},
                removing={p: r for p, r in t.removing.items() if p not in done})
            await self.node.store.write_topic_and_partitions(claim, finished, v.mod_revision, done)
            for p, (state, _) in sorted(done.items()):
                log.info("controller: reassignment of %s-%d done: replicas %s, leader %d (epoch %d), isr %s", name, p,
                         list(replicas[p]), state.leader, state.leader_epoch, list(state.isr))

    def _replicas(self, tp) -> tuple[int, ...] | None:
        t = self.view.topics.get(tp[0])
        return None if t is None or tp[1] not in t.value.replicas else t.value.replicas[tp[1]]


def _nonempty(table: dict[int, tuple[int, ...]]) -> dict[int, tuple[int, ...]]:
    return {p: r for p, r in table.items() if r}


def _election_request(election: ElectionType, partitions: list[tuple[str, int]]):
    from kio.schema.elect_leaders.v2 import request as q
    topics: dict[str, list[int]] = {}
    for topic, index in partitions:
        topics.setdefault(topic, []).append(index)
    return make(q.ElectLeadersRequest, election_type=int(election), timeout=_ms(FORWARD_TIMEOUT_MS),
                topic_partitions=tuple(make(q.TopicPartitions, topic=t, partitions=tuple(p))
                                       for t, p in topics.items()))


def _election_answers(answer, partitions: list[tuple[str, int]]) -> list[AdminResult]:
    """The controller's ElectLeaders answer as one result per partition asked for."""
    found = {(t.topic, p.partition_id): AdminResult(ErrorCode(p.error_code), p.error_message)
             for t in answer.replica_election_results for p in t.partition_result}
    missing = AdminResult(ErrorCode(answer.error_code) if answer.error_code else ErrorCode.unknown_server_error,
                          "the controller did not answer for this partition")
    return [found.get(tp, missing) for tp in partitions]
