"""CreateTopics (key 19): new topics with a partition count, replication and configs.

Each topic is checked in Kafka's order and fails alone, with an error message:

1. its name appears twice in the request: INVALID_REQUEST (reported once);
2. the name is not a legal topic name, collides with an existing topic once
   '.' and '_' are treated alike, or is reserved for the broker
   (kavka.internal_topics; Kafka refuses only ``__cluster_metadata``, but a
   client-made ``__consumer_offsets`` would have the client's partition count
   and cleanup policy): INVALID_TOPIC_EXCEPTION;
3. the topic exists: TOPIC_ALREADY_EXISTS;
4. a config is unknown, null or has a bad value: INVALID_CONFIG, naming it;
5. with manual assignments: num_partitions or replication_factor other than -1
   is INVALID_REQUEST; empty, duplicated or unknown brokers, partition indexes
   that are not 0..n-1, or partitions with different replica counts are
   INVALID_REPLICA_ASSIGNMENT;
6. otherwise -1 means the broker default (``num.partitions``,
   ``default.replication.factor``); a replication factor ≤ 0 or above the number
   of live brokers is INVALID_REPLICATION_FACTOR, a partition count ≤ 0
   INVALID_PARTITIONS.

7. the partitions would take the request past ``max.partitions.per.request``
   or the broker past ``max.partitions.per.broker``: POLICY_VIOLATION, the
   code Kafka's KRaft controller gives an operation of more than 10,000
   records ("Unable to perform excessively large batch operation"); a 1M
   partition request is refused before anything is opened.  Unlike Kafka,
   which fails the whole request then, only the topics past the cap fail.

``validate_only`` runs every check (the caps too) and creates nothing.
Creation is all or nothing per topic and writes the topic metadata twice per
request, however many topics it names (pending, then committed:
kavka.log.log_manager); between every 200 partitions opened the handler
yields to the event loop so other clients are served meanwhile.  v5+ answers carry the
partition count, replication factor and every resolved config of the topic
(sorted by name, as Kafka does); v7 the topic id (zero when only validating:
nothing was created).

With an authorizer, a topic needs CREATE on the cluster or on itself, checked after the
duplicate check as Kafka does: TOPIC_AUTHORIZATION_FAILED (kavka.api.authorization); its configs
are answered only with DESCRIBE_CONFIGS on it (else ``topic_config_error_code``
TOPIC_AUTHORIZATION_FAILED).

Name and config rules belong to the log manager (a dry-run create_topic);
the replica-assignment rules live here and are shared with CreatePartitions.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from kavka.api.authorization import AUTHORIZATION_FAILED, Op, Res, allowed, cluster_allowed
from kavka.api.describe_configs import topic_entries
from kavka.api.errors import (
    InvalidReplicaAssignment,
    InvalidReplicationFactor,
    InvalidRequestError,
    TopicAuthorizationFailed,
    error_code_for,
    error_message,
)
from kavka.api.inter_broker import from_broker
from kavka.api.quotas import MutationQuota
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.config import TopicConfig
from kavka.internal_topics import is_reserved
from kavka.log.errors import InvalidPartitions, InvalidTopic, LogError, PolicyViolation, TopicAlreadyExists
from kavka.log.topic_catalog import unify_collision_chars
from kavka.metadata import NewTopic
from kavka.protocol.errors import ErrorCode

KEY = 19
VERSIONS = (2, 7)
STRICT_QUOTA_SINCE = 6   # controller_mutation_rate refuses topics from v6 on (KIP-599)
ZERO_UUID = uuid.UUID(int=0)


# -- rules shared with CreatePartitions and DescribeConfigs --------------------------------

def live_broker_ids(broker) -> frozenset[int]:
    """Brokers that can hold replicas (kavka.metadata's view)."""
    return broker.metadata.live_broker_ids()


def check_assignments(assignments: Sequence[tuple[int, Sequence[int]]], live: frozenset[int],
                      first_index: int, replicas: int | None = None) -> int:
    """Validate manual (partition index, broker ids) assignments; return their
    replica count.  Indexes must be exactly first_index..first_index+n-1."""
    seen: set[int] = set()
    for index, brokers in assignments:
        if index in seen:
            raise InvalidReplicaAssignment(f"Found multiple manual partition assignments for partition {index}")
        seen.add(index)
        check_replicas(brokers, live)
        if replicas is None:
            replicas = len(brokers)
        elif len(brokers) != replicas:
            raise InvalidReplicaAssignment(
                f"The manual partition assignment includes a partition with {len(brokers)} replica(s), but "
                f"this is not consistent with previous partitions, which have {replicas} replica(s).")
    if seen != set(range(first_index, first_index + len(assignments))):
        raise InvalidReplicaAssignment(
            f"Partitions should be a consecutive integer sequence starting at {first_index}, "
            f"got {sorted(seen)}")
    return replicas or 0


def check_replicas(brokers: Sequence[int], live: frozenset[int]) -> None:
    if not brokers:
        raise InvalidReplicaAssignment("The manual partition assignment includes an empty replica list.")
    for broker_id, count in sorted(Counter(brokers).items()):
        if broker_id not in live:
            raise InvalidReplicaAssignment(
                f"The manual partition assignment includes broker {broker_id}, but no such broker is registered.")
        if count > 1:
            raise InvalidReplicaAssignment(
                f"The manual partition assignment includes the broker {broker_id} more than once.")


# -- planning one topic ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TopicPlan:
    name: str
    partitions: int
    replication_factor: int
    overrides: dict[str, str]
    config: TopicConfig
    assignments: dict[int, tuple[int, ...]] | None = None

    @property
    def new_topic(self) -> NewTopic:
        return NewTopic(self.name, self.partitions, self.replication_factor, self.overrides, self.assignments)


def plan_topic(broker, topic, from_broker: bool = False) -> TopicPlan:
    """Check one CreatableTopic against everything; raise the first failure.

    The log manager owns the name and config rules: a dry run of create_topic
    (one partition, always legal) checks them before the layout is looked at.
    """
    if is_reserved(topic.name) and not from_broker:
        raise InvalidTopic(f"Topic name {topic.name} is reserved for the broker's internal use.")
    overrides = {c.name: c.value for c in topic.configs}
    dry_run = broker.logs.create_topic(topic.name, 1, overrides, validate_only=True, client=True)
    partitions, replication = _layout(broker, topic)
    assignments = {a.partition_index: tuple(a.broker_ids) for a in topic.assignments} or None
    return TopicPlan(topic.name, partitions, replication, overrides, dry_run.config, assignments)


def _layout(broker, topic) -> tuple[int, int]:
    live = live_broker_ids(broker)
    if topic.assignments:
        if topic.replication_factor != -1:
            raise InvalidRequestError(
                "A manual partition assignment was specified, but replication factor was not -1.")
        if topic.num_partitions != -1:
            raise InvalidRequestError(
                "A manual partition assignment was specified, but numPartitions was not -1.")
        pairs = [(a.partition_index, tuple(a.broker_ids)) for a in topic.assignments]
        return len(pairs), check_assignments(pairs, live, 0)
    config = broker.config
    partitions = config.get("num.partitions") if topic.num_partitions == -1 else topic.num_partitions
    replication = (config.get("default.replication.factor") if topic.replication_factor == -1
                   else topic.replication_factor)
    if replication <= 0:
        raise InvalidReplicationFactor("Replication factor must be larger than 0, or -1 to use the default value.")
    if partitions <= 0:
        raise InvalidPartitions("Number of partitions was set to an invalid non-positive value.")
    if replication > len(live):
        raise InvalidReplicationFactor(
            f"Unable to replicate the partition {replication} time(s): The target replication factor of "
            f"{replication} cannot be reached because only {len(live)} broker(s) are registered.")
    return partitions, replication


# -- the handler -------------------------------------------------------------------------

@api(KEY, "CreateTopics", VERSIONS)
async def handle(request: Request):
    """Every topic is checked in order; those that pass are created by the topic admin
    (kavka.metadata) unless the request only validates."""
    r = builder_for(request)
    body, broker = request.body, request.broker
    slots: list = []  # a finished result, or the plan to create
    adding = 0
    names: set[str] = set()
    forwarded = from_broker(request)
    on_cluster = cluster_allowed(request, Op.CREATE)
    quota = MutationQuota(request, STRICT_QUOTA_SINCE)
    for topic, duplicate in unique_topics(body.topics):
        if duplicate:
            slots.append(_failure(r, topic.name, InvalidRequestError("Duplicate topic name.")))
            continue
        try:
            if not on_cluster and not allowed(request, Op.CREATE, Res.TOPIC, topic.name):
                raise TopicAuthorizationFailed(AUTHORIZATION_FAILED)
            if broker.metadata.topic(topic.name) is not None:
                raise TopicAlreadyExists(f"Topic '{topic.name}' already exists.")
            plan = plan_topic(broker, topic, forwarded)
            check_request_cap(broker, adding + plan.partitions)
            if unify_collision_chars(plan.name) in names:
                raise InvalidTopic(f"topic {plan.name!r} collides with another topic of this request")
            broker.admin.check_create(plan.new_topic, also_adding=adding)
        except (LogError, ValueError) as exc:
            slots.append(_failure(r, topic.name, exc))
            continue
        if (throttled := quota.refusal()) is not None:
            slots.append(_refused(r, topic.name, *throttled))
            continue
        if not body.validate_only:
            quota.record(plan.partitions)
        adding += plan.partitions
        names.add(unify_collision_chars(plan.name))
        slots.append(plan)
    plans = [slot for slot in slots if isinstance(slot, TopicPlan)]
    created = {}
    if plans and not body.validate_only:
        results = await broker.admin.create_topics([p.new_topic for p in plans])
        created = {p.name: result for p, result in zip(plans, results)}
    answers = []
    for slot in slots:
        if not isinstance(slot, TopicPlan):
            answers.append(slot)
            continue
        result = created.get(slot.name)
        if result is not None and not result.ok:
            answers.append(_refused(r, slot.name, result.error, result.message))
            continue
        answers.append(_success(r, broker, slot, ZERO_UUID if result is None else result.topic_id or ZERO_UUID,
                                allowed(request, Op.DESCRIBE_CONFIGS, Res.TOPIC, slot.name)))
    return r.CreateTopicsResponse(topics=tuple(answers), throttle_time=quota.throttle_time())


def check_request_cap(broker, adding: int) -> None:
    """POLICY_VIOLATION when one request would add more than max.partitions.per.request
    (shared with CreatePartitions)."""
    limit = broker.config.get("max.partitions.per.request")
    if adding > limit:
        raise PolicyViolation(
            f"Unable to perform excessively large batch operation: the request would add {adding} "
            f"partitions, more than max.partitions.per.request={limit}.")


def unique_topics(topics):
    """(topic, named more than once) for each name, once (shared with CreatePartitions)."""
    counts = Counter(t.name for t in topics)
    answered = set()
    for topic in topics:
        if topic.name not in answered:
            answered.add(topic.name)
            yield topic, counts[topic.name] > 1


def _success(r, broker, plan: TopicPlan, topic_id: uuid.UUID, describable: bool):
    """The created (or validated) topic; its configs (v5+) only with DESCRIBE_CONFIGS on it, else
    ``topic_config_error_code`` TOPIC_AUTHORIZATION_FAILED, as Kafka answers."""
    configs = (_configs(r, broker, plan) if describable and r.has_field("CreatableTopicResult", "configs")
               else ())
    config_error = ErrorCode.none if describable else ErrorCode.topic_authorization_failed
    return r.CreatableTopicResult(
        name=plan.name, topic_id=topic_id, error_code=ErrorCode.none, error_message=None,
        num_partitions=plan.partitions, replication_factor=plan.replication_factor, configs=configs,
        topic_config_error_code=config_error)


def _configs(r, broker, plan: TopicPlan) -> tuple:
    return tuple(
        r.CreatableTopicConfigs(name=e.name, value=e.value, read_only=e.read_only, config_source=e.source,
                                is_sensitive=e.sensitive)
        for e in topic_entries(broker.config, plan.config.values, plan.config.overrides))


def _failure(r, name: str, exc: BaseException):
    return _refused(r, name, error_code_for(exc), error_message(exc))


def _refused(r, name: str, code: ErrorCode, message: str | None):
    return r.CreatableTopicResult(name=name, topic_id=ZERO_UUID, error_code=code, error_message=message,
                                  num_partitions=-1, replication_factor=-1, configs=())
