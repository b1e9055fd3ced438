"""A lone broker: a cluster of one.

It leads every partition it holds, is its own controller and coordinator, and
the catalog of its log directory (kavka.log.topic_catalog: the topics, their ids
and overrides, in ``topics.json``) is the cluster's; kavka.log.log_manager
opens the partitions it names.  Creation of many partitions yields to
the event loop every STEP_PARTITIONS partitions, so other clients are served
meanwhile.  A failed log directory (kavka.log.log_dir) shows every partition
as Kafka shows one whose only replica is offline: no leader, out of the ISR.
Leader elections (ElectLeaders) have nothing to do: the only replica is the
preferred one, and it leads unless its directory failed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Mapping, Sequence

from kavka.log.checkpoint import write_atomically
from kavka.log.errors import LogError
from kavka.log.log_manager import META_DIR, STEP_PARTITIONS, LogManager
from kavka.log.topic_catalog import TopicInfo
from kavka.metadata.features import FeatureUpdate, FinalizedFeatures, InvalidUpdateVersion, apply_updates
from kavka.metadata.interfaces import MetadataView, ReplicaRoles, TopicAdmin, TopicPartition
from kavka.metadata.model import (
    NO_LEADER,
    NO_REASSIGNMENT_MESSAGE,
    OK,
    AdminResult,
    BrokerEndpoint,
    ElectionType,
    NewTopic,
    PartitionState,
    QuorumState,
    QuorumVoter,
    Reassignment,
    TopicDescription,
    election_result,
)
from kavka.protocol.errors import ErrorCode
from kavka.security.acl import AclBinding, AclSet
from kavka.security.credentials import FILE_NAME as SCRAM_FILE
from kavka.security.credentials import Deletion, ScramCredentialSet, Upsert
from kavka.security.quota import ClientQuotas, Entity

log = logging.getLogger("kavka.metadata")

FEATURES_FILE = "features.json"
ACLS_FILE = "acls.json"
QUOTAS_FILE = "client_quotas.json"


def describe(info: TopicInfo, replication_factor: int = 1) -> TopicDescription:
    return TopicDescription(info.name, info.topic_id, info.partitions, replication_factor, info.config,
                            info.overrides)


class LocalMetadata(MetadataView, TopicAdmin):
    """The read view and topic admin of a lone broker, over its LogManager."""

    def __init__(self, logs: LogManager, node_id: int, host: str = "", port: int = 0) -> None:
        self.logs = logs
        self.catalog = logs.catalog
        self.endpoint = BrokerEndpoint(node_id, host, port)
        self._stored: dict[str, object] = {}   # meta file name -> its contents, read once (_FILES)

    def advertise(self, host: str, port: int, listeners: tuple = ()) -> None:
        """The address clients reach this broker at (known once it listens), and each listener's."""
        self.endpoint = BrokerEndpoint(self.endpoint.broker_id, host, port, None, tuple(listeners))

    # -- the read view -----------------------------------------------------------------------

    @property
    def cluster_id(self) -> str:
        return self.logs.cluster_id

    def brokers(self) -> list[BrokerEndpoint]:
        return [self.endpoint]

    def live_broker_ids(self) -> frozenset[int]:
        return frozenset({self.endpoint.broker_id})

    def controller_id(self) -> int:
        return self.endpoint.broker_id

    async def quorum(self) -> QuorumState:
        """A lone broker is its own quorum: the only voter and leader, epoch 0, nothing replicated."""
        me = self.endpoint
        return QuorumState(me.broker_id, 0, 0, (QuorumVoter(me.broker_id, 0, me.host, me.port),))

    def topic_names(self) -> list[str]:
        return sorted(self.catalog.topics())

    def topic(self, name: str) -> TopicDescription | None:
        info = self.catalog.get(name)
        return None if info is None else describe(info)

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicDescription | None:
        info = self.catalog.by_id(topic_id)
        return None if info is None else describe(info)

    def partition(self, topic: str, index: int) -> PartitionState | None:
        partition = self.logs.partition(topic, index)
        if partition is None:
            return None
        node = (self.endpoint.broker_id,)
        epoch = partition.log.leader_epoch
        if partition.offline:  # its log directory failed (kavka.log.log_dir)
            return PartitionState(NO_LEADER, epoch, node, (), node)
        return PartitionState(node[0], epoch, node, node)

    def has_partition(self, topic: str, index: int) -> bool:
        return self.logs.partition(topic, index) is not None

    def group_coordinator(self, group_id: str) -> BrokerEndpoint | None:
        return self.endpoint

    def reassignments(self) -> dict[TopicPartition, Reassignment]:
        return {}

    def transaction_coordinator(self, transactional_id: str) -> BrokerEndpoint | None:
        return self.endpoint

    def finalized_features(self) -> FinalizedFeatures:
        return self._read(FEATURES_FILE)

    def acls(self) -> AclSet:
        return self._read(ACLS_FILE)

    def client_quotas(self) -> ClientQuotas:
        return self._read(QUOTAS_FILE)

    def scram_credentials(self) -> ScramCredentialSet:
        return self._read(SCRAM_FILE)

    def _read(self, name: str):
        """What meta file ``name`` holds, read on first use (its empty form while there is none)."""
        if name not in self._stored:
            decode, empty = _FILES[name]
            try:
                self._stored[name] = decode((self.logs.data_dir / META_DIR / name).read_bytes())
            except FileNotFoundError:
                self._stored[name] = empty()
        return self._stored[name]

    def _write(self, name: str, value, text: str) -> AdminResult | None:
        """Replace meta file ``name`` atomically with ``text``, then hold ``value``; the error
        when it cannot be written."""
        path = self.logs.data_dir / META_DIR / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, text)
        except OSError as exc:
            return AdminResult(ErrorCode.kafka_storage_error, f"cannot write {name}: {exc}")
        self._stored[name] = value
        return None

    # -- topic admin -------------------------------------------------------------------------

    def check_create(self, topic: NewTopic, also_adding: int = 0) -> None:
        self.logs.check_new_topic(topic.name, topic.partitions, topic.overrides, client=True,
                                  also_adding=also_adding)

    async def create_topics(self, topics: Sequence[NewTopic]) -> list[AdminResult]:
        results: list[AdminResult | None] = []
        infos: list[TopicInfo] = []
        adding = 0
        for t in topics:
            try:
                infos.append(self.logs.check_new_topic(t.name, t.partitions, t.overrides, also_adding=adding))
            except (LogError, ValueError) as exc:
                results.append(AdminResult.refusal(exc))
                continue
            adding += t.partitions
            results.append(None)
        if not infos:
            return results
        steps = self.logs.create_topics_stepwise(infos)
        while True:
            try:
                next(steps)
            except StopIteration as stop:
                outcomes = iter(stop.value)
                break
            if adding > STEP_PARTITIONS:
                await asyncio.sleep(0)  # other clients are served between steps
        done = []
        for result in results:
            if result is None:
                outcome = next(outcomes)
                result = (AdminResult.refusal(outcome.error) if outcome.error is not None
                          else AdminResult(topic_id=outcome.info.topic_id))
            done.append(result)
        return done

    async def delete_topic(self, name: str) -> AdminResult:
        try:
            self.logs.delete_topic(name)
        except (LogError, ValueError) as exc:
            return AdminResult.refusal(exc)
        return OK

    def check_add_partitions(self, name: str, total: int,
                             assignments: Mapping[int, tuple[int, ...]] | None) -> None:
        self.logs.create_partitions(name, total, validate_only=True)

    async def add_partitions(self, name: str, total: int,
                             assignments: Mapping[int, tuple[int, ...]] | None) -> AdminResult:
        try:
            self.logs.create_partitions(name, total)
        except (LogError, ValueError) as exc:
            return AdminResult.refusal(exc)
        return OK

    def check_config(self, name: str, changes: Mapping[str, str | None]) -> None:
        self.logs.alter_topic_config(name, changes, validate_only=True, client=True)

    async def alter_config(self, name: str, changes: Mapping[str, str | None]) -> AdminResult:
        try:
            self.logs.alter_topic_config(name, changes, client=True)
        except (LogError, ValueError) as exc:
            return AdminResult.refusal(exc)
        return OK

    async def alter_reassignments(self, name: str,
                                  targets: Mapping[int, tuple[int, ...] | None]) -> dict[int, AdminResult]:
        """The only registered broker is this one, so a checked target is this broker
        alone: the partition's replicas already (nothing to move, as on Kafka); nothing
        is ever in progress to cancel."""
        return {p: OK if target is not None else AdminResult(ErrorCode.no_reassignment_in_progress,
                                                              NO_REASSIGNMENT_MESSAGE)
                for p, target in targets.items()}

    def check_broker_configs(self, scope: str, values: Mapping[str, str]) -> None:
        self.logs.set_broker_configs(scope, values, validate_only=True)

    async def alter_broker_configs(self, scope: str, values: Mapping[str, str]) -> AdminResult:
        """Both layers live in the data directory (kavka.log.dynamic_configs): a lone broker is the cluster."""
        try:
            self.logs.set_broker_configs(scope, values)
        except (LogError, ValueError) as exc:
            return AdminResult.refusal(exc)
        return OK

    def group_configs(self, group: str) -> Mapping[str, str]:
        return self.logs.group_configs().get(group, {})

    async def alter_group_configs(self, group: str, values: Mapping[str, str]) -> AdminResult:
        """Kept in the data directory (kavka.log.dynamic_configs), as Kafka keeps them in its metadata log."""
        try:
            self.logs.set_group_configs(group, values)
        except LogError as exc:
            return AdminResult.refusal(exc)
        return OK

    async def alter_acls(self, add: Sequence[AclBinding], remove: Sequence[AclBinding]) -> AdminResult:
        """Kept in the data directory (``acls.json``, replaced atomically), as Kafka keeps them in
        its metadata log."""
        current = self.acls()
        changed = AclSet((current.bindings - set(remove)) | set(add))
        if changed == current:
            return OK
        text = json.dumps([json.loads(b.to_json()) for b in changed], indent=1)
        if failed := self._write(ACLS_FILE, changed, text):
            return failed
        log.info("ACLs now %d bindings (+%d, -%d)", len(changed), len(add), len(remove))
        return OK

    async def alter_client_quotas(self, changes: Mapping[Entity, Mapping[str, float | None]]) -> AdminResult:
        """Kept in the data directory (``client_quotas.json``, replaced atomically), as Kafka keeps
        them in its metadata log."""
        changed = self.client_quotas()
        for entity, values in changes.items():
            changed = changed.altered(entity, values)
        if changed == self.client_quotas():
            return OK
        if failed := self._write(QUOTAS_FILE, changed, changed.encode()):
            return failed
        log.info("client quotas now set for %d entities", len(changed.entries))
        return OK

    async def alter_scram_credentials(self, upserts: Sequence[Upsert], deletions: Sequence[Deletion]) -> AdminResult:
        """Kept in the data directory (``__scram_credentials.json``, replaced atomically), as
        Kafka keeps them in its metadata log."""
        if not upserts and not deletions:
            return OK
        changed = self.scram_credentials().altered(upserts, deletions)
        if failed := self._write(SCRAM_FILE, changed, changed.encode()):
            return failed
        log.info("SCRAM credentials now held for %d users", len(changed.users()))
        return OK

    async def elect_leaders(self, election: ElectionType,
                            partitions: Sequence[TopicPartition]) -> list[AdminResult]:
        return [election_result(self._election(election, topic, index), topic, index)
                for topic, index in partitions]

    def _election(self, election: ElectionType, topic: str, index: int) -> ErrorCode:
        """This broker is every partition's only, preferred replica: an election changes
        nothing while it leads, and nobody can lead while its log directory is offline."""
        state = self.partition(topic, index)
        if state is None:
            return ErrorCode.unknown_topic_or_partition
        if state.leader != NO_LEADER:
            return ErrorCode.election_not_needed
        if election == ElectionType.PREFERRED:
            return ErrorCode.preferred_leader_not_available
        return ErrorCode.eligible_leaders_not_available

    async def update_features(self, updates: Sequence[FeatureUpdate], validate_only: bool) -> AdminResult:
        try:
            changed = apply_updates(self.finalized_features(), updates, self.endpoint.broker_id)
        except InvalidUpdateVersion as exc:
            return AdminResult.refusal(exc)
        if validate_only or changed is self.finalized_features():
            return OK
        if failed := self._write(FEATURES_FILE, changed, changed.encode().decode()):
            return failed
        log.info("finalized features now %s (epoch %d)", dict(changed.levels), changed.epoch)
        return OK

    async def ensure_offsets_topic(self) -> None:
        """Nothing to do: the group coordinator's journal creates it on first use."""

    async def ensure_transaction_state_topic(self) -> None:
        """Nothing to do: the transaction coordinator's journal creates it on first use."""


