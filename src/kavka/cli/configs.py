"""``kavka configs describe|alter TOPIC|--broker ID|--broker-default``: settings over the Kafka protocol.

For a topic, ``describe`` shows its overrides (``--all``: every setting, with where
its value comes from: the topic, a broker setting, or the built-in default).
``--broker ID`` names one broker's dynamic settings (KIP-226, ``kafka-configs
--entity-type brokers --entity-name ID``; asked of that broker itself) and
``--broker-default`` the cluster-wide dynamic defaults (``--entity-default``):
``describe`` shows the dynamic values, ``--all`` every broker setting with its source.
``alter`` changes settings one at a time with IncrementalAlterConfigs, like
``kafka-configs.sh --alter --add-config/--delete-config``: the ones it does not
name stay as they are.
"""

from __future__ import annotations

from typing import NamedTuple

from kavka.cli.common import CliError, bootstrap_parent, parse_pairs, print_table, session
from kavka.client_session import DESCRIBE_CONFIGS, INCREMENTAL_ALTER_CONFIGS, check

TOPIC_RESOURCE, BROKER_RESOURCE = 2, 4
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3
DYNAMIC_TOPIC, DYNAMIC_BROKER, DYNAMIC_DEFAULT, STATIC_BROKER, DEFAULT = 1, 2, 3, 4, 5
_SOURCES = {DYNAMIC_BROKER: "broker (dynamic)", DYNAMIC_DEFAULT: "cluster default (dynamic)", DEFAULT: "default"}
_BROKER_SOURCES = {DYNAMIC_BROKER: "dynamic (this broker)", DYNAMIC_DEFAULT: "dynamic (cluster default)",
                   STATIC_BROKER: "static (config file)", DEFAULT: "default"}


class Target(NamedTuple):
    """What a command is about: its resource, how to name it to the user, and the
    connection to ask (a per-broker resource is asked of that broker)."""
    resource_type: int
    name: str
    label: str
    client: object = None


def add_parser(commands) -> None:
    parent = bootstrap_parent()
    p = commands.add_parser("configs", help="show or change topic and broker configs",
                            description="Show or change the configs of a topic, of a broker "
                                        "or the cluster-wide broker defaults.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    describe = actions.add_parser("describe", parents=[parent],
                                  help="a topic's config overrides or a broker's dynamic configs (--all: every config)")
    _add_target(describe)
    describe.add_argument("--all", action="store_true", help="every setting, with its source, not only overrides")

    alter = actions.add_parser("alter", parents=[parent], help="set or delete config overrides or dynamic configs",
                               description="Change a topic's config overrides or a broker's dynamic configs; "
                                           "the others stay as they are.")
    _add_target(alter)
    alter.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                       help="override a setting, e.g. retention.ms=3600000 (repeatable)")
    alter.add_argument("--delete", action="append", default=[], metavar="NAME",
                       help="remove an override: the default applies again (repeatable)")
    alter.add_argument("--append", action="append", default=[], metavar="NAME=ITEMS",
                       help="add items to a list setting, e.g. cleanup.policy=compact (repeatable)")
    alter.add_argument("--subtract", action="append", default=[], metavar="NAME=ITEMS",
                       help="remove items from a list setting (repeatable)")
    alter.add_argument("--dry-run", action="store_true", help="let the broker validate the change, apply nothing")


def _add_target(parser) -> None:
    parser.add_argument("topic", nargs="?", help="the topic (or give --broker / --broker-default)")
    parser.add_argument("--broker", type=int, metavar="ID", help="one broker's dynamic configs")
    parser.add_argument("--broker-default", action="store_true",
                        help="the cluster-wide dynamic broker defaults (kafka-configs --entity-default)")


def run(args) -> int:
    named = [args.topic is not None, args.broker is not None, args.broker_default]
    if sum(named) != 1:
        raise CliError("name exactly one of: a topic, --broker ID, --broker-default")
    with session(args) as s:
        target = _target(s, args)
        if args.action == "describe":
            _describe(s, args, target)
        else:
            _alter(s, args, target)
    return 0


def _target(s, args) -> Target:
    if args.topic is not None:
        return Target(TOPIC_RESOURCE, args.topic, f"topic {args.topic}")
    if args.broker_default:
        return Target(BROKER_RESOURCE, "", "the cluster-wide broker defaults")
    s.metadata([])   # learns the brokers' addresses: a broker's own configs are asked of it
    return Target(BROKER_RESOURCE, str(args.broker), f"broker {args.broker}", s.leader(args.broker))


def _describe(s, args, target: Target) -> None:
    q = s.builder(DESCRIBE_CONFIGS)
    response = s.request(q.DescribeConfigsRequest(
        resources=(q.DescribeConfigsResource(resource_type=target.resource_type, resource_name=target.name,
                                             configuration_keys=None),),
        include_synonyms=True, include_documentation=False), target.client)
    (result,) = response.results
    check(result.error_code, result.error_message, f"cannot describe the configs of {target.label}")
    entries = sorted(result.configs, key=lambda c: c.name)
    topic = target.resource_type == TOPIC_RESOURCE
    if not args.all:
        shown = (DYNAMIC_TOPIC,) if topic else (DYNAMIC_BROKER, DYNAMIC_DEFAULT)
        entries = [c for c in entries if c.config_source in shown]
        if not entries:
            what = "config overrides" if topic else "dynamic configs"
            print(f"{target.label[0].upper()}{target.label[1:]} has no {what} (--all shows every setting).")
            return
    source = _source if topic else _broker_source
    print_table([(c.name, "(sensitive)" if c.is_sensitive else _value(c),
                  source(c)) for c in entries], ("NAME", "VALUE", "SOURCE"))


def _broker_source(entry) -> str:
    return _BROKER_SOURCES.get(entry.config_source, f"source {entry.config_source}")


def _value(entry) -> str:
    return "null" if entry.value is None else entry.value


def _source(entry) -> str:
    if entry.config_source == DYNAMIC_TOPIC:
        return "topic"
    if entry.config_source == STATIC_BROKER:
        synonym = next((s.name for s in entry.synonyms if s.source == STATIC_BROKER), None)
        return f"broker ({synonym})" if synonym else "broker"
    return _SOURCES.get(entry.config_source, f"source {entry.config_source}")


def _alter(s, args, target: Target) -> None:
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
        resource_type=target.resource_type, resource_name=target.name,
        configs=tuple(q.AlterableConfig(name=n, config_operation=op, value=v) for n, op, v in ops)),),
        validate_only=args.dry_run), target.client)
    (result,) = response.responses
    check(result.error_code, result.error_message, f"cannot alter the configs of {target.label}")
    words = {SET: "=", APPEND: " += ", SUBTRACT: " -= "}
    changes = ", ".join(f"{n} deleted" if op == DELETE else f"{n}{words[op]}{v}" for n, op, v in ops)
    if args.dry_run:
        print(f"Valid, not applied (--dry-run) for {target.label}: {changes}")
    else:
        print(f"Updated {target.label}: {changes}")
