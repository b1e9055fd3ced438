"""The topics the broker keeps for itself, and what clients may do with them.

One list for every layer (Kafka's ``org.apache.kafka.common.internals.Topic``):
Kafka 4.x counts ``__consumer_offsets``, ``__transaction_state`` and
``__share_group_state`` as internal; ``__cluster_metadata`` is KRaft's own log,
not a topic at all, and its name is reserved as well.

What the api layer refuses (INVALID_TOPIC_EXCEPTION unless noted), and why:

=====================  ==============================  ===============================
request                Kafka 4.x                       kavka
=====================  ==============================  ===============================
Produce                refused ("Cannot append to      refused, whatever the client id
                       internal topic"), except for
                       client id ``__admin_client``
DeleteRecords          refused                         refused
DeleteTopics           allowed (only ACLs stop it)     refused: it drops every group's
                                                       committed offsets
CreatePartitions       allowed                         refused: groups hash onto the
                                                       partition count, so growing it
                                                       moves groups away from their
                                                       offsets
AlterConfigs /         allowed                         allowed, except a cleanup.policy
IncrementalAlter...                                    other than exactly ``compact``
                                                       (POLICY_VIOLATION): deletion by
                                                       retention would drop offsets of
                                                       groups that commit rarely
CreateTopics, auto-    CreateTopics allowed (only      refused: the broker creates them
creation               __cluster_metadata refused)     itself, with their own layout
=====================  ==============================  ===============================

The broker's own writers (the group coordinator's journal, replication
followers) append to the partition directly and never meet these checks.
"""

from __future__ import annotations

import functools

OFFSETS_TOPIC = "__consumer_offsets"
TRANSACTION_STATE_TOPIC = "__transaction_state"
SHARE_GROUP_STATE_TOPIC = "__share_group_state"
CLUSTER_METADATA_TOPIC = "__cluster_metadata"

# The client id brokers of a cluster use towards each other (kavka.cluster.node).
BROKER_CLIENT_PREFIX = "kavka-broker-"

INTERNAL_TOPICS = frozenset({OFFSETS_TOPIC, TRANSACTION_STATE_TOPIC, SHARE_GROUP_STATE_TOPIC})
# Names no client may create: the internal topics and KRaft's metadata log.
RESERVED_TOPICS = INTERNAL_TOPICS | {CLUSTER_METADATA_TOPIC}
# The only cleanup.policy an internal topic may have: its latest record per key is the state.
INTERNAL_CLEANUP_POLICY = "compact"


def is_internal(name: str | None) -> bool:
    return name in INTERNAL_TOPICS


def is_reserved(name: str | None) -> bool:
    return name in RESERVED_TOPICS


def config_problem(topic: str, overrides: dict[str, str]) -> str | None:
    """Why ``overrides`` (a topic's whole set after a change) may not be the configs of
    ``topic``, or None.  Removing the override counts too: the broker default is delete."""
    if not is_internal(topic):
        return None
    policy = overrides.get("cleanup.policy")
    items = {item.strip() for item in (policy or "").split(",") if item.strip()}
    if items != {INTERNAL_CLEANUP_POLICY}:
        return (f"cleanup.policy of internal topic {topic} must stay {INTERNAL_CLEANUP_POLICY!r}: deleting "
                f"its old segments would lose the state of groups that write rarely")
    return None


def java_string_hash(text: str) -> int:
    """Java's String.hashCode: 31-polynomial over UTF-16 code units, as a signed i32."""
    h = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


@functools.lru_cache(maxsize=16384)
def coordinator_partition(key: str, partitions: int) -> int:
    """The partition of ``__consumer_offsets`` (a group id) or ``__transaction_state`` (a
    transactional id) holding ``key``: Kafka's ``Utils.abs(key.hashCode()) % partitions``
    (abs of MIN_VALUE is 0), so the mapping is the one Kafka would choose and never changes
    between runs (Python's ``hash`` of a str is salted per process).  Cached: the coordinators
    ask it several times per request (about 20 times per transaction of 8 partitions), and the
    hash is a Python loop over the key (4 us for a 14-character id)."""
    h = java_string_hash(key)
    return (0 if h == -(1 << 31) else abs(h)) % partitions
