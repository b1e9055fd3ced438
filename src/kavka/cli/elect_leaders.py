"""``kavka cluster elect-leaders``: leader elections on demand, as Kafka's ``kafka-leader-election``.

It sends one ElectLeaders request (KIP-460) to the bootstrap broker, which has the
controller carry it out, and prints one line per partition::

    orders-0: elected (preferred)
    orders-1: no election needed
    orders-2: PREFERRED_LEADER_NOT_AVAILABLE: The preferred replica of orders-2 is not live ...

The options are ``kafka-leader-election``'s: ``--election-type`` (or ``--type``; ``preferred``, the
default, moves leadership back to each partition's first replica if it is live and in
sync; ``unclean`` gives a partition without a live leader any live replica, which may
lack acknowledged records), and which partitions: ``--topic T`` with ``--partition P``
(Kafka requires the partition; without it here, every partition of T, from Metadata),
``--all-topic-partitions`` (answered only for the partitions where an election was
needed), or ``--path-to-json-file`` (``{"partitions": [{"topic": "t", "partition": 0}]}``).
The exit status is 1 when any election failed; "no election needed" is not a failure.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from kavka.cli.common import CliError, bootstrap_parent, session
from kavka.client_session import ELECT_LEADERS, check, error_name

ELECTION_TYPES = {"preferred": 0, "unclean": 1}
ELECTION_NOT_NEEDED = 84
UNKNOWN_TOPIC = 3
TIMEOUT = timedelta(seconds=30)


def add_parser(actions) -> None:
    p = actions.add_parser(
        "elect-leaders", parents=[bootstrap_parent()], help="elect partitions' leaders (preferred or unclean)",
        description="Ask the cluster's controller to elect leaders, as kafka-leader-election does: one line "
                    "per partition.")
    p.add_argument("--election-type", "--type", choices=sorted(ELECTION_TYPES), default="preferred",
                   type=str.lower,
                   help="preferred (default): back to the first replica; unclean: any live replica of a "
                        "partition without a leader")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--topic", metavar="TOPIC", help="the partitions of this topic (with --partition: one)")
    which.add_argument("--all-topic-partitions", action="store_true", help="every partition of every topic")
    which.add_argument("--path-to-json-file", metavar="FILE", type=Path,
                       help='a JSON file {"partitions": [{"topic": "t", "partition": 0}, ...]}')
    p.add_argument("--partition", type=int, metavar="P", help="only this partition of --topic")


def run(args) -> int:
    if args.partition is not None and args.topic is None:
        raise CliError("--partition needs --topic")
    with session(args) as s:
        wanted = _wanted(s, args)
        results = _elect(s, ELECTION_TYPES[args.election_type], wanted)
    failed = 0
    for topic, partition, code, message in sorted(results):
        if code == 0:
            print(f"{topic}-{partition}: elected ({args.election_type})")
        elif code == ELECTION_NOT_NEEDED:
            print(f"{topic}-{partition}: no election needed")
        else:
            failed += 1
            print(f"{topic}-{partition}: {error_name(code)}: {message or 'election failed'}")
    if not results:
        print("No election was needed.")
    if failed:
        raise CliError(f"{failed} of {len(results)} elections failed")
    return 0


def _wanted(s, args) -> dict[str, list[int]] | None:
    """{topic: [partitions]}, or None for every partition."""
    if args.all_topic_partitions:
        return None
    if args.path_to_json_file is not None:
        return _from_file(args.path_to_json_file)
    if args.partition is not None:
        return {args.topic: [args.partition]}
    (topic,) = s.metadata([args.topic]).topics
    if topic.error_code == UNKNOWN_TOPIC:
        raise CliError(f"UNKNOWN_TOPIC_OR_PARTITION: topic '{args.topic}' does not exist")
    check(topic.error_code, None, f"topic '{args.topic}'")
    return {args.topic: sorted(p.partition_index for p in topic.partitions)}


def _from_file(path: Path) -> dict[str, list[int]]:
    try:
        entries = json.loads(path.read_text())["partitions"]
        wanted: dict[str, list[int]] = {}
        for entry in entries:
            wanted.setdefault(str(entry["topic"]), []).append(int(entry["partition"]))
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise CliError(f'{path}: expected {{"partitions": [{{"topic": ..., "partition": ...}}]}} ({exc!r})') from None
    if not wanted:
        raise CliError(f"{path} names no partition")
    return wanted


def _elect(s, election_type: int, wanted: dict[str, list[int]] | None) -> list[tuple[str, int, int, str | None]]:
    q = s.builder(ELECT_LEADERS)
    if election_type != 0 and not q.has("ElectLeadersRequest", "election_type"):
        raise CliError(f"the broker at {s.bootstrap} knows only preferred elections (ElectLeaders v0)")
    topics = None if wanted is None else tuple(
        q.TopicPartitions(topic=t, partitions=tuple(p)) for t, p in wanted.items())
    response = s.request(q.ElectLeadersRequest(election_type=election_type, topic_partitions=topics,
                                               timeout=TIMEOUT))
    check(getattr(response, "error_code", 0), None, "the election was refused")
    return [(t.topic, p.partition_id, int(p.error_code), p.error_message)
            for t in response.replica_election_results for p in t.partition_result]
