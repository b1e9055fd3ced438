"""AlterPartitionReassignments (key 45, KIP-455): move partitions' replicas between brokers.

Per partition, in Kafka's controller's order: an unknown topic or partition is
UNKNOWN_TOPIC_OR_PARTITION; a target (``replicas``) must be non-empty, of
registered brokers, none twice (INVALID_REPLICA_ASSIGNMENT); a null target
cancels the partition's reassignment (NO_REASSIGNMENT_IN_PROGRESS when none
runs).  The checked targets go to ``broker.admin`` (in a cluster, the
controller: kavka.cluster.controller), which answers once the reassignment is
recorded; the replicas move afterwards, and ListPartitionReassignments shows
them until they have.
"""

from __future__ import annotations

from kavka.api.create_topics import check_replicas, live_broker_ids
from kavka.api.errors import error_code_for, error_message
from kavka.api.authorization import Op, Res, requires
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode

KEY = 45
VERSIONS = (0, 0)


@api(KEY, "AlterPartitionReassignments", VERSIONS)
@requires(Op.ALTER, Res.CLUSTER)
async def handle(request: Request):
    r = builder_for(request)
    broker = request.broker
    answers = []
    for topic in request.body.topics:
        results = await _reassign_topic(broker, topic)
        answers.append(r.ReassignableTopicResponse(name=topic.name, partitions=tuple(
            r.ReassignablePartitionResponse(partition_index=p.partition_index, error_code=results[i][0],
                                            error_message=results[i][1])
            for i, p in enumerate(topic.partitions))))
    return r.AlterPartitionReassignmentsResponse(error_code=ErrorCode.none, error_message=None,
                                                 responses=tuple(answers))


async def _reassign_topic(broker, topic) -> list[tuple[ErrorCode, str | None]]:
    """(error code, message) per requested partition, in request order."""
    results: list[tuple[ErrorCode, str | None] | None] = []
    targets: dict[int, tuple[int, ...] | None] = {}
    live = live_broker_ids(broker)
    for p in topic.partitions:
        refusal = _refusal(broker, topic.name, p.partition_index, p.replicas, live)
        results.append(refusal)
        if refusal is None:
            targets[p.partition_index] = None if p.replicas is None else tuple(p.replicas)
    done = await broker.admin.alter_reassignments(topic.name, targets) if targets else {}
    return [result if result is not None else (done[p.partition_index].error, done[p.partition_index].message)
            for p, result in zip(topic.partitions, results)]


def _refusal(broker, name: str, index: int, replicas, live) -> tuple[ErrorCode, str] | None:
    if broker.metadata.topic(name) is None:
        return ErrorCode.unknown_topic_or_partition, f"Unable to find a topic named {name}."
    if not broker.metadata.has_partition(name, index):
        return ErrorCode.unknown_topic_or_partition, f"Unable to find partition {name}:{index}."
    if replicas is None:
        return None
    try:
        check_replicas(replicas, live)
    except ValueError as exc:
        return error_code_for(exc), error_message(exc)
    return None
