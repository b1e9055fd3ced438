"""Who leads, who coordinates, which topics exist: the one boundary between the API
layer and the broker's metadata.

Every API handler asks the same three questions, whatever the broker's mode:

* :class:`MetadataView` — the read view: brokers and their endpoints, the
  controller, topics (by name or id) and per partition its leader, leader
  epoch, replicas, ISR and offline replicas; the coordinator of a group.
* :class:`TopicAdmin` — changes to topics: create (validate-only too), delete,
  add partitions, replace configs, elect leaders.  Every change answers an :class:`AdminResult`
  (a Kafka error code and message), never raises for an expected refusal.
* :class:`ReplicaRoles` — this broker's part in replication: may it take this
  produce, is it replicated yet, a follower's fetch, may it serve this partition.

Two implementations exist.  :mod:`kavka.metadata.local` is a lone broker: a
cluster of one that leads every partition, whose catalog is its own log
directory.  ``kavka.cluster.metadata`` answers from etcd's view and changes
topics through the controller.  ``kavka.broker`` picks one at start and hands it
to the API layer in :class:`kavka.api.context.BrokerContext`; handlers never ask
which it is.  This package imports the log layer (its TopicConfig and errors)
and the protocol's error codes, and nothing above them.
"""

from kavka.metadata.interfaces import MetadataView, ReplicaRoles, TopicAdmin
from kavka.metadata.model import (
    NO_LEADER,
    AdminResult,
    BrokerEndpoint,
    ElectionType,
    NewTopic,
    PartitionState,
    TopicDescription,
)

__all__ = [
    "NO_LEADER", "AdminResult", "BrokerEndpoint", "ElectionType", "MetadataView", "NewTopic", "PartitionState",
    "ReplicaRoles", "TopicAdmin", "TopicDescription",
]
