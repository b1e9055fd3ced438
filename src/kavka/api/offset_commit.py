"""OffsetCommit (key 8): store consumed positions in __consumer_offsets.

v2 is Kafka 4's minimum (KIP-896).  Partitions of unknown topics get
UNKNOWN_TOPIC_OR_PARTITION here (Kafka checks its metadata cache the same way);
the rest go to the coordinator, which checks member and generation (or accepts
generation -1 from assign() consumers of an empty group) and the metadata size.
v2-4's retention_time is ignored, as Kafka does since offsets expire by group.
For a consumer-protocol (KIP-848) group the generation field carries the
member epoch, which must be the member's current one (STALE_MEMBER_EPOCH).  With an
authorizer, as Kafka: READ on the group (else every partition GROUP_AUTHORIZATION_FAILED)
and on each topic (TOPIC_AUTHORIZATION_FAILED, not committed).
"""

from __future__ import annotations

from kavka.api._groups import coordinated, reply_or_wait
from kavka.api.authorization import Op, Res, group_id, refused, requires
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.group.offsets import OffsetCommit
from kavka.protocol.errors import ErrorCode

KEY = 8
VERSIONS = (2, 9)


def _unavailable(request: Request):
    errors, commits = split_commits(request)
    return _response(request, {**errors, **{(c.topic, c.partition): ErrorCode.coordinator_not_available
                                            for c in commits}})


def _every(request: Request, code: ErrorCode):
    return _response(request, {(t.name, p.partition_index): code for t in request.body.topics for p in t.partitions})


@api(KEY, "OffsetCommit", VERSIONS)
@requires(Op.READ, Res.GROUP, group_id, refuse=_every)
@coordinated(unavailable=_unavailable)
def handle(request: Request, groups):
    errors, commits = split_commits(request)
    if not commits:
        return _response(request, errors)
    return reply_or_wait(_commit(request, groups, commits),
                         lambda committed: _response(request, {**errors, **committed}))


def split_commits(request: Request) -> tuple[dict[tuple[str, int], ErrorCode], list[OffsetCommit]]:
    """Partitions of unknown or unreadable topics with their error, and the commits for the
    coordinator (OffsetCommit and TxnOffsetCommit alike)."""
    errors: dict[tuple[str, int], ErrorCode] = {}
    commits = []
    broker = request.broker
    denied = refused(request, Op.READ, Res.TOPIC, (t.name for t in request.body.topics))
    for topic in request.body.topics:
        for p in topic.partitions:
            if topic.name in denied:
                errors[(topic.name, p.partition_index)] = ErrorCode.topic_authorization_failed
                continue
            if not broker.metadata.has_partition(topic.name, p.partition_index):
                errors[(topic.name, p.partition_index)] = ErrorCode.unknown_topic_or_partition
                continue
            commits.append(OffsetCommit(topic.name, p.partition_index, p.committed_offset,
                                        getattr(p, "committed_leader_epoch", -1), p.committed_metadata))
    return errors, commits


def _commit(request: Request, groups, commits: list[OffsetCommit]) -> dict:
    body = request.body
    instance_id = getattr(body, "group_instance_id", None)
    version = request.version
    return groups.run(lambda c: c.commit_offsets(body.group_id, body.generation_id_or_member_epoch,
                                                 body.member_id, instance_id, commits, version))


def _response(request: Request, errors: dict):
    r = builder_for(request)
    topics = tuple(
        r.OffsetCommitResponseTopic(name=topic.name, partitions=tuple(
            r.OffsetCommitResponsePartition(partition_index=p.partition_index,
                                            error_code=errors[(topic.name, p.partition_index)])
            for p in topic.partitions))
        for topic in request.body.topics)
    return r.OffsetCommitResponse(topics=topics)
