"""DescribeUserScramCredentials (key 50) and AlterUserScramCredentials (key 51), KIP-554.

Describe lists each user's mechanisms and iteration counts (never salts or keys); all users
when the request names none, RESOURCE_NOT_FOUND for a user without credentials,
DUPLICATE_RESOURCE for a user named twice.  Alter upserts credentials the client salted
itself (salt, SaltedPassword, iterations: the broker derives StoredKey and ServerKey and keeps
only those) and deletes others, with Kafka's per-user errors: an unknown mechanism is
UNSUPPORTED_SASL_MECHANISM, iterations outside 4096-16384 or an empty name
UNACCEPTABLE_CREDENTIAL, deleting what does not exist RESOURCE_NOT_FOUND, a user altered twice
for one mechanism DUPLICATE_RESOURCE.  A user with any error changes nothing.

Both go through the metadata boundary (kavka.metadata): the credentials a lone broker keeps in
its data directory, or a cluster's in etcd (one change per request, one etcd transaction),
answered once this broker's logins use them.  A change that cannot be stored is answered with
its error for every user it would have changed (REQUEST_TIMED_OUT, retriable, while etcd does
not answer; KAFKA_STORAGE_ERROR when a lone broker's file cannot be written).
"""

from __future__ import annotations

from collections import Counter

from kavka.api.authorization import Op, Res, requires
from kavka.api.registry import Request, api
from kavka.api.responses import NO_THROTTLE, builder_for
from kavka.protocol.errors import ErrorCode
from kavka.security.sasl.scram import MAX_ITERATIONS, MIN_ITERATIONS, credential_from_salted

MECHANISM_TYPES = {1: "SCRAM-SHA-256", 2: "SCRAM-SHA-512"}
TYPE_OF = {name: t for t, name in MECHANISM_TYPES.items()}


@api(50, "DescribeUserScramCredentials", (0, 0))
@requires(Op.DESCRIBE, Res.CLUSTER)
def describe(request: Request):
    r = builder_for(request)
    users = request.broker.metadata.scram_credentials().users()
    names = [u.name for u in request.body.users] if request.body.users else sorted(users)
    counts = Counter(names)
    results = []
    for name in dict.fromkeys(names):
        if counts[name] > 1:
            results.append(r.DescribeUserScramCredentialsResult(
                user=name, error_code=ErrorCode.duplicate_resource,
                error_message=f"Cannot describe SCRAM credentials for the same user twice in a single "
                              f"request: {name}", credential_infos=()))
        elif name not in users:
            results.append(r.DescribeUserScramCredentialsResult(
                user=name, error_code=ErrorCode.resource_not_found,
                error_message=f"Attempt to describe a user credential that does not exist: {name}",
                credential_infos=()))
        else:
            infos = tuple(r.CredentialInfo(mechanism=TYPE_OF[m], iterations=c.iterations)
                          for m, c in sorted(users[name].items()))
            results.append(r.DescribeUserScramCredentialsResult(
                user=name, error_code=ErrorCode.none, error_message=None, credential_infos=infos))
    return r.DescribeUserScramCredentialsResponse(throttle_time=NO_THROTTLE, error_code=ErrorCode.none,
                                                  error_message=None, results=tuple(results))


def _refuse_alter(request: Request, code: ErrorCode):
    """Kafka answers every user of a refused AlterUserScramCredentials with the error."""
    r = builder_for(request)
    users = dict.fromkeys([d.name for d in request.body.deletions] + [u.name for u in request.body.upsertions])
    return r.AlterUserScramCredentialsResponse(throttle_time=NO_THROTTLE, results=tuple(
        r.AlterUserScramCredentialsResult(user=name, error_code=code, error_message=None) for name in users))


@api(51, "AlterUserScramCredentials", (0, 0))
@requires(Op.ALTER, Res.CLUSTER, refuse=_refuse_alter)
async def alter(request: Request):
    r = builder_for(request)
    store = request.broker.metadata.scram_credentials()
    body = request.body
    errors: dict[str, tuple[ErrorCode, str]] = {}
    seen = Counter([(d.name, d.mechanism) for d in body.deletions] +
                   [(u.name, u.mechanism) for u in body.upsertions])
    for (name, mechanism), count in seen.items():
        if count > 1:
            errors.setdefault(name, (ErrorCode.duplicate_resource, "A user credential cannot be altered "
                                     "twice in the same request"))
    for d in body.deletions:
        errors.setdefault(d.name, _check(d.name, d.mechanism) or _exists(store, d.name, d.mechanism) or None)
    for u in body.upsertions:
        problem = _check(u.name, u.mechanism)
        if problem is None and not MIN_ITERATIONS <= u.iterations <= MAX_ITERATIONS:
            problem = (ErrorCode.unacceptable_credential, f"Iterations {u.iterations} must be between "
                       f"{MIN_ITERATIONS} and {MAX_ITERATIONS}")
        errors.setdefault(u.name, problem)
        if errors[u.name] is None:
            errors[u.name] = problem
    ok = {name for name, e in errors.items() if e is None}
    stored = await request.broker.admin.alter_scram_credentials(
        [(u.name, MECHANISM_TYPES[u.mechanism],
          credential_from_salted(MECHANISM_TYPES[u.mechanism], u.salted_password, u.salt, u.iterations))
         for u in body.upsertions if u.name in ok],
        [(d.name, MECHANISM_TYPES[d.mechanism]) for d in body.deletions if d.name in ok])
    if stored.error != ErrorCode.none:
        errors.update({name: (stored.error, stored.message) for name in ok})
    results = tuple(r.AlterUserScramCredentialsResult(
        user=name, error_code=e[0] if e else ErrorCode.none, error_message=e[1] if e else None)
        for name, e in errors.items())
    return r.AlterUserScramCredentialsResponse(throttle_time=NO_THROTTLE, results=results)


def _check(name: str, mechanism: int) -> tuple[ErrorCode, str] | None:
    if not name:
        return ErrorCode.unacceptable_credential, "Username must not be empty"
    if mechanism not in MECHANISM_TYPES:
        return ErrorCode.unsupported_sasl_mechanism, f"Unknown SCRAM mechanism type {mechanism}"
    return None


def _exists(store, name: str, mechanism: int) -> tuple[ErrorCode, str] | None:
    if store.get(name, MECHANISM_TYPES[mechanism]) is None:
        return ErrorCode.resource_not_found, f"Attempt to delete a user credential that does not exist: {name}"
    return None
