"""AlterConfigs (key 33): replace a topic's whole set of config overrides.

The legacy admin call: the configs sent for a resource *become* its overrides,
and every override not named goes back to its default.
IncrementalAlterConfigs (incremental_alter_configs.py) changes one setting at
a time and shares the per-resource rules here:

* a resource named twice in one request: INVALID_REQUEST "Duplicate resource."
  (answered once, nothing applied);
* the same config named twice in a resource, or a null value (except an
  incremental DELETE): INVALID_REQUEST;
* TOPIC (2): the topic must exist (UNKNOWN_TOPIC_OR_PARTITION; the empty name,
  Kafka's "default topic", is INVALID_REQUEST); unknown names and bad values are
  INVALID_CONFIG with a message naming the setting, checked by the log manager,
  which persists the overrides (they survive a restart) and hands the new
  config to every running partition;
* an internal topic (kavka.internal_topics) may change any setting but
  ``cleanup.policy``, which must stay ``compact`` (POLICY_VIOLATION): Kafka
  allows anything, but deletion by retention there loses committed offsets;
* BROKER (4): dynamic broker settings, this broker's (name: our id) or the
  cluster-wide defaults (name ""): the configs sent become that scope's whole set
  (api/broker_configs.py);
* BROKER_LOGGER (8): INVALID_REQUEST (log levels change through
  IncrementalAlterConfigs, as in Kafka); anything else: INVALID_REQUEST.

``validate_only`` runs every check and changes nothing.  Every failure is per
resource, with an error message; answers come in request order.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Callable, Mapping

from kavka.api import broker_configs
from kavka.api.authorization import Op, check_config_resource
from kavka.api.describe_configs import BROKER, BROKER_LOGGER, TOPIC
from kavka.api.errors import InvalidRequestError, PolicyViolation, error_code_for, error_message
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.internal_topics import config_problem
from kavka.log.errors import LogError, UnknownTopicOrPartition
from kavka.metadata import TopicDescription
from kavka.protocol.errors import ErrorCode

KEY = 33
VERSIONS = (0, 2)

log = logging.getLogger("kavka.api")

# apply(broker, resource, validate_only) -> None; raises LogError/ValueError to fail it.
Apply = Callable[[object, object, bool], None]


# -- shared with IncrementalAlterConfigs ---------------------------------------------------

def answer_resources(r, request: Request, apply: Apply) -> tuple:
    """One AlterConfigsResourceResponse per distinct resource, in request order; with an
    authorizer each needs ALTER_CONFIGS (kavka.api.authorization.check_config_resource)."""
    broker, body = request.broker, request.body
    counts = Counter((res.resource_type, res.resource_name) for res in body.resources)
    answers, answered = [], set()
    for resource in body.resources:
        ref = (resource.resource_type, resource.resource_name)
        if ref in answered:
            continue
        answered.add(ref)
        try:
            if counts[ref] > 1:
                raise InvalidRequestError("Duplicate resource.")
            check_config_resource(request, Op.ALTER_CONFIGS, resource.resource_type, resource.resource_name)
            pending = apply(broker, resource, body.validate_only)
            code, message = ErrorCode.none, None
        except (LogError, ValueError) as exc:
            pending, (code, message) = None, (error_code_for(exc), error_message(exc))
        answers.append((resource, pending, code, message))
    if any(pending is not None for _, pending, _, _ in answers):
        return _after(r, answers)   # changes are made by the topic admin
    return tuple(_answer(r, *a) for a in answers)


def _answer(r, resource, _pending, code, message):
    return r.AlterConfigsResourceResponse(error_code=code, error_message=message,
                                          resource_type=resource.resource_type, resource_name=resource.resource_name)


async def _after(r, answers):
    done = []
    for resource, pending, code, message in answers:
        if pending is not None:
            result = await pending
            code, message = result.error, result.message
        done.append(_answer(r, resource, None, code, message))
    return tuple(done)


def respond(build, responses):
    """``build(responses)`` now, or a coroutine of it when the responses are awaited."""
    if isinstance(responses, tuple):
        return build(responses)

    async def later():
        return build(await responses)
    return later()


def check_names(configs, null_allowed: Callable[[object], bool] = lambda c: False) -> None:
    """No config named twice, no null values where a value is needed."""
    repeated = sorted(name for name, n in Counter(c.name for c in configs).items() if n > 1)
    if repeated:
        raise InvalidRequestError(f"Error due to duplicate config keys: {', '.join(repeated)}")
    nulls = [c.name for c in configs if c.value is None and not null_allowed(c)]
    if nulls:
        raise InvalidRequestError(f"Null value not supported for: {', '.join(nulls)}")


def require_topic(broker, name: str) -> TopicDescription:
    if name == "":
        raise InvalidRequestError("Default topic resources are not allowed.")
    info = broker.metadata.topic(name)
    if info is None:
        raise UnknownTopicOrPartition(f"The topic '{name}' does not exist.")
    return info


def refuse_non_topic(resource_type: int) -> None:
    """The answer for every resource type no handler changes."""
    if resource_type == BROKER_LOGGER:
        raise InvalidRequestError("AlterConfigs cannot change broker log levels: use IncrementalAlterConfigs "
                                  "(kafka-configs --entity-type broker-loggers).")
    raise InvalidRequestError(f"Unsupported resource type: {resource_type}")


def alter_topic(broker, name: str, changes: Mapping[str, str | None], validate_only: bool):
    """Check override changes (None removes one) with the topic admin (kavka.metadata),
    then, unless only validating, an awaitable of the change's AdminResult."""
    if not changes:
        return None
    info = broker.metadata.topic(name)
    merged = {k: v for k, v in {**info.overrides, **changes}.items() if v is not None}
    problem = config_problem(name, merged)
    if problem is not None:
        raise PolicyViolation(problem)
    broker.admin.check_config(name, changes)
    if validate_only:
        return None
    return _altered(broker, name, changes)


async def _altered(broker, name: str, changes: Mapping[str, str | None]):
    result = await broker.admin.alter_config(name, changes)
    if result.ok:
        log.info("altered configs of topic %s: %s", name,
                 ", ".join(f"{k}={'(default)' if v is None else v}" for k, v in sorted(changes.items())))
    return result


# -- the handler -------------------------------------------------------------------------

@api(KEY, "AlterConfigs", VERSIONS)
def handle(request: Request):
    r = builder_for(request)
    return respond(lambda responses: r.AlterConfigsResponse(responses=responses),
                   answer_resources(r, request, _replace))


def _replace(broker, resource, validate_only: bool) -> None:
    check_names(resource.configs)
    if resource.resource_type == BROKER:
        scope = broker_configs.scope_of(broker, resource.resource_name)
        return broker_configs.alter(broker, scope, {c.name: c.value for c in resource.configs}, validate_only)
    if resource.resource_type != TOPIC:
        refuse_non_topic(resource.resource_type)
        return
    info = require_topic(broker, resource.resource_name)
    changes: dict[str, str | None] = {name: None for name in info.overrides}
    changes.update((c.name, c.value) for c in resource.configs)
    return alter_topic(broker, info.name, changes, validate_only)