def _decode_acls(raw: bytes) -> AclSet:
    return AclSet(AclBinding.from_json(json.dumps(entry)) for entry in json.loads(raw))


# The meta files of the data directory this class keeps: (decode their bytes, their empty form
# while absent: no ACL, no quota, no SCRAM user, the format-time feature levels).
_FILES = {
    FEATURES_FILE: (FinalizedFeatures.decode, FinalizedFeatures),
    ACLS_FILE: (_decode_acls, AclSet),
    QUOTAS_FILE: (lambda raw: ClientQuotas.decode(raw.decode()), ClientQuotas),
    SCRAM_FILE: (lambda raw: ScramCredentialSet.decode(raw.decode()), ScramCredentialSet),
}


class LeadsEverything(ReplicaRoles):
    """A lone broker's roles: it leads every partition and is its whole ISR."""

    def leader_error(self, tp: TopicPartition) -> ErrorCode:
        return ErrorCode.none

    def read_error(self, tp: TopicPartition, follower_reads: bool) -> ErrorCode:
        return ErrorCode.none

    def preferred_read_replica(self, tp: TopicPartition, client_rack: str, fetch_offset: int) -> int:
        return -1

    def produce_check(self, tp: TopicPartition, acks: int, min_isr: int) -> ErrorCode:
        # The ISR is this broker alone: acks=all needs min.insync.replicas <= 1, as on Kafka.
        return ErrorCode.not_enough_replicas if acks == -1 and min_isr > 1 else ErrorCode.none

    def wait_replicated(self, tp: TopicPartition, required: int, min_isr: int) -> ErrorCode:
        return ErrorCode.none

    def follower_fetch(self, tp: TopicPartition, replica_id: int, fetch_offset: int) -> ErrorCode:
        return ErrorCode.none
