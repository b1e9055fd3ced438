"""``kavka acls list|add|remove``: the cluster's ACL bindings, like ``kafka-acls.sh``.

``list`` sends DescribeAcls with the filter the options make (every binding without any);
``add`` sends CreateAcls for each ``--operation`` of one principal on one resource pattern
(``--deny`` for a DENY binding, ``--host`` for one client address); ``remove`` sends
DeleteAcls with the filter and prints the bindings it removed.  Names are Kafka's, in any
case (``topic``, ``PREFIXED``, ``Read``).  A refusal (SECURITY_DISABLED without an
authorizer, CLUSTER_AUTHORIZATION_FAILED, INVALID_REQUEST) is one line and exit status 1.
"""

from __future__ import annotations

from kavka.cli.common import CliError, command_actions, print_table, session
from kavka.client_session import CREATE_ACLS, DELETE_ACLS, DESCRIBE_ACLS, check
from kavka.security.acl import AclBinding, AclFilter, AclOperation, AclPermission, PatternType, ResourceType

HEADERS = ("RESOURCE-TYPE", "PATTERN", "NAME", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION")


def add_parser(commands) -> None:
    parent, actions = command_actions(commands, "acls", "list, add or remove ACLs",
                                      "The cluster's ACL bindings (needs an authorizer on the broker).")
    for action, text in (("list", "bindings matching the options"), ("add", "add bindings"),
                         ("remove", "remove the bindings matching the options")):
        a = actions.add_parser(action, parents=[parent], help=text)
        creating = action == "add"
        a.add_argument("--resource-type", required=creating, metavar="TYPE",
                       help="topic, group, cluster, transactional_id, delegation_token, user"
                            + ("" if creating else " or any (default)"))
        a.add_argument("--resource", metavar="NAME",
                       help="the resource name ('*': every resource; cluster: kafka-cluster)")
        a.add_argument("--pattern-type", default="literal" if creating else "any", metavar="PATTERN",
                       help="literal or prefixed" + ("" if creating else ", match or any (default any)"))
        a.add_argument("--principal", required=creating, metavar="TYPE:NAME", help="e.g. User:alice, User:*")
        a.add_argument("--host", default="*" if creating else None, help="a client address ('*': any)")
        a.add_argument("--operation", action="append", default=[], required=creating, metavar="OP",
                       help="READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, "
                            "ALTER_CONFIGS, IDEMPOTENT_WRITE, ALL" + ("" if creating else ", ANY")
                            + " (repeatable)")
        a.add_argument("--deny", action="store_true", help="DENY bindings (default ALLOW)")
        if not creating:
            a.add_argument("--allow", action="store_true", help="only ALLOW bindings")


def run(args) -> int:
    with session(args) as s:
        if args.action == "add":
            _add(s, args)
        elif args.action == "list":
            _list(s, args)
        else:
            _remove(s, args)
    return 0


def _enum(enum, text: str | None, option: str, default: str):
    name = (text or default).upper().replace("-", "_")
    try:
        return enum[name]
    except KeyError:
        choices = ", ".join(e.name.lower() for e in enum if e.value > 0)
        raise CliError(f"{option}: {text!r} is not one of {choices}") from None


def _permission(args, creating: bool) -> AclPermission:
    if args.deny and not creating and args.allow:
        raise CliError("--allow and --deny exclude each other")
    if args.deny:
        return AclPermission.DENY
    return AclPermission.ALLOW if creating or args.allow else AclPermission.ANY


def _filters(args) -> list[AclFilter]:
    kind = _enum(ResourceType, args.resource_type, "--resource-type", "any")
    pattern = _enum(PatternType, args.pattern_type, "--pattern-type", "any")
    permission = _permission(args, creating=False)
    operations = [_enum(AclOperation, op, "--operation", "any") for op in args.operation] or [AclOperation.ANY]
    return [AclFilter(kind, args.resource, pattern, args.principal, args.host, op, permission) for op in operations]


def _bindings(args) -> list[AclBinding]:
    kind = _enum(ResourceType, args.resource_type, "--resource-type", "any")
    name = args.resource if args.resource is not None else ("kafka-cluster" if kind == ResourceType.CLUSTER else None)
    if name is None:
        raise CliError("add needs --resource NAME")
    pattern = _enum(PatternType, args.pattern_type, "--pattern-type", "literal")
    permission = _permission(args, creating=True)
    return [AclBinding(kind, name, pattern, args.principal, args.host, _enum(AclOperation, op, "--operation", ""),
                       permission) for op in args.operation]


def _filter_fields(f: AclFilter) -> dict:
    return dict(resource_type_filter=f.resource_type, resource_name_filter=f.resource_name,
                pattern_type_filter=f.pattern_type, principal_filter=f.principal, host_filter=f.host,
                operation=f.operation, permission_type=f.permission)


def _row(resource_type, pattern, name, principal, host, operation, permission) -> tuple:
    return (ResourceType(resource_type).name, PatternType(pattern).name, name, principal, host,
            AclOperation(operation).name, AclPermission(permission).name)


def _add(s, args) -> None:
    bindings = _bindings(args)
    q = s.builder(CREATE_ACLS)
    response = s.request(q.CreateAclsRequest(creations=tuple(q.AclCreation(
        resource_type=b.resource_type, resource_name=b.resource_name, resource_pattern_type=b.pattern_type,
        principal=b.principal, host=b.host, operation=b.operation, permission_type=b.permission) for b in bindings)))
    for b, result in zip(bindings, response.results):
        check(result.error_code, result.error_message, f"cannot add {b}")
    for b in bindings:
        print(f"Added {b}")


def _list(s, args) -> None:
    rows = set()
    for f in _filters(args):
        q = s.builder(DESCRIBE_ACLS)
        response = s.request(q.DescribeAclsRequest(**_filter_fields(f)))
        check(response.error_code, response.error_message, "cannot list the ACLs")
        rows.update(_row(r.resource_type, r.pattern_type, r.resource_name, a.principal, a.host, a.operation,
                         a.permission_type) for r in response.resources for a in r.acls)
    print_table(sorted(rows), HEADERS)


def _remove(s, args) -> None:
    filters = _filters(args)
    q = s.builder(DELETE_ACLS)
    response = s.request(q.DeleteAclsRequest(filters=tuple(q.DeleteAclsFilter(**_filter_fields(f))
                                                           for f in filters)))
    rows = set()
    for result in response.filter_results:
        check(result.error_code, result.error_message, "cannot remove the ACLs")
        rows.update(_row(m.resource_type, m.pattern_type, m.resource_name, m.principal, m.host, m.operation,
                         m.permission_type) for m in result.matching_acls)
    print(f"Removed {len(rows)} binding{'s' if len(rows) != 1 else ''}.")
    if rows:
        print_table(sorted(rows), HEADERS)
