"""``kavka users list|add|remove``: SCRAM credentials, like ``kafka-configs.sh --entity-type users``.

``list`` sends DescribeUserScramCredentials (every user, or those named) and prints each
user's mechanisms and iteration counts (a broker never tells salts or keys).  ``add`` salts
the password here, as kafka-configs does: a random salt and PBKDF2's SaltedPassword for each
``--mechanism`` go to the broker in AlterUserScramCredentials, never the password itself (it is
asked on the terminal without ``--password``).  ``remove`` deletes the named mechanisms, or
every one the user has.  A refusal (RESOURCE_NOT_FOUND, UNACCEPTABLE_CREDENTIAL,
CLUSTER_AUTHORIZATION_FAILED, ...) is one line and exit status 1.
"""

from __future__ import annotations

import getpass
import secrets

from kavka.cli.common import CliError, command_actions, print_table, session
from kavka.client_session import ALTER_USER_SCRAM_CREDENTIALS, DESCRIBE_USER_SCRAM_CREDENTIALS, check
from kavka.security.sasl.scram import MAX_ITERATIONS, MECHANISMS, MIN_ITERATIONS, salted_password

MECHANISM_TYPES = {"SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2}
MECHANISM_NAMES = {t: name for name, t in MECHANISM_TYPES.items()}


def add_parser(commands) -> None:
    parent, actions = command_actions(commands, "users", "list, add or remove SCRAM credentials",
                                      "Users' SCRAM credentials (SCRAM-SHA-256, SCRAM-SHA-512) on the cluster.")
    listing = actions.add_parser("list", parents=[parent], help="users and their mechanisms")
    listing.add_argument("user", nargs="*", help="only these users (default every user)")
    add = actions.add_parser("add", parents=[parent], help="add or replace a user's credentials")
    add.add_argument("user")
    add.add_argument("--mechanism", action="append", metavar="MECHANISM",
                     help="SCRAM-SHA-256 or SCRAM-SHA-512 (repeatable; default SCRAM-SHA-256)")
    add.add_argument("--iterations", type=int, default=MIN_ITERATIONS,
                     help=f"PBKDF2 iterations, 4096-16384 (default {MIN_ITERATIONS})")
    add.add_argument("--password", help="the password (asked on the terminal without it)")
    remove = actions.add_parser("remove", parents=[parent], help="remove a user's credentials")
    remove.add_argument("user")
    remove.add_argument("--mechanism", action="append", metavar="MECHANISM",
                        help="the mechanism to remove (repeatable; default every one the user has)")


def run(args) -> int:
    mechanisms = [_mechanism(m) for m in getattr(args, "mechanism", None) or ()]
    with session(args) as s:
        if args.action == "list":
            _list(s, args.user)
        elif args.action == "add":
            _check_iterations(args.iterations)
            password = args.password if args.password is not None else _ask_password(args.user)
            _alter(s, args.user, upserts=mechanisms or ["SCRAM-SHA-256"], password=password,
                   iterations=args.iterations)
            print(f"Added {', '.join(mechanisms or ['SCRAM-SHA-256'])} credentials for user {args.user}.")
        else:
            mechanisms = mechanisms or [m for _user, m, _i in _describe(s, [args.user])]
            _alter(s, args.user, deletions=mechanisms)
            print(f"Removed {', '.join(mechanisms)} credentials of user {args.user}.")
    return 0


def _mechanism(text: str) -> str:
    name = text.upper()
    if name not in MECHANISMS:
        raise CliError(f"--mechanism: {text!r} is not one of {', '.join(MECHANISMS)}")
    return name


def _check_iterations(iterations: int) -> None:
    if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise CliError(f"UNACCEPTABLE_CREDENTIAL: --iterations must be {MIN_ITERATIONS}-{MAX_ITERATIONS}, "
                       f"not {iterations}")


def _ask_password(user: str) -> str:
    password = getpass.getpass(f"password for {user}: ")
    if password != getpass.getpass("again: "):
        raise CliError("the two passwords differ")
    return password


def _describe(s, users: list[str]) -> list[tuple[str, str, int]]:
    """(user, mechanism, iterations) of the named users (every user when none)."""
    q = s.builder(DESCRIBE_USER_SCRAM_CREDENTIALS)
    response = s.request(q.DescribeUserScramCredentialsRequest(
        users=tuple(q.UserName(name=u) for u in users) if users else None))
    check(response.error_code, response.error_message, "cannot describe the SCRAM credentials")
    rows = []
    for result in response.results:
        check(result.error_code, result.error_message, f"user '{result.user}'")
        rows.extend((result.user, MECHANISM_NAMES.get(c.mechanism, f"UNKNOWN({c.mechanism})"), c.iterations)
                    for c in result.credential_infos)
    return sorted(rows)


def _list(s, users: list[str]) -> None:
    print_table(_describe(s, users), ("USER", "MECHANISM", "ITERATIONS"))


def _alter(s, user: str, upserts=(), deletions=(), password: str = "", iterations: int = MIN_ITERATIONS) -> None:
    q = s.builder(ALTER_USER_SCRAM_CREDENTIALS)
    upsertions = []
    for mechanism in upserts:
        salt = secrets.token_bytes(32)
        upsertions.append(q.ScramCredentialUpsertion(
            name=user, mechanism=MECHANISM_TYPES[mechanism], iterations=iterations, salt=salt,
            salted_password=salted_password(mechanism, password, salt, iterations)))
    response = s.request(q.AlterUserScramCredentialsRequest(
        deletions=tuple(q.ScramCredentialDeletion(name=user, mechanism=MECHANISM_TYPES[m]) for m in deletions),
        upsertions=tuple(upsertions)))
    for result in response.results:
        check(result.error_code, result.error_message, f"cannot change the credentials of user '{result.user}'")
