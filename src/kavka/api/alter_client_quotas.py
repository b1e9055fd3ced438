"""AlterClientQuotas (key 49, v0-1): set or remove client quota values of entities
(kavka.security.quota), stored through the metadata boundary (a lone broker's data directory,
or etcd) so every broker enforces them.  Each entry is checked as Kafka checks it: a bad entity
(unknown type, a type twice, ``ip`` with another type), a key the entity cannot have, a value
that is not positive or a whole number for the byte rates: INVALID_REQUEST for that entry,
the others applied.  ``validate_only`` checks and changes nothing.  Needs ALTER_CONFIGS on the
cluster (CLUSTER_AUTHORIZATION_FAILED for each entry)."""

from __future__ import annotations

from kavka.api.authorization import Op, Res, requires
from kavka.api.registry import Request, api
from kavka.api.responses import NO_THROTTLE, builder_for
from kavka.protocol.errors import ErrorCode
from kavka.security.quota import InvalidQuota, check_value, entity_of

KEY = 49
VERSIONS = (0, 1)


def _refuse(request: Request, code: ErrorCode):
    return _response(request, [(code, None)] * len(request.body.entries))


@api(KEY, "AlterClientQuotas", VERSIONS)
@requires(Op.ALTER_CONFIGS, Res.CLUSTER, refuse=_refuse)
async def handle(request: Request):
    answers, changes = [], {}
    for entry in request.body.entries:
        try:
            entity, values = _checked(entry)
        except InvalidQuota as exc:
            answers.append((ErrorCode.invalid_request, str(exc)))
            continue
        answers.append(None)
        changes.setdefault(entity, {}).update(values)
    stored = (ErrorCode.none, None)
    if changes and not request.body.validate_only:
        result = await request.broker.admin.alter_client_quotas(changes)
        if result.error != ErrorCode.none:
            stored = (result.error, result.message)
    return _response(request, [stored if a is None else a for a in answers])


def _checked(entry):
    entity = entity_of((e.entity_type, e.entity_name) for e in entry.entity)
    values = {}
    for op in entry.ops:
        if op.key in values:
            raise InvalidQuota(f"Duplicate quota key {op.key} in one entry")
        value = None if op.remove else float(op.value)
        check_value(entity, op.key, value)
        values[op.key] = value
    return entity, values


def _response(request: Request, answers):
    r = builder_for(request)
    entries = tuple(
        r.EntryData(error_code=code, error_message=message,
                    entity=tuple(r.EntityData(entity_type=e.entity_type, entity_name=e.entity_name)
                                 for e in entry.entity))
        for entry, (code, message) in zip(request.body.entries, answers))
    return r.AlterClientQuotasResponse(throttle_time=NO_THROTTLE, entries=entries)
