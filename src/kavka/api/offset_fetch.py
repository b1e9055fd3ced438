"""OffsetFetch (key 9): the committed offsets of a group (v8+: of several groups).

Partitions without a commit answer offset -1.  ``topics`` null (v2+) asks for
every committed partition of the group.  Offsets a transaction committed with
TxnOffsetCommit show only once its commit marker is written; with
``require_stable`` (v7+) a partition whose offsets are still pending answers
UNSTABLE_OFFSET_COMMIT (offset -1), which clients retry.  v9 names the
member of a consumer-protocol group, whose epoch must be current.  v1 has no
group-level error field, so a group error goes on every partition.
"""

from __future__ import annotations

from kavka.api._groups import coordinated
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode

KEY = 9
VERSIONS = (1, 9)


def _unavailable(request: Request):
    return _answer(request, lambda *_: (ErrorCode.coordinator_not_available, []))


@api(KEY, "OffsetFetch", VERSIONS)
@coordinated(unavailable=_unavailable)
def handle(request: Request, groups):
    stable = bool(getattr(request.body, "require_stable", False))
    return _answer(request, lambda group_id, wanted, member_id, member_epoch: groups.query(
        lambda c: c.fetch_offsets(group_id, wanted, member_id, member_epoch, stable)))


def _answer(request: Request, lookup):
    """The response, with ``lookup(group_id, wanted, member_id, member_epoch)`` giving each group's offsets."""
    r = builder_for(request)
    body = request.body
    if request.version >= 8:
        results = tuple(_group(request, r, lookup, g.group_id, g.topics, getattr(g, "member_id", None),
                               getattr(g, "member_epoch", -1)) for g in body.groups)
        return r.OffsetFetchResponse(groups=results)
    error, topics = _fetch(request, lookup, body.group_id, body.topics, "OffsetFetchResponseTopic",
                           "OffsetFetchResponsePartition")
    return r.OffsetFetchResponse(topics=topics, error_code=error)


def _group(request: Request, r, lookup, group_id: str, topics, member_id: str | None, member_epoch: int):
    error, results = _fetch(request, lookup, group_id, topics, "OffsetFetchResponseTopics",
                            "OffsetFetchResponsePartitions", member_id, member_epoch)
    return r.OffsetFetchResponseGroup(group_id=group_id, topics=results, error_code=error)


def _fetch(request: Request, lookup, group_id: str, topics, topic_class: str, partition_class: str,
           member_id: str | None = None, member_epoch: int = -1):
    r = builder_for(request)
    wanted = None if topics is None else [(t.name, list(t.partition_indexes)) for t in topics]
    error, found = lookup(group_id, wanted, member_id, member_epoch)
    if error != ErrorCode.none:
        # v1 cannot carry a group error: every partition carries it instead.
        partition_error = error if request.version < 2 else ErrorCode.none
        found = [(name, [(p, None, partition_error) for p in partitions]) for name, partitions in wanted or []]
    make_topic, make_partition = getattr(r, topic_class), getattr(r, partition_class)
    results = tuple(
        make_topic(name=name, partitions=tuple(
            make_partition(partition_index=p, committed_offset=v.offset if v else -1,
                           committed_leader_epoch=v.leader_epoch if v else -1,
                           metadata=v.metadata if v else "", error_code=partition_error)
            for p, v, partition_error in partitions))
        for name, partitions in found)
    return error, results
