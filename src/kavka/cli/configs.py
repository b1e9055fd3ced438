"""``kavka configs describe|alter TOPIC``: a topic's settings over the Kafka protocol.

``describe`` shows the topic's overrides (``--all``: every setting, with where
its value comes from: the topic, a broker setting, or the built-in default).
``alter`` changes overrides one at a time with IncrementalAlterConfigs, like
``kafka-configs.sh --alter --add-config/--delete-config``: the overrides it does
not name stay as they are.
"""

from __future__ import annotations

from kavka.cli.common import CliError, bootstrap_parent, parse_pairs, print_table, session
from kavka.client_session import DESCRIBE_CONFIGS, INCREMENTAL_ALTER_CONFIGS, check

TOPIC_RESOURCE = 2
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
DYNAMIC_TOPIC, STATIC_BROKER, DEFAULT = 1, 4, 5
_SOURCES = {2: "broker (dynamic)", 3: "cluster default (dynamic)", DEFAULT: "default"}


def add_parser(commands) -> None:
    parent = bootstrap_parent()
    p = commands.add_parser("configs", help="show or change topic configs",
                            description="Show or change the configs of a topic.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    describe = actions.add_parser("describe", parents=[parent], help="a topic's config overrides (--all: every config)")
    describe.add_argument("topic")
    describe.add_argument("--all", action="store_true", help="every setting, with its source, not only overrides")

    alter = actions.add_parser("alter", parents=[parent], help="set or delete a topic's config overrides",
                               description="Change a topic's config overrides; the others stay as they are.")
    alter.add_argument("topic")
    alter.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                       help="override a setting, e.g. retention.ms=3600000 (repeatable)")
    alter.add_argument("--delete", action="append", default=[], metavar="NAME",
                       help="remove an override: the default applies again (repeatable)")
    alter.add_argument("--append", action="append", default=[], metavar="NAME=ITEMS",
                       help="add items to a list setting, e.g. cleanup.policy=compact (repeatable)")
    alter.add_argument("--subtract", action="append", default=[], metavar="NAME=ITEMS",
                       help="remove items from a list setting (repeatable)")
    alter.add_argument("--dry-run", action="store_true", help="let the broker validate the change, apply nothing")


def run(args) -> int:
    with session(args) as s:
        if args.action == "describe":
            _describe(s, args)
        else:
            _alter(s, args)
    return 0


def _describe(s, args) -> None:
    q = s.builder(DESCRIBE_CONFIGS)
    response = s.request(q.DescribeConfigsRequest(
        resources=(q.DescribeConfigsResource(resource_type=TOPIC_RESOURCE, resource_name=args.topic,
                                             configuration_keys=None),),
        include_synonyms=True, include_documentation=False))
    (result,) = response.results
    check(result.error_code, result.error_message, f"cannot describe the configs of '{args.topic}'")
    entries = sorted(result.configs, key=lambda c: c.name)
    if not args.all:
        entries = [c for c in entries if c.config_source == DYNAMIC_TOPIC]
        if not entries:
            print(f"Topic {args.topic} has no config overrides (--all shows every setting).")
            return
    print_table([(c.name, "(sensitive)" if c.is_sensitive else _value(c),
                  _source(c)) for c in entries], ("NAME", "VALUE", "SOURCE"))


def _value(entry) -> str:
    return "null" if entry.value is None else entry.value


def _source(entry) -> str:
    if entry.config_source == DYNAMIC_TOPIC:
        return "topic"
    if entry.config_source == STATIC_BROKER:
        synonym = next((s.name for s in entry.synonyms if s.source == STATIC_BROKER), None)
        return f"broker ({synonym})" if synonym else "broker"
    return _SOURCES.get(entry.config_source, f"source {entry.config_source}")


def _alter(s, args) -> None:
    ops = [(name, SET, value) for name, value in parse_pairs(args.set, "--set")]
    ops += [(name.strip(), DELETE, None) for name in args.delete]
    ops += [(name, APPEND, value) for name, value in parse_pairs(args.append, "--append")]
    ops += [(name, SUBTRACT, value) for name, value in parse_pairs(args.subtract, "--subtract")]
    if not ops:
        raise CliError("nothing to change: give --set NAME=VALUE, --delete NAME, --append or --subtract")
    names = [name for name, _, _ in ops]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise CliError(f"{', '.join(repeated)} named more than once")
    q = s.builder(INCREMENTAL_ALTER_CONFIGS)
    response = s.request(q.IncrementalAlterConfigsRequest(resources=(q.AlterConfigsResource(
        resource_type=TOPIC_RESOURCE, resource_name=args.topic,
        configs=tuple(q.AlterableConfig(name=n, config_operation=op, value=v) for n, op, v in ops)),),
        validate_only=args.dry_run))
    (result,) = response.responses
    check(result.error_code, result.error_message, f"cannot alter the configs of '{args.topic}'")
    words = {SET: "=", APPEND: " += ", SUBTRACT: " -= "}
    changes = ", ".join(f"{n} deleted" if op == DELETE else f"{n}{words[op]}{v}" for n, op, v in ops)
    if args.dry_run:
        print(f"Valid, not applied (--dry-run) for topic {args.topic}: {changes}")
    else:
        print(f"Updated topic {args.topic}: {changes}")
