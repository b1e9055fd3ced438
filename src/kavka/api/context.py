"""What every API handler may use: the broker's identity, settings, storage and metadata.

``metadata``, ``admin`` and ``replicas`` are the metadata boundary (kavka.metadata):
who leads and coordinates what, how topics change, this broker's part in
replication.  A lone broker gets the local implementations unless told otherwise;
``kavka.broker`` wires the cluster's in cluster mode.  Handlers use them alike.
``fetch_sessions`` is the cache of incremental fetch sessions (kavka.api.fetch_sessions).
``txn_verifier`` answers whether a partition is in a producer's ongoing transaction before
Produce appends its first transactional batch there (KIP-890, kavka.txn.verifier): by
default this broker's own coordinator (``transactions``); a cluster wires one that asks the
coordinator's broker.
``authorizer`` is the ACL authorizer ``authorizer.class.name`` configures (kavka.security.authorizer),
None without one; handlers ask it through kavka.api.authorization.
``client_quotas`` enforces the stored client quotas (kavka.security.quota_manager), through
kavka.api.quotas.
``inter_broker`` says which connections are the cluster's other brokers (kavka.api.inter_broker).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kavka.api.fetch_sessions import FetchSessionCache
from kavka.clock import Clock
from kavka.config import BrokerConfig
from kavka.log.log_manager import LogManager
from kavka.log.partition import Partition
from kavka.metadata import MetadataView, ReplicaRoles, TopicAdmin
from kavka.metadata.local import LeadsEverything, LocalMetadata
from kavka.producer_ids import ProducerIdAllocator, RandomProducerIds
from kavka.protocol.errors import ErrorCode
from kavka.security.authorizer import Authorizer, from_config
from kavka.security.quota_manager import ClientQuotaManager
from kavka.txn.verifier import LocalTxnVerifier, TxnVerifier

if TYPE_CHECKING:
    from kavka.api.inter_broker import InterBrokerIdentity
    from kavka.group.runner import GroupRunner
    from kavka.log.group_commit import GroupCommit
    from kavka.txn.runner import TxnRunner

__all__ = ["BrokerContext", "ProducerIdAllocator", "RandomProducerIds"]


@dataclass
class BrokerContext:
    logs: LogManager
    config: BrokerConfig
    clock: Clock
    node_id: int
    host: str
    port: int
    producer_ids: ProducerIdAllocator
    groups: "GroupRunner | None" = None      # None: no group coordinator (the group APIs answer so)
    durable: "GroupCommit | None" = None     # with --durable; None: ack from the page cache
    transactions: "TxnRunner | None" = None  # None: no transaction coordinator (a cluster, for now)
    txn_verifier: TxnVerifier | None = None  # None with no coordinator: transactional ids are refused
    metadata: MetadataView = field(default=None)   # type: ignore[assignment]  (set in __post_init__)
    admin: TopicAdmin = field(default=None)        # type: ignore[assignment]
    replicas: ReplicaRoles = field(default=None)   # type: ignore[assignment]
    fetch_sessions: FetchSessionCache = field(default=None)  # type: ignore[assignment]
    authorizer: Authorizer | None = None   # None: every request allowed (no authorizer.class.name)
    listeners: tuple = ()        # (name, advertised host, port) of each listener, set by advertise
    client_quotas: ClientQuotaManager = field(default=None)  # type: ignore[assignment]
    # Who counts as another broker of the cluster (kavka.api.inter_broker); None: a lone broker.
    inter_broker: "InterBrokerIdentity | None" = None

    def __post_init__(self) -> None:
        if self.metadata is None or self.admin is None:
            local = LocalMetadata(self.logs, self.node_id, self.host, self.port)
            self.metadata = self.metadata or local
            self.admin = self.admin or local
        if self.replicas is None:
            self.replicas = LeadsEverything()
        if self.txn_verifier is None and self.transactions is not None:
            self.txn_verifier = LocalTxnVerifier(self.transactions)
        if self.authorizer is None:
            self.authorizer = from_config(self.config)
        if self.client_quotas is None:
            self.client_quotas = ClientQuotaManager(self.metadata.client_quotas, self.config.get("quota.window.num"),
                                                    self.config.get("quota.window.size.seconds"),
                                                    self.clock.monotonic,
                                                    self.config.get("controller.quota.window.num")
                                                    * self.config.get("controller.quota.window.size.seconds"))
        if self.fetch_sessions is None:
            self.fetch_sessions = FetchSessionCache(self.config.get("max.incremental.fetch.session.cache.slots"))

    def advertise(self, host: str, port: int, listeners: tuple = ()) -> None:
        """The address other brokers reach this broker at (its inter-broker listener's), and
        (name, host, port) of every listener, known once it listens."""
        self.host, self.port, self.listeners = host, port, tuple(listeners)
        self.metadata.advertise(host, port, self.listeners)

    @property
    def cluster_id(self) -> str:
        return self.metadata.cluster_id

    def leader_partition(self, topic: str, index: int) -> tuple[Partition | None, ErrorCode]:
        """(partition, NONE) if this broker leads it; (None, the error) otherwise."""
        partition = self.logs.partition(topic, index)
        if partition is None:
            return None, ErrorCode.unknown_topic_or_partition
        if partition.offline:  # its log directory failed (kavka.log.log_dir)
            return None, ErrorCode.kafka_storage_error
        error = self.replicas.leader_error((topic, index))
        if error != ErrorCode.none:
            return None, ErrorCode.not_leader_or_follower
        return partition, ErrorCode.none
