"""DeleteTopics (key 20): remove topics by name (v1-5) or by name or id (v6).

As in Kafka:

* ``delete.topic.enable=false`` fails every topic: TOPIC_DELETION_DISABLED from
  v3, INVALID_REQUEST before (older clients do not know the newer code);
* a name or id given twice: INVALID_REQUEST, reported once; a v6 entry with both
  a name and an id, or neither: INVALID_REQUEST;
* an unknown name: UNKNOWN_TOPIC_OR_PARTITION; an unknown id: UNKNOWN_TOPIC_ID.

Stricter than Kafka (which lets anyone with the ACL delete them): an internal
topic (kavka.internal_topics) is refused with INVALID_TOPIC_EXCEPTION, by name
or by id; deleting ``__consumer_offsets`` would drop every group's offsets.

With an authorizer, each topic needs DELETE on it: TOPIC_AUTHORIZATION_FAILED, by name
before its existence is looked at, by id once the id is known (kavka.api.authorization).

Answers keep the request's order, one per distinct topic reference.
"""

from __future__ import annotations

import uuid
from collections import Counter

from kavka.api.authorization import AUTHORIZATION_FAILED, Op, Res, allowed
from kavka.api.errors import (InvalidRequestError, TopicAuthorizationFailed, TopicDeletionDisabled, error_code_for,
                              error_message)
from kavka.api.quotas import MutationQuota
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.internal_topics import is_internal
from kavka.log.errors import InvalidTopic
from kavka.protocol.errors import ErrorCode

KEY = 20
VERSIONS = (1, 6)
STRICT_QUOTA_SINCE = 5   # controller_mutation_rate refuses topics from v5 on (KIP-599)
ZERO_UUID = uuid.UUID(int=0)
DISABLED = "Topic deletion is disabled."


@api(KEY, "DeleteTopics", VERSIONS)
async def handle(request: Request):
    r = builder_for(request)
    refs = _references(request)
    broker = request.broker
    if not broker.config.get("delete.topic.enable"):
        exc = TopicDeletionDisabled(DISABLED) if request.version >= 3 else InvalidRequestError(DISABLED)
        results = [_result(r, name, topic_id, *_fail(exc)) for name, topic_id in refs]
        return r.DeleteTopicsResponse(responses=tuple(results))
    counts = Counter(refs)
    quota = MutationQuota(request, STRICT_QUOTA_SINCE)
    results, answered = [], set()
    for ref in refs:
        if ref in answered:
            continue
        answered.add(ref)
        name, topic_id = ref
        if counts[ref] > 1:
            what = "name" if name is not None else "id"
            results.append(_result(r, name, topic_id, *_fail(InvalidRequestError(f"Duplicate topic {what}."))))
        else:
            results.append(await _delete(r, request, name, topic_id, quota))
    return r.DeleteTopicsResponse(responses=tuple(results), throttle_time=quota.throttle_time())


def _references(request: Request) -> list[tuple[str | None, uuid.UUID]]:
    """(name, id) per requested topic; exactly one of them is set when valid."""
    if request.version < 6:
        return [(name, ZERO_UUID) for name in request.body.topic_names]
    return [(t.name, t.topic_id or ZERO_UUID) for t in request.body.topics]


async def _delete(r, request: Request, name: str | None, topic_id: uuid.UUID, quota: MutationQuota):
    broker = request.broker
    if (name is None) == (topic_id == ZERO_UUID):
        problem = "Neither topic name nor id were specified." if name is None else \
            "You may not specify both topic name and topic id."
        return _result(r, name, topic_id, *_fail(InvalidRequestError(problem)))
    view = broker.metadata
    if name is None:
        info = view.topic_by_id(topic_id)
        if info is None:
            return _result(r, None, topic_id, ErrorCode.unknown_topic_id, f"Topic id {topic_id} does not exist.")
    elif not allowed(request, Op.DELETE, Res.TOPIC, name):
        return _result(r, name, topic_id, *_fail(TopicAuthorizationFailed(AUTHORIZATION_FAILED)))
    else:
        info = view.topic(name)
        if info is None:
            return _result(r, name, topic_id, ErrorCode.unknown_topic_or_partition,
                           f"Topic '{name}' does not exist.")
    if name is None and not allowed(request, Op.DELETE, Res.TOPIC, info.name):
        return _result(r, None, topic_id, *_fail(TopicAuthorizationFailed(AUTHORIZATION_FAILED)))
    if is_internal(info.name):
        return _result(r, info.name, info.topic_id, *_fail(_internal(info.name)))
    if (throttled := quota.refusal()) is not None:
        return _result(r, info.name, info.topic_id, *throttled)
    quota.record(info.partitions)
    result = await broker.admin.delete_topic(info.name)
    return _result(r, info.name, info.topic_id, result.error, result.message)


def _internal(name: str) -> InvalidTopic:
    return InvalidTopic(f"Topic {name} is an internal topic of the broker and cannot be deleted.")


def _fail(exc: BaseException) -> tuple[ErrorCode, str]:
    return error_code_for(exc), error_message(exc)


def _result(r, name, topic_id, code: ErrorCode, message: str | None):
    return r.DeletableTopicResult(name=name, topic_id=topic_id, error_code=code, error_message=message)
