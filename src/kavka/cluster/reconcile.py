"""Reconciliation: etcd's state, as the watch delivers it, becomes this broker's state.

Each item of the watch (a Snapshot or one key's Change) is folded into the
ClusterView, then:

* topics in etcd with a replica here exist locally (created with etcd's topic
  id and configs, grown, reconfigured); local topics etcd no longer places here
  are deleted;
* every partition state becomes a role in the ReplicaManager (lead, follow,
  nothing), so replication follows the store and nothing else;
* the group coordinator loads the groups of the ``__consumer_offsets``
  partitions this broker starts to lead and drops those it stops leading, and the
  transaction coordinator does the same with ``__transaction_state`` (a partition
  led again at a new leader epoch is dropped and loaded again: another coordinator
  may have written to it meanwhile, and the epoch is the one its markers carry);
* a broker coming or going wakes the controller, and so does any change of a
  partition being reassigned (its ISR may now hold every target replica);
* a replica a reassignment removed from this broker loses its records (the
  whole local topic goes when no partition of it is placed here any more);
* this broker's dynamic settings and the cluster-wide defaults (KIP-226) become
  its own (kavka.log.log_manager ``set_broker_configs``, which also keeps a copy in
  the data directory).

A broker whose log directory is offline takes no role at all.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import TYPE_CHECKING

from kavka import group_configs
from kavka.cluster.view import Snapshot
from kavka.config import CLUSTER_DEFAULT, PER_BROKER
from kavka.internal_topics import OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC
from kavka.protocol.errors import ErrorCode
from kavka.replication.manager import Assignment

if TYPE_CHECKING:
    from kavka.cluster.node import ClusterNode

log = logging.getLogger("kavka.cluster")


class Reconciler:
    def __init__(self, node: "ClusterNode") -> None:
        self.node = node
        self.led_offsets: set[int] = set()
        self.led_txn: dict[int, int] = {}   # __transaction_state partition -> leader epoch

    def on_item(self, item) -> None:
        node = self.node
        node.view.apply(item)
        try:
            if isinstance(item, Snapshot):
                node.metadata.topics_changed()
                self.reconcile_broker_configs()
                self.reconcile_group_configs(None)
                self.reconcile_topics()
                self.reconcile_roles(None)
                node.controller.dirty.set()
            else:
                kind = item.ref.kind if item.ref is not None else None
                if kind == "topic":
                    node.metadata.topics_changed()
                    self.reconcile_topics()
                    self.reconcile_roles(item.ref.topic)
                    self._wake_for_reassignment(item.ref.topic, None)
                elif kind == "partition":
                    self.apply_role((item.ref.topic, item.ref.partition))
                    self._wake_for_reassignment(item.ref.topic, item.ref.partition)
                elif kind == "broker":
                    node.controller.dirty.set()
                elif kind == "broker_config":
                    self.reconcile_broker_configs()
                elif kind == "group_config":
                    self.reconcile_group_configs(item.ref.group)
        except Exception:
            log.exception("could not apply a cluster change (%r)", item)
        node.view_changed()

    def reconcile_broker_configs(self) -> None:
        """Both dynamic layers as etcd holds them (none there: none here)."""
        node = self.node
        logs = node.broker.logs
        for scope, key in ((PER_BROKER, node.broker_id), (CLUSTER_DEFAULT, None)):
            held = node.view.broker_configs.get(key)
            values = held.value.values if held is not None else {}
            if values == logs.broker_config_texts(scope):
                continue
            try:
                logs.set_broker_configs(scope, values)
            except ValueError as exc:
                log.warning("ignoring the cluster's dynamic broker configs (%s): %s", scope, exc)
                continue
            log.info("dynamic broker configs (%s) from the cluster: %s", scope,
                     ", ".join(f"{k}={v}" for k, v in sorted(values.items())) or "(none)")

    def reconcile_group_configs(self, group: str | None) -> None:
        """Hand the GROUP configs etcd holds (of ``group``; None: of every group, after a
        snapshot) to this broker's group coordinator, which applies a group's from its next
        heartbeat if it coordinates it, or later, after a failover."""
        groups = self.node.broker.groups
        if groups is None:
            return
        held = self.node.view.group_configs
        names = (set(held) | groups.query(lambda c: c.configured_groups())) if group is None else {group}
        for name in names:
            entry = held.get(name)
            try:
                settings = group_configs.coordinator_settings(
                    group_configs.parse(entry.value.values if entry is not None else {}))
            except ValueError as exc:
                log.warning("ignoring the cluster's configs of group %r: %s", name, exc)
                continue
            groups.query(lambda c, name=name, settings=settings: c.set_group_config(name, settings))

    def reconcile_topics(self) -> None:
        node = self.node
        logs, replicas = node.broker.logs, node.replicas
        wanted = {name: v.value for name, v in node.view.topics.items()
                  if any(node.broker_id in r for r in v.value.replicas.values())}
        for name, info in list(logs.topics().items()):
            t = wanted.get(name)
            if t is None or str(info.topic_id) != t.topic_id:
                log.info("deleting local topic %s: the cluster does not place it here", name)
                for p in range(info.partitions):
                    replicas.apply((name, p), None)
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

    def reconcile_roles(self, topic: str | None) -> None:
        for tp in list(self.node.view.partitions):
            if topic is None or tp[0] == topic:
                self.apply_role(tp)

    def _wake_for_reassignment(self, topic: str, partition: int | None) -> None:
        v = self.node.view.topics.get(topic)
        if v is not None and any(v.value.reassigning(p) for p in (v.value.replicas if partition is None
                                                                   else (partition,))):
            self.node.controller.dirty.set()

    def apply_role(self, tp) -> None:
        node = self.node
        t = node.view.topics.get(tp[0])
        v = node.view.partitions.get(tp)
        had_role = tp in node.replicas.leaders or tp in node.replicas.followers
        if t is None or v is None or tp[1] not in t.value.replicas or node.log_dir_offline:
            node.replicas.apply(tp, None)
        else:
            s = v.value
            replicas = t.value.replicas[tp[1]]
            node.replicas.apply(tp, Assignment(replicas, s.leader, s.leader_epoch, s.isr, v.mod_revision,
                                               t.value.adding.get(tp[1], ())))
            if had_role and node.broker_id not in replicas:
                self._drop_removed_replica(tp)
        if tp[0] == OFFSETS_TOPIC:
            self.set_offsets_leadership({p for (name, p) in node.replicas.leaders if name == OFFSETS_TOPIC})
        elif tp[0] == TRANSACTION_STATE_TOPIC:
            self.set_txn_leadership({p: role.assignment.leader_epoch
                                     for (name, p), role in node.replicas.leaders.items()
                                     if name == TRANSACTION_STATE_TOPIC})

    def _drop_removed_replica(self, tp) -> None:
        """A reassignment moved ``tp`` off this broker while other partitions of its topic
        stay: its records go (the partition itself stays, empty, as every partition of a
        topic held here does)."""
        partition = self.node.broker.logs.partition(*tp)
        if partition is not None and partition.log.log_end_offset > 0:
            log.info("%s-%d: reassigned away from this broker; deleting its records", *tp)
            partition.restart_at(0)

    def give_up_roles(self) -> None:
        replicas = self.node.replicas
        for tp in set(replicas.leaders) | set(replicas.followers):
            replicas.apply(tp, None)
        self.set_offsets_leadership(set())
        self.set_txn_leadership({})

    # -- the group coordinator follows the __consumer_offsets leaders --------------------------

    def set_offsets_leadership(self, led: set[int]) -> None:
        groups = self.node.broker.groups
        if groups is None or led == self.led_offsets:
            return
        gained, lost = led - self.led_offsets, self.led_offsets - led
        self.led_offsets = set(led)
        for p in sorted(lost):
            groups.unload_partition(p)
        for p in sorted(gained):
            groups.load_partition(p)

    # -- the transaction coordinator follows the __transaction_state leaders --------------------

    def set_txn_leadership(self, led: dict[int, int]) -> None:
        """``led``: partition -> leader epoch of the ``__transaction_state`` partitions led here."""
        transactions = self.node.broker.transactions
        if transactions is None or led == self.led_txn:
            return
        lost = sorted(p for p, epoch in self.led_txn.items() if led.get(p) != epoch)
        gained = sorted(p for p, epoch in led.items() if self.led_txn.get(p) != epoch)
        self.led_txn = dict(led)
        for p in lost:
            transactions.unload_partition(p)
        for p in gained:
            log.info("coordinating the transactional ids of %s-%d at coordinator epoch %d",
                     TRANSACTION_STATE_TOPIC, p, led[p])
            transactions.load_partition(p)

    # -- coordinator records are answered once replicated ----------------------------------------

    async def offsets_replicated(self, written) -> int:
        """Group records are answered once replicated (Kafka appends them with acks=all):
        NOT_COORDINATOR if leadership moved meanwhile, COORDINATOR_NOT_AVAILABLE after
        offsets.commit.timeout.ms; the client retries either way."""
        timeout = self.node.broker.config.get("offsets.commit.timeout.ms") / 1000
        return await self._replicated(OFFSETS_TOPIC, written, 1, timeout)

    async def txn_replicated(self, written) -> int:
        """Transaction state records are answered once the ISR holds them, with the topic's
        ``min.insync.replicas`` (``transaction.state.log.min.isr``) as Kafka's acks=all append
        of them: NOT_COORDINATOR if leadership moved, COORDINATOR_NOT_AVAILABLE if the ISR is
        too small or the write does not replicate within ``offsets.commit.timeout.ms``."""
        timeout = self.node.broker.config.get("offsets.commit.timeout.ms") / 1000
        return await self._replicated(TRANSACTION_STATE_TOPIC, written, self._txn_min_isr(), timeout)

    def txn_partition_writable(self, index: int) -> bool:
        """Whether the ISR of a ``__transaction_state`` partition led here has its
        ``min.insync.replicas``, so that a write may go in."""
        return self.node.replicas.produce_check((TRANSACTION_STATE_TOPIC, index), -1,
                                                self._txn_min_isr()) == ErrorCode.none

    def _txn_min_isr(self) -> int:
        partition = self.node.broker.logs.partition(TRANSACTION_STATE_TOPIC, 0)
        return partition.config["min.insync.replicas"] if partition is not None else 1

    async def _replicated(self, topic: str, written, min_isr: int, timeout: float) -> int:
        replicas = self.node.replicas
        waits = []
        for index, offset in written:
            waited = replicas.wait_replicated((topic, index), offset, min_isr)
            if isinstance(waited, ErrorCode):
                if waited != ErrorCode.none:
                    return _journal_error(waited)
            else:
                waits.append(waited)
        if not waits:
            return ErrorCode.none
        done, pending = await asyncio.wait(waits, timeout=timeout)
        for future in pending:
            future.cancel()
        if pending:
            return ErrorCode.coordinator_not_available
        errors = [f.result() for f in done if f.result() != ErrorCode.none]
        return _journal_error(errors[0]) if errors else ErrorCode.none


def _journal_error(error: ErrorCode) -> ErrorCode:
    """A coordinator's failed replicated append as its client hears it (Kafka's mapping):
    too few replicas means retry here later, anything else means find the coordinator again."""
    if error in (ErrorCode.not_enough_replicas, ErrorCode.not_enough_replicas_after_append):
        return ErrorCode.coordinator_not_available
    return ErrorCode.not_coordinator
