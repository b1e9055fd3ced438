"""The metadata boundary (kavka.metadata) of a broker in a cluster: etcd's view.

Reads come from the broker's ClusterView (kept current by the watch, watch.py);
topic changes and requested leader elections go to the controller
(controller.py), here or forwarded to another broker, and are answered once this
broker's view shows them.  Feature
levels (UpdateFeatures) are written by the broker that was asked, straight to
etcd's ``features`` key by compare-and-swap (state_store.py): deciding whether an
update is acceptable needs nothing but the levels, so no controller is involved.  Topic
configs are resolved against this broker's defaults, as a replica would.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import TYPE_CHECKING, Mapping, Sequence

from kavka.cluster.controller import VIEW_WAIT, ViewTimeout
from kavka.cluster.errors import ClusterError, ConcurrentUpdate, EtcdUnavailable
from kavka.cluster.model import NO_LEADER, BrokerConfigs, GroupConfigs
from kavka.cluster.quorum import quorum_state
from kavka.cluster.state_store import txn_revision
from kavka.config import PER_BROKER
from kavka.internal_topics import OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC, coordinator_partition
from kavka.log.errors import InvalidTopic, LogError, PolicyViolation, TopicAlreadyExists
from kavka.log.log_manager import META_DIR
from kavka.log.topic_catalog import unify_collision_chars, validate_topic_name
from kavka.metadata.features import (DEFAULT_LEVELS, FeatureUpdate, FinalizedFeatures,
                                    InvalidUpdateVersion, apply_updates)
from kavka.metadata.interfaces import MetadataView, TopicAdmin, TopicPartition
from kavka.metadata.model import (
    OK,
    AdminResult,
    BrokerEndpoint,
    ElectionType,
    NewTopic,
    PartitionState,
    QuorumState,
    Reassignment,
    TopicDescription,
)
from kavka.protocol.errors import ErrorCode
from kavka.security.acl import AclBinding, AclSet
from kavka.security.credentials import FILE_NAME as SCRAM_FILE
from kavka.security.credentials import Deletion, ScramCredentialSet, Upsert, encode_credential
from kavka.security.quota import ClientQuotas, Entity, entity_key

log = logging.getLogger("kavka.cluster")

if TYPE_CHECKING:
    from kavka.cluster.node import ClusterNode


CONFIG_VIEW_WAIT = 5.0   # seconds a dynamic config change may take to come back through the watch


class EtcdMetadata(MetadataView, TopicAdmin):
    def __init__(self, node: "ClusterNode") -> None:
        self.node = node
        self.view = node.view
        self.logs = node.broker.logs
        self._described: dict[str, tuple[int, TopicDescription]] = {}   # name -> (mod revision, description)
        self._by_id: dict[uuid.UUID, str] | None = None
        self._unified: dict[str, str] | None = None      # name with '.' as '_' -> name
        if (self.logs.data_dir / META_DIR / SCRAM_FILE).exists():
            log.warning("%s in %s is not used in a cluster: SCRAM credentials are kept in etcd (create them "
                        "again with AlterUserScramCredentials)", SCRAM_FILE, self.logs.data_dir / META_DIR)

    def topics_changed(self) -> None:
        """A topic key changed (or a snapshot replaced the view): forget the derived indexes."""
        self._by_id = None
        self._unified = None

    # -- the read view -----------------------------------------------------------------------

    @property
    def cluster_id(self) -> str:
        return self.node.settings.cluster_id

    def brokers(self) -> list[BrokerEndpoint]:
        return [BrokerEndpoint(b.broker_id, b.host, b.port, b.rack, b.listeners)
                for b in (v.value for _, v in sorted(self.view.brokers.items()))]

    def live_broker_ids(self) -> frozenset[int]:
        return frozenset(self.view.brokers)

    async def quorum(self) -> QuorumState | None:
        try:
            return await quorum_state(self.node.etcd)
        except Exception as exc:   # gRPC errors of the member listing are not the shell's
            log.warning("etcd quorum not described: %s: %s", type(exc).__name__, exc)
            return None

    def controller_id(self) -> int:
        c = self.view.controller
        return -1 if c is None else c.value.broker_id

    def topic_names(self) -> list[str]:
        return sorted(self.view.topics)

    def topic(self, name: str) -> TopicDescription | None:
        v = self.view.topics.get(name)
        if v is None:
            return None
        cached = self._described.get(name)
        if cached is not None and cached[0] == v.mod_revision:
            return cached[1]
        t = v.value
        info = self.logs.describe_remote(name, uuid.UUID(t.topic_id), len(t.replicas), t.config)
        rf = len(t.replicas[0]) if 0 in t.replicas else 0
        described = TopicDescription(name, info.topic_id, info.partitions, rf, info.config, info.overrides)
        if len(self._described) > 2 * len(self.view.topics) + 64:   # deleted topics' entries
            self._described = {n: d for n, d in self._described.items() if n in self.view.topics}
        self._described[name] = (v.mod_revision, described)
        return described

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicDescription | None:
        if self._by_id is None:
            self._by_id = {uuid.UUID(v.value.topic_id): name for name, v in self.view.topics.items()}
        name = self._by_id.get(topic_id)
        return None if name is None else self.topic(name)

    def partition(self, topic: str, index: int) -> PartitionState | None:
        t = self.view.topics.get(topic)
        v = self.view.partitions.get((topic, index))
        if t is None or v is None or index not in t.value.replicas:
            return None
        replicas = t.value.replicas[index]
        eligible = self.node.eligible_broker_ids()
        s = v.value
        return PartitionState(s.leader, s.leader_epoch, tuple(replicas), tuple(s.isr),
                              tuple(r for r in replicas if r not in eligible))

    def has_partition(self, topic: str, index: int) -> bool:
        return self.partition(topic, index) is not None

    def group_coordinator(self, group_id: str) -> BrokerEndpoint | None:
        return self._journal_leader(OFFSETS_TOPIC, group_id)

    def transaction_coordinator(self, transactional_id: str) -> BrokerEndpoint | None:
        return self._journal_leader(TRANSACTION_STATE_TOPIC, transactional_id)

    def _journal_leader(self, topic: str, key: str) -> BrokerEndpoint | None:
        """The leader of ``key``'s partition of a coordinator's journal topic: its coordinator."""
        t = self.view.topics.get(topic)
        if t is None:
            return None
        p = self.partition(topic, coordinator_partition(key, len(t.value.replicas)))
        if p is None or p.leader == NO_LEADER or p.leader not in self.view.brokers:
            return None
        b = self.view.brokers[p.leader].value
        return BrokerEndpoint(b.broker_id, b.host, b.port, b.rack, b.listeners)

    def reassignments(self) -> dict[tuple[str, int], Reassignment]:
        found = {}
        for name, v in self.view.topics.items():
            t = v.value
            for p in sorted(set(t.adding) | set(t.removing)):
                if t.reassigning(p) and p in t.replicas:
                    found[(name, p)] = Reassignment(t.replicas[p], t.adding.get(p, ()), t.removing.get(p, ()))
        return found

    def finalized_features(self) -> FinalizedFeatures:
        v = self.view.features
        return FinalizedFeatures(dict(DEFAULT_LEVELS)) if v is None else v.value

    # -- topic admin: checks here, changes on the controller ---------------------------------

    def check_create(self, topic: NewTopic, also_adding: int = 0) -> None:
        """The name rules against every topic of the cluster (not only those held here),
        then the controller's capacity check."""
        validate_topic_name(topic.name)
        if topic.name in self.view.topics:
            raise TopicAlreadyExists(f"Topic '{topic.name}' already exists.")
        if self._unified is None:
            self._unified = {unify_collision_chars(n): n for n in self.view.topics}
        existing = self._unified.get(unify_collision_chars(topic.name))
        if existing is not None:
            raise InvalidTopic(f"topic {topic.name!r} collides with existing topic {existing!r} "
                               "('.' and '_' clash)")
        refusal = self.node.controller.capacity_refusal(
            topic.name, range(topic.partitions), topic.replication_factor, topic.assignments)
        if refusal is not None:  # the controller checks again when it creates
            raise PolicyViolation(refusal)

    async def create_topics(self, topics: Sequence[NewTopic]) -> list[AdminResult]:
        """One at a time, each checked against the view its predecessors left (auto-creation
        by Metadata comes here unchecked)."""
        results = []
        for t in topics:
            try:
                self.check_create(t)
            except (LogError, ValueError) as exc:
                results.append(AdminResult.refusal(exc))
                continue
            result = await self.node.controller.create_topic_anywhere(t)
            if result.ok:
                result = AdminResult(topic_id=self.topic_id_of(t.name))
            results.append(result)
        return results

    async def delete_topic(self, name: str) -> AdminResult:
        return await self.node.controller.delete_topic_anywhere(name)

    def check_add_partitions(self, name: str, total: int,
                             assignments: Mapping[int, tuple[int, ...]] | None) -> None:
        existing = len(self.view.topics[name].value.replicas)
        refusal = self.node.controller.capacity_refusal(name, range(existing, total), None, assignments)
        if refusal is not None:  # the controller checks again when it adds them
            raise PolicyViolation(refusal)

    async def add_partitions(self, name: str, total: int,
                             assignments: Mapping[int, tuple[int, ...]] | None) -> AdminResult:
        return await self.node.controller.add_partitions_anywhere(name, total, assignments)

    def _merged(self, name: str, changes: Mapping[str, str | None]) -> dict[str, str]:
        current = self.view.topics[name].value.config
        return {k: v for k, v in {**current, **changes}.items() if v is not None}

    def check_config(self, name: str, changes: Mapping[str, str | None]) -> None:
        t = self.topic(name)
        self.logs.describe_remote(name, t.topic_id, t.partitions, self._merged(name, changes))  # validates
        self.logs.check_client_overrides({k: v for k, v in changes.items() if v is not None})

    async def alter_config(self, name: str, changes: Mapping[str, str | None]) -> AdminResult:
        if name not in self.view.topics:
            return AdminResult(*_unknown(name))
        return await self.node.controller.alter_topic_config_anywhere(name, self._merged(name, changes))

    async def alter_reassignments(self, name: str,
                                  targets: Mapping[int, tuple[int, ...] | None]) -> dict[int, AdminResult]:
        return await self.node.controller.alter_reassignments_anywhere(name, targets)

    def check_broker_configs(self, scope: str, values: Mapping[str, str]) -> None:
        self.logs.set_broker_configs(scope, values, validate_only=True)

    async def alter_broker_configs(self, scope: str, values: Mapping[str, str]) -> AdminResult:
        """Written to etcd by this broker (no controller needed: each scope is one key, the
        last write wins, as in Kafka's metadata log); answered once this broker's view has it,
        every broker applies it from its watch (reconcile.py)."""
        node = self.node
        key_id = node.broker_id if scope == PER_BROKER else None
        wanted = BrokerConfigs(dict(values))
        tx = node.etcd.tx
        try:
            await node.etcd.txn([], [tx.put(node.layout.broker_configs(key_id), wanted.encode())])
            await node.wait_seen(lambda: _held(self.view, key_id) == wanted.values, CONFIG_VIEW_WAIT)
        except (EtcdUnavailable, ViewTimeout) as exc:
            return AdminResult(ErrorCode.request_timed_out, str(exc))
        return AdminResult()

    def group_configs(self, group: str) -> Mapping[str, str]:
        held = self.view.group_configs.get(group)
        return held.value.values if held is not None else {}

    async def alter_group_configs(self, group: str, values: Mapping[str, str]) -> AdminResult:
        """Written to etcd by this broker, like dynamic broker configs (one key per group, the
        last write wins; none left: the key goes); every broker hands them to its group
        coordinator from its watch (reconcile.py), so whichever coordinates the group, now
        or after a failover, applies them."""
        node = self.node
        key = node.layout.group_configs(group)
        wanted = dict(values)
        tx = node.etcd.tx
        try:
            await node.etcd.txn([], [tx.put(key, GroupConfigs(wanted).encode()) if wanted else tx.delete(key)])
            await node.wait_seen(lambda: dict(self.group_configs(group)) == wanted, CONFIG_VIEW_WAIT)
        except (EtcdUnavailable, ViewTimeout) as exc:
            return AdminResult(ErrorCode.request_timed_out, str(exc))
        return AdminResult()

    def acls(self) -> AclSet:
        return self.view.acls

    async def alter_acls(self, add: Sequence[AclBinding], remove: Sequence[AclBinding]) -> AdminResult:
        """One etcd key per binding (keys.py), put or deleted by this broker in one transaction:
        a binding is its own identity, so concurrent changes need no compare.  Every broker's
        watch folds them into its view, which its authorizer reads; answered once this one's does."""
        node, tx = self.node, self.node.etcd.tx
        added = {b.to_json() for b in add}
        removed = {b.to_json() for b in remove} - added
        ops = [tx.delete(node.layout.acl(text)) for text in sorted(removed)]
        ops += [tx.put(node.layout.acl(text), text.encode()) for text in sorted(added)]
        if not ops:
            return AdminResult()
        view = self.view
        try:
            await node.etcd.txn([], ops)
            await node.wait_seen(lambda: added <= view.acl_bindings.keys() and not removed & view.acl_bindings.keys(),
                                 CONFIG_VIEW_WAIT)
        except (EtcdUnavailable, ViewTimeout) as exc:
            return AdminResult(ErrorCode.request_timed_out, str(exc))
        return AdminResult()

    def client_quotas(self) -> ClientQuotas:
        return self.view.client_quotas

    async def alter_client_quotas(self, changes: Mapping[Entity, Mapping[str, float | None]]) -> AdminResult:
        """One etcd key per entity (keys.py) holding its values, written by this broker in one
        transaction (the last write of an entity wins, as Kafka's last record does); every
        broker's watch folds them into its view, which its quota manager reads."""
        node, tx = self.node, self.node.etcd.tx
        wanted = self.view.client_quotas
        for entity, values in changes.items():
            wanted = wanted.altered(entity, values)
        ops = []
        for entity in changes:
            key = node.layout.client_quota(entity_key(entity))
            values = wanted.entries.get(entity)
            ops.append(tx.put(key, json.dumps(dict(values)).encode()) if values else tx.delete(key))
        try:
            await node.etcd.txn([], ops)
            await node.wait_seen(lambda: all(self.view.client_quotas.entries.get(e) == wanted.entries.get(e)
                                             for e in changes), CONFIG_VIEW_WAIT)
        except (EtcdUnavailable, ViewTimeout) as exc:
            return AdminResult(ErrorCode.request_timed_out, str(exc))
        return AdminResult()

    def scram_credentials(self) -> ScramCredentialSet:
        return self.view.scram_credentials

    async def alter_scram_credentials(self, upserts: Sequence[Upsert], deletions: Sequence[Deletion]) -> AdminResult:
        """One etcd key per (user, mechanism) holding its salted credential (keys.py), all of a
        request's puts and deletes in one transaction written by this broker (the last write of a
        credential wins, as Kafka's last record does); answered once this broker's view holds the
        transaction's revision.  Every broker's watch folds the keys into its view, which its
        SCRAM logins and DescribeUserScramCredentials read; a broker cut off from etcd keeps
        using the last view it had."""
        node, tx = self.node, self.node.etcd.tx
        ops = [tx.delete(node.layout.scram_credential(user, mechanism)) for user, mechanism in deletions]
        ops += [tx.put(node.layout.scram_credential(user, mechanism), encode_credential(mechanism, credential))
                for user, mechanism, credential in upserts]
        if not ops:
            return AdminResult()
        try:
            _, responses = await node.etcd.txn([], ops)
            revision = txn_revision(responses[0])
        except EtcdUnavailable as exc:
            # the transaction may still land once etcd answers again: a retry leaves the same credentials
            return AdminResult(ErrorCode.request_timed_out, f"etcd did not answer ({exc}): the SCRAM credentials "
                                                            "may not be stored; retry")
        try:
            await node.wait_seen(lambda: self.view.revision >= revision, CONFIG_VIEW_WAIT)
        except ViewTimeout as exc:
            return AdminResult(ErrorCode.request_timed_out, str(exc))
        return AdminResult()

    async def elect_leaders(self, election: ElectionType,
                            partitions: Sequence[TopicPartition]) -> list[AdminResult]:
        return await self.node.controller.elect_leaders_anywhere(election, partitions)

    async def update_features(self, updates: Sequence[FeatureUpdate], validate_only: bool) -> AdminResult:
        """Decide on the levels this broker sees; a write that lost a race with another
        broker's decides again on the levels that won."""
        current = self.view.features
        for _ in range(FEATURE_WRITE_ATTEMPTS):
            base = FinalizedFeatures(dict(DEFAULT_LEVELS)) if current is None else current.value
            try:
                changed = apply_updates(base, updates, self.node.broker_id)
            except InvalidUpdateVersion as exc:
                return AdminResult.refusal(exc)
            if validate_only or changed is base:
                return OK
            try:
                await self.node.store.write_features(changed, 0 if current is None else current.mod_revision)
                await self.node.wait_seen(lambda: self.finalized_features().epoch >= changed.epoch, VIEW_WAIT)
                return OK
            except ConcurrentUpdate as exc:
                current = exc.current
            except ViewTimeout as exc:
                return AdminResult(ErrorCode.request_timed_out, str(exc))
            except ClusterError as exc:
                return AdminResult(ErrorCode.request_timed_out, f"the feature levels were not written: {exc}")
        return AdminResult(ErrorCode.request_timed_out, "other brokers kept changing the feature levels; retry")

    async def ensure_offsets_topic(self) -> None:
        config = self.node.broker.config
        await self._ensure_journal_topic(OFFSETS_TOPIC, config.get("offsets.topic.num.partitions"),
                                         config.get("offsets.topic.replication.factor"),
                                         config.get("offsets.topic.segment.bytes"))

    async def ensure_transaction_state_topic(self) -> None:
        """``__transaction_state`` as Kafka creates it: ``transaction.state.log.*`` partitions,
        replication factor (capped by the live brokers) and min.insync.replicas."""
        config = self.node.broker.config
        await self._ensure_journal_topic(
            TRANSACTION_STATE_TOPIC, config.get("transaction.state.log.num.partitions"),
            config.get("transaction.state.log.replication.factor"),
            config.get("transaction.state.log.segment.bytes"),
            {"min.insync.replicas": str(config.get("transaction.state.log.min.isr"))})

    async def _ensure_journal_topic(self, name: str, partitions: int, replication_factor: int,
                                    segment_bytes: int, extra: Mapping[str, str] | None = None) -> None:
        live = self.live_broker_ids()
        if name in self.view.topics or not live:
            return
        await self.node.controller.create_topic_anywhere(NewTopic(
            name, partitions, min(replication_factor, len(live)),
            {"cleanup.policy": "compact", "segment.bytes": str(segment_bytes), **(extra or {})}))


def _held(view, key_id: int | None) -> dict[str, str]:
    held = view.broker_configs.get(key_id)
    return held.value.values if held is not None else {}


FEATURE_WRITE_ATTEMPTS = 5


def _unknown(name: str):
    from kavka.protocol.errors import ErrorCode
    return ErrorCode.unknown_topic_or_partition, f"The topic '{name}' does not exist."

