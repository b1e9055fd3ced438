"""``kavka quotas list|set|remove``: client quotas (kavka.security.quota), like
``kafka-configs.sh --entity-type users|clients|ips``.

An entity is named with ``--user NAME`` / ``--user-default``, ``--client-id NAME`` /
``--client-id-default`` (alone or with a user), or ``--ip ADDRESS`` / ``--ip-default``.
``list`` sends DescribeClientQuotas: every entity without options, else those matching them
(``--strict``: no other entity types); ``set`` sends AlterClientQuotas with each ``--config
KEY=VALUE``, ``remove`` with each ``--config KEY`` removed (``--dry-run``: validate_only).
A refusal (INVALID_REQUEST, CLUSTER_AUTHORIZATION_FAILED) is one line and exit status 1.
"""

from __future__ import annotations

from kavka.cli.common import CliError, command_actions, parse_pairs, print_table, session
from kavka.client_session import ALTER_CLIENT_QUOTAS, DESCRIBE_CLIENT_QUOTAS, check
from kavka.security.quota import CLIENT_ID, IP, MATCH_DEFAULT, MATCH_EXACT, USER

HEADERS = ("ENTITY", "KEY", "VALUE")
_TYPES = ((USER, "user"), (CLIENT_ID, "client_id"), (IP, "ip"))


def add_parser(commands) -> None:
    parent, actions = command_actions(commands, "quotas", "list, set or remove client quotas",
                                      "Client quotas of users, client ids and IP addresses.")
    for action, text in (("list", "the quotas of the entities matching the options"),
                         ("set", "set quota values of one entity"), ("remove", "remove quota values of one entity")):
        a = actions.add_parser(action, parents=[parent], help=text)
        a.add_argument("--user", metavar="NAME", help="a user (principal name)")
        a.add_argument("--user-default", action="store_true", help="the default user entity")
        a.add_argument("--client-id", metavar="ID", help="a client id")
        a.add_argument("--client-id-default", action="store_true", help="the default client-id entity")
        a.add_argument("--ip", metavar="ADDRESS", help="a client IP address")
        a.add_argument("--ip-default", action="store_true", help="the default IP entity")
        if action == "list":
            a.add_argument("--strict", action="store_true", help="only entities with exactly these types")
        else:
            a.add_argument("--config", action="append", default=[], required=True,
                           metavar="KEY=VALUE" if action == "set" else "KEY",
                           help="producer_byte_rate, consumer_byte_rate, request_percentage, "
                                "controller_mutation_rate, connection_creation_rate (ip) (repeatable)")
            a.add_argument("--dry-run", action="store_true", help="validate only")


def run(args) -> int:
    components = _components(args)
    with session(args) as s:
        if args.action == "list":
            _list(s, components, args.strict)
        else:
            if not components:
                raise CliError(f"{args.action} needs an entity: --user, --client-id or --ip (or their -default)")
            _alter(s, components, _ops(args), args.dry_run)
    return 0


def _components(args) -> list[tuple[str, str | None]]:
    found = []
    for kind, attr in _TYPES:
        name, default = getattr(args, attr), getattr(args, f"{attr}_default")
        if name is not None and default:
            raise CliError(f"--{attr.replace('_', '-')} and --{attr.replace('_', '-')}-default exclude each other")
        if name is not None or default:
            found.append((kind, None if default else name))
    return found


def _ops(args) -> dict[str, float | None]:
    if args.action == "remove":
        return {key: None for key in args.config}
    ops = {}
    for key, value in parse_pairs(args.config, "--config"):
        try:
            ops[key] = float(value)
        except ValueError:
            raise CliError(f"--config {key}: {value!r} is not a number") from None
    return ops


def entity_text(entity) -> str:
    return ", ".join(f"{e.entity_type}={'<default>' if e.entity_name is None else e.entity_name}" for e in entity)


def _list(s, components, strict: bool) -> None:
    q = s.builder(DESCRIBE_CLIENT_QUOTAS)
    response = s.request(q.DescribeClientQuotasRequest(strict=strict, components=tuple(
        q.ComponentData(entity_type=kind, match_type=MATCH_DEFAULT if name is None else MATCH_EXACT, match=name)
        for kind, name in components)))
    check(response.error_code, response.error_message, "cannot list the quotas")
    rows = [(entity_text(entry.entity), v.key, _number(v.value)) for entry in response.entries or ()
            for v in entry.values]
    print_table(rows, HEADERS)


def _alter(s, components, ops: dict, dry_run: bool) -> None:
    q = s.builder(ALTER_CLIENT_QUOTAS)
    entity = tuple(q.EntityData(entity_type=kind, entity_name=name) for kind, name in components)
    entry = q.EntryData(entity=entity, ops=tuple(q.OpData(key=k, value=0.0 if v is None else v, remove=v is None)
                                                 for k, v in ops.items()))
    response = s.request(q.AlterClientQuotasRequest(entries=(entry,), validate_only=dry_run))
    result = response.entries[0]
    check(result.error_code, result.error_message, f"cannot alter the quotas of {entity_text(entity)}")
    done = "Would alter" if dry_run else "Altered"
    print(f"{done} the quotas of {entity_text(entity)}: " + ", ".join(
        f"{k}={_number(v)}" if v is not None else f"-{k}" for k, v in ops.items()))


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)
