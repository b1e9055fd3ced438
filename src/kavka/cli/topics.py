"""``kavka topics list|describe|create|alter|delete``: manage topics over the Kafka protocol.

Like Kafka's ``kafka-topics.sh``, with the output shaped for people: ``describe``
shows each partition's leader, replicas, in-sync replicas and log start/end
offsets, and the topic's non-default configs.
"""

from __future__ import annotations

import base64
import datetime
import uuid

from kavka.cli.common import CliError, bootstrap_parent, parse_pairs, print_table, session
from kavka.client_session import (
    CREATE_PARTITIONS,
    CREATE_TOPICS,
    DELETE_TOPICS,
    DESCRIBE_CONFIGS,
    EARLIEST,
    LATEST,
    check,
)

ADMIN_TIMEOUT = datetime.timedelta(seconds=30)
TOPIC_RESOURCE, DEFAULT_CONFIG = 2, 5
TOPIC_ALREADY_EXISTS, UNKNOWN_TOPIC = 36, 3


def add_parser(commands) -> None:
    parent = bootstrap_parent()
    p = commands.add_parser("topics", help="list, describe, create, alter or delete topics",
                            description="Manage topics on a Kafka-compatible broker.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = actions.add_parser("list", parents=[parent], help="list topic names")
    listing.add_argument("--exclude-internal", action="store_true", help="leave out __consumer_offsets & co")

    describe = actions.add_parser("describe", parents=[parent],
                                  help="partitions, leaders, replicas, offsets and configs of a topic")
    describe.add_argument("topic")

    create = actions.add_parser("create", parents=[parent], help="create a topic")
    create.add_argument("topic")
    create.add_argument("--partitions", type=int, default=-1, metavar="N",
                        help="number of partitions (default: the broker's num.partitions)")
    create.add_argument("--replication-factor", type=int, default=-1, metavar="N",
                        help="replicas per partition (default: the broker's default.replication.factor)")
    create.add_argument("--config", action="append", default=[], metavar="NAME=VALUE",
                        help="a topic config such as retention.ms=86400000 (repeatable)")
    create.add_argument("--if-not-exists", action="store_true", help="succeed if the topic already exists")

    alter = actions.add_parser("alter", parents=[parent], help="add partitions to a topic")
    alter.add_argument("topic")
    alter.add_argument("--partitions", type=int, required=True, metavar="N", help="the new partition count")

    delete = actions.add_parser("delete", parents=[parent], help="delete a topic and its records")
    delete.add_argument("topic")
    delete.add_argument("--if-exists", action="store_true", help="succeed if there is no such topic")


def run(args) -> int:
    with session(args) as s:
        return _ACTIONS[args.action](s, args) or 0


# -- list and describe ---------------------------------------------------------------------

def _list(s, args) -> None:
    topics = s.metadata(None).topics
    for topic in sorted(topics, key=lambda t: t.name):
        if not (args.exclude_internal and topic.is_internal):
            print(topic.name)


def _describe(s, args) -> None:
    topic = s.topic(args.topic)
    indexes = sorted(p.partition_index for p in topic.partitions)
    starts = s.list_offsets(topic, indexes, EARLIEST)
    ends = s.list_offsets(topic, indexes, LATEST)
    replication = max((len(p.replica_nodes) for p in topic.partitions), default=0)
    head = [f"Topic: {topic.name}"]
    topic_id = getattr(topic, "topic_id", None)
    if topic_id is not None and topic_id.int:
        head.append(f"TopicId: {base64.urlsafe_b64encode(topic_id.bytes).rstrip(b'=').decode()}")
    head += [f"Partitions: {len(indexes)}", f"ReplicationFactor: {replication}"]
    if topic.is_internal:
        head.append("Internal: true")
    print("  ".join(head))
    configs = [f"{c.name}={'(sensitive)' if c.value is None else c.value}"
               for c in _configs(s, topic.name) if c.config_source != DEFAULT_CONFIG]
    print(f"Configs: {', '.join(configs) if configs else '(all defaults)'}")
    rows = []
    for p in sorted(topic.partitions, key=lambda p: p.partition_index):
        rows.append((p.partition_index, p.leader_id if p.leader_id >= 0 else "none", _ids(p.replica_nodes),
                     _ids(p.isr_nodes), starts[p.partition_index], ends[p.partition_index]))
    print_table(rows, ("PARTITION", "LEADER", "REPLICAS", "ISR", "LOG-START", "LOG-END"))


def _ids(nodes) -> str:
    return ",".join(str(n) for n in nodes) or "-"


def _configs(s, name: str):
    q = s.builder(DESCRIBE_CONFIGS)
    response = s.request(q.DescribeConfigsRequest(
        resources=(q.DescribeConfigsResource(resource_type=TOPIC_RESOURCE, resource_name=name,
                                             configuration_keys=None),),
        include_synonyms=False, include_documentation=False))
    (result,) = response.results
    check(result.error_code, result.error_message, f"cannot describe the configs of '{name}'")
    return sorted(result.configs, key=lambda c: c.name)


# -- create, alter, delete -----------------------------------------------------------------

def _create(s, args) -> None:
    configs = parse_pairs(args.config, "--config")
    q = s.builder(CREATE_TOPICS)
    response = s.request(q.CreateTopicsRequest(topics=(q.CreatableTopic(
        name=args.topic, num_partitions=args.partitions, replication_factor=args.replication_factor,
        assignments=(), configs=tuple(q.CreatableTopicConfig(name=k, value=v) for k, v in configs)),),
        timeout=ADMIN_TIMEOUT, validate_only=False))
    (result,) = response.topics
    if result.error_code == TOPIC_ALREADY_EXISTS and args.if_not_exists:
        print(f"Topic {args.topic} already exists.")
        return
    check(result.error_code, result.error_message, f"cannot create topic '{args.topic}'")
    partitions = getattr(result, "num_partitions", -1)
    partitions = partitions if partitions > 0 else args.partitions
    shape = f" with {partitions} partition{'s' if partitions != 1 else ''}" if partitions > 0 else ""
    print(f"Created topic {args.topic}{shape}.")


def _alter(s, args) -> None:
    if args.partitions < 1:
        raise CliError(f"--partitions must be at least 1, got {args.partitions}")
    q = s.builder(CREATE_PARTITIONS)
    response = s.request(q.CreatePartitionsRequest(
        topics=(q.CreatePartitionsTopic(name=args.topic, count=args.partitions, assignments=None),),
        timeout=ADMIN_TIMEOUT, validate_only=False))
    (result,) = response.results
    if result.error_code == UNKNOWN_TOPIC:
        raise CliError(f"UNKNOWN_TOPIC_OR_PARTITION: topic '{args.topic}' does not exist")
    check(result.error_code, result.error_message, f"cannot add partitions to '{args.topic}'")
    print(f"Topic {args.topic} now has {args.partitions} partitions.")


def _delete(s, args) -> None:
    q = s.builder(DELETE_TOPICS)
    if q.has("DeleteTopicsRequest", "topics"):
        request = q.DeleteTopicsRequest(topics=(q.DeleteTopicState(name=args.topic, topic_id=_ZERO_UUID),),
                                        timeout=ADMIN_TIMEOUT)
    else:
        request = q.DeleteTopicsRequest(topic_names=(args.topic,), timeout=ADMIN_TIMEOUT)
    (result,) = s.request(request).responses
    if result.error_code == UNKNOWN_TOPIC:
        if args.if_exists:
            print(f"Topic {args.topic} does not exist.")
            return
        raise CliError(f"UNKNOWN_TOPIC_OR_PARTITION: topic '{args.topic}' does not exist")
    check(result.error_code, getattr(result, "error_message", None), f"cannot delete topic '{args.topic}'")
    print(f"Deleted topic {args.topic}.")


_ZERO_UUID = uuid.UUID(int=0)
_ACTIONS = {"list": _list, "describe": _describe, "create": _create, "alter": _alter, "delete": _delete}
