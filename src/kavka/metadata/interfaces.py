"""The three questions API handlers ask, as abstract classes (see the package doc).

Checks (``check_*``) raise the log layer's errors (kavka.log.errors), which the
API layer maps to Kafka error codes in request order; changes are coroutines
that answer an AdminResult, so a refusal by the controller and a local failure
look alike to the handler.
"""

from __future__ import annotations

import asyncio
import uuid
from abc import ABC, abstractmethod
from typing import Mapping, Sequence

from kavka.metadata.features import FeatureUpdate, FinalizedFeatures
from kavka.metadata.model import (
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
from kavka.security.credentials import Deletion, ScramCredentialSet, Upsert
from kavka.security.quota import ClientQuotas, Entity

TopicPartition = tuple[str, int]


class MetadataView(ABC):
    """What this broker knows of the cluster; every answer is current as of the call."""

    @property
    @abstractmethod
    def cluster_id(self) -> str: ...

    @abstractmethod
    def brokers(self) -> list[BrokerEndpoint]:
        """Every live broker, by id."""

    @abstractmethod
    def live_broker_ids(self) -> frozenset[int]:
        """Brokers that may be given replicas (manual assignments are checked against these)."""

    @abstractmethod
    def controller_id(self) -> int:
        """The controller's broker id, or -1 while none is known."""

    @abstractmethod
    def topic_names(self) -> list[str]:
        """Every topic of the cluster, sorted."""

    @abstractmethod
    def topic(self, name: str) -> TopicDescription | None: ...

    @abstractmethod
    def topic_by_id(self, topic_id: uuid.UUID) -> TopicDescription | None: ...

    @abstractmethod
    def partition(self, topic: str, index: int) -> PartitionState | None: ...

    @abstractmethod
    def group_coordinator(self, group_id: str) -> BrokerEndpoint | None:
        """The broker coordinating ``group_id``, or None while it is not available."""

    @abstractmethod
    def transaction_coordinator(self, transactional_id: str) -> BrokerEndpoint | None: ...

    @abstractmethod
    def reassignments(self) -> dict[TopicPartition, Reassignment]:
        """The partition reassignments in progress."""

    @abstractmethod
    def finalized_features(self) -> FinalizedFeatures:
        """The cluster's finalized feature levels and their epoch (kavka.metadata.features)."""

    @abstractmethod
    def acls(self) -> AclSet:
        """The cluster's ACL bindings (kavka.security.acl), as every broker enforces them."""

    @abstractmethod
    def client_quotas(self) -> ClientQuotas:
        """The cluster's client quotas (kavka.security.quota), as every broker enforces them."""

    @abstractmethod
    def scram_credentials(self) -> ScramCredentialSet:
        """The cluster's SCRAM credentials (kavka.security.credentials), as every broker's SCRAM
        logins check them."""

    @abstractmethod
    async def quorum(self) -> QuorumState | None:
        """The controller quorum now (asked of etcd in a cluster); None when it does not answer."""

    def advertise(self, host: str, port: int, listeners: tuple = ()) -> None:
        """This broker's client address, known once it listens (the cluster learns it
        from the broker's registration instead)."""

    def topic_id_of(self, name: str) -> uuid.UUID | None:
        t = self.topic(name)
        return None if t is None else t.topic_id

    def topic_name_of(self, topic_id: uuid.UUID) -> str | None:
        t = self.topic_by_id(topic_id)
        return None if t is None else t.name

    def has_partition(self, topic: str, index: int) -> bool:
        t = self.topic(topic)
        return t is not None and 0 <= index < t.partitions


class TopicAdmin(ABC):
    """Changes to the topic catalog.  The caller has checked the request itself (names,
    configs, replica assignments against the live brokers, the per-request cap)."""

    @abstractmethod
    def check_create(self, topic: NewTopic, also_adding: int = 0) -> None:
        """Everything the catalog itself refuses (collisions, capacity); raises LogError.
        ``also_adding``: partitions earlier topics of the same request add."""

    @abstractmethod
    async def create_topics(self, topics: Sequence[NewTopic]) -> list[AdminResult]:
        """Create each (each all or nothing); one result per topic, in order."""

    @abstractmethod
    async def delete_topic(self, name: str) -> AdminResult: ...

    @abstractmethod
    def check_add_partitions(self, name: str, total: int,
                             assignments: Mapping[int, tuple[int, ...]] | None) -> None:
        """Capacity checks of growing ``name`` to ``total`` partitions; raises LogError."""

    @abstractmethod
    async def add_partitions(self, name: str, total: int,
                             assignments: Mapping[int, tuple[int, ...]] | None) -> AdminResult: ...

    @abstractmethod
    def check_config(self, name: str, changes: Mapping[str, str | None]) -> None:
        """Whether these override changes (None removes one) are acceptable; raises LogError."""

    @abstractmethod
    async def alter_config(self, name: str, changes: Mapping[str, str | None]) -> AdminResult:
        """Apply override changes, checked by :meth:`check_config` first."""

    @abstractmethod
    async def alter_reassignments(self, name: str,
                                  targets: Mapping[int, tuple[int, ...] | None]) -> dict[int, AdminResult]:
        """Reassign partitions of topic ``name`` (KIP-455): per partition its target replicas
        (checked: registered brokers, none twice), or None to cancel its reassignment.
        One result per partition; the moves themselves finish later."""

    @abstractmethod
    def check_broker_configs(self, scope: str, values: Mapping[str, str]) -> None:
        """Whether ``values`` may become the dynamic broker settings of ``scope``
        (kavka.config.PER_BROKER: this broker's; CLUSTER_DEFAULT: every broker's); raises ValueError."""

    @abstractmethod
    async def alter_broker_configs(self, scope: str, values: Mapping[str, str]) -> AdminResult:
        """Make ``values`` the whole dynamic layer ``scope``: persisted, and applied by every broker
        it concerns; checked by :meth:`check_broker_configs` first."""

    @abstractmethod
    def group_configs(self, group: str) -> Mapping[str, str]:
        """The GROUP configs (kavka.group_configs) ``group`` sets, as strings; empty when none."""

    @abstractmethod
    async def alter_group_configs(self, group: str, values: Mapping[str, str]) -> AdminResult:
        """Make ``values`` (already checked) the whole set of ``group``'s configs, persisted."""

    @abstractmethod
    async def alter_acls(self, add: Sequence[AclBinding], remove: Sequence[AclBinding]) -> AdminResult:
        """Add and remove ACL bindings (already validated) in one durable change; answered once
        this broker enforces the new set.  Adding one already there, or removing one that is
        not, changes nothing."""

    @abstractmethod
    async def alter_client_quotas(self, changes: Mapping[Entity, Mapping[str, float | None]]) -> AdminResult:
        """Set (None: remove) quota values of entities (already validated) in one durable change;
        answered once this broker enforces them."""

    @abstractmethod
    async def alter_scram_credentials(self, upserts: Sequence[Upsert], deletions: Sequence[Deletion]) -> AdminResult:
        """Upsert and delete (user, mechanism) SCRAM credentials (already validated) in one
        durable change; answered once this broker's logins check the new ones."""

    @abstractmethod
    async def elect_leaders(self, election: ElectionType,
                            partitions: Sequence[TopicPartition]) -> list[AdminResult]:
        """Elect a leader of each partition (ElectLeaders); one result per partition, in
        order (kavka.metadata.model.election_result): ELECTION_NOT_NEEDED when it already
        has the leader the election would give it."""

    async def update_features(self, updates: Sequence[FeatureUpdate], validate_only: bool) -> AdminResult:
        """Finalize new feature levels, all or none (features.apply_updates decides); answered
        once this broker's view shows them."""

    @abstractmethod
    async def ensure_offsets_topic(self) -> None:
        """Make sure ``__consumer_offsets`` exists (before a group's coordinator is looked up)."""

    @abstractmethod
    async def ensure_transaction_state_topic(self) -> None:
        """Make sure ``__transaction_state`` exists (before a transactional id's coordinator
        is looked up)."""


class ReplicaRoles(ABC):
    """This broker's part in the replication of each partition."""

    @abstractmethod
    def leader_error(self, tp: TopicPartition) -> ErrorCode:
        """NONE if this broker may serve clients' reads and writes of ``tp``."""

    @abstractmethod
    def read_error(self, tp: TopicPartition, follower_reads: bool) -> ErrorCode:
        """NONE if this broker may serve a consumer's fetch of ``tp``: its leader, or with
        ``follower_reads`` (Fetch v11+, KIP-392) a follower too, up to its high watermark."""

    @abstractmethod
    def preferred_read_replica(self, tp: TopicPartition, client_rack: str, fetch_offset: int) -> int:
        """The replica a consumer in ``client_rack`` should read ``tp`` from, or -1: this one."""

    @abstractmethod
    def produce_check(self, tp: TopicPartition, acks: int, min_isr: int) -> ErrorCode:
        """Whether a produce with ``acks`` may be appended now."""

    @abstractmethod
    def wait_replicated(self, tp: TopicPartition, required: int, min_isr: int) -> asyncio.Future | ErrorCode:
        """acks=all: an error code now, or a future of one once offsets below ``required`` are replicated."""

    @abstractmethod
    def follower_fetch(self, tp: TopicPartition, replica_id: int, fetch_offset: int) -> ErrorCode:
        """A follower's fetch from ``fetch_offset``: its bookkeeping, and whether to answer it."""

    def replica_quota(self, tp: TopicPartition, replica_id: int):
        """The throttle (kavka.replication.quota) a follower's fetch of ``tp`` counts against, or
        None: only the replicas a reassignment adds are throttled, so a lone broker never is."""
        return None

    async def stop(self) -> None:
        """The broker is stopping: answer whatever waits, lead nothing from now on."""
