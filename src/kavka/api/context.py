"""What every API handler may use: the broker's identity, settings and storage."""

from __future__ import annotations

from dataclasses import dataclass

from kavka.clock import Clock
from kavka.config import BrokerConfig
from kavka.producer_ids import ProducerIdAllocator, RandomProducerIds

__all__ = ["BrokerContext", "ProducerIdAllocator", "RandomProducerIds"]


@dataclass
class BrokerContext:
    logs: "object"  # kavka.log.log_manager.LogManager
    config: BrokerConfig
    clock: Clock
    node_id: int
    host: str
    port: int
    producer_ids: ProducerIdAllocator
    groups: "object" = None  # kavka.group.runner.GroupRunner; None: no group coordinator
    replicas: "object" = None  # kavka.replication.manager.ReplicaManager; None: a lone broker leads all
    cluster: "object" = None   # kavka.cluster.node.ClusterNode in cluster mode; None: a lone broker
    durable: "object" = None   # kavka.log.group_commit.GroupCommit with --durable; None: ack from the page cache

    def leader_partition(self, topic: str, index: int):
        """(partition, NONE) if this broker leads it; (None, the error) otherwise."""
        from kavka.protocol.errors import ErrorCode
        partition = self.logs.partition(topic, index)
        if partition is None:
            return None, ErrorCode.unknown_topic_or_partition
        if partition.offline:  # its log directory failed (kavka.log.log_dir)
            return None, ErrorCode.kafka_storage_error
        if self.replicas is not None and self.replicas.leader_error((topic, index)) != ErrorCode.none:
            return None, ErrorCode.not_leader_or_follower
        return partition, ErrorCode.none

    def topic_info(self, name: str):
        """The topic's TopicInfo: local, or (in a cluster) as etcd describes it."""
        if self.cluster is not None:
            t = self.cluster.topic(name)
            if t is None:
                return None
            import uuid
            return self.logs.describe_remote(name, uuid.UUID(t.topic_id), len(t.replicas), t.config)
        return self.logs.topic(name)

    def topic_id_of(self, name: str):
        """The topic's id (cluster-wide in a cluster), or None."""
        info = self.topic_info(name)
        return None if info is None else info.topic_id

    def topic_name_of(self, topic_id) -> str | None:
        if self.cluster is not None:
            wanted = str(topic_id)
            return next((n for n in self.cluster.topic_names() if self.cluster.topic(n).topic_id == wanted), None)
        info = self.logs.topic_by_id(topic_id)
        return None if info is None else info.name

    def has_partition(self, topic: str, index: int) -> bool:
        """Whether the partition exists (anywhere in the cluster)."""
        if self.cluster is not None:
            return self.cluster.partition(topic, index) is not None
        return self.logs.partition(topic, index) is not None

    def live_broker_ids(self) -> frozenset[int]:
        return self.cluster.live_broker_ids() if self.cluster is not None else frozenset({self.node_id})

    @property
    def cluster_id(self) -> str:
        """In a cluster, its name in etcd (every broker answers the same); alone, the data dir's."""
        if self.cluster is not None:
            return self.cluster.cluster_id
        return self.logs.cluster_id
