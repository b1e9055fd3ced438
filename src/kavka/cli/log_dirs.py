"""``kavka log-dirs describe [--topic T]``: every broker's log directories and the replicas in them.

Like Kafka's ``kafka-log-dirs.sh --describe``, over DescribeLogDirs sent to each
broker of the cluster, with the output shaped for people: one line per log
directory (its volume's size and free space, or its error), then a table of its
partitions with their size in bytes and offset lag.  ``--topic`` (repeatable)
limits the partitions to those topics'; an unknown topic is an error.
"""

from __future__ import annotations

from kavka.cli.common import bootstrap_parent, print_table, session
from kavka.client_session import DESCRIBE_LOG_DIRS, check, error_name


def add_parser(commands) -> None:
    parent = bootstrap_parent()
    p = commands.add_parser("log-dirs", help="describe the brokers' log directories",
                            description="Show each broker's log directories and the partitions they hold.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    describe = actions.add_parser("describe", parents=[parent],
                                  help="per broker and log dir: free space, and each partition's size and lag")
    describe.add_argument("--topic", action="append", default=[], metavar="TOPIC",
                          help="only this topic's partitions (repeatable; default: every partition)")


def run(args) -> int:
    with session(args) as s:
        q = s.builder(DESCRIBE_LOG_DIRS)
        request = q.DescribeLogDirsRequest(topics=_asked(s, q, args.topic))
        for node_id, client in s.broker_connections():
            response = s.request(request, client)
            check(getattr(response, "error_code", 0), None, f"broker {node_id} refused DescribeLogDirs")
            for result in sorted(response.results, key=lambda r: r.log_dir):
                _print_dir(node_id, result)
    return 0


def _asked(s, q, topics: list[str]):
    """None (every partition) or the partitions of the named topics."""
    if not topics:
        return None
    described = [s.topic(name) for name in dict.fromkeys(topics)]
    return tuple(q.DescribableLogDirTopic(topic=t.name, partitions=tuple(sorted(p.partition_index
                                                                              for p in t.partitions)))
                 for t in described)


def _print_dir(node_id: int, result) -> None:
    if result.error_code:
        print(f"broker {node_id}  {result.log_dir}  {error_name(result.error_code)}")
        return
    print(f"broker {node_id}  {result.log_dir}  {_volume(result)}")
    rows = [(t.name, p.partition_index, p.partition_size, p.offset_lag)
            for t in sorted(result.topics, key=lambda t: t.name)
            for p in sorted(t.partitions, key=lambda p: p.partition_index)]
    if rows:
        print_table(rows, ("TOPIC", "PARTITION", "SIZE", "OFFSET-LAG"))
    else:
        print("(no partitions)")


def _volume(result) -> str:
    total, usable = getattr(result, "total_bytes", -1), getattr(result, "usable_bytes", -1)
    if total < 0 or usable < 0:
        return "(volume size not reported)"
    return f"{_human(usable)} usable of {_human(total)}"


def _human(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
