"""ListPartitionReassignments (key 46, KIP-455): the reassignments in progress.

Topics null: every partition being reassigned; else those of the named
partitions that are (unknown topics and partitions not being reassigned are
left out, as Kafka's controller leaves them).  Each with its replicas (the
target, then those being removed) and the replicas being added and removed.
"""

from __future__ import annotations

from kavka.api.authorization import Op, Res, requires
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode

KEY = 46
VERSIONS = (0, 0)


@api(KEY, "ListPartitionReassignments", VERSIONS)
@requires(Op.DESCRIBE, Res.CLUSTER)
async def handle(request: Request):
    r = builder_for(request)
    ongoing = request.broker.metadata.reassignments()
    if request.body.topics is None:
        wanted = sorted(ongoing)
    else:
        wanted = [(t.name, p) for t in request.body.topics for p in t.partition_indexes if (t.name, p) in ongoing]
    by_topic: dict[str, list] = {}
    for name, p in wanted:
        a = ongoing[(name, p)]
        by_topic.setdefault(name, []).append(r.OngoingPartitionReassignment(
            partition_index=p, replicas=a.replicas, adding_replicas=a.adding, removing_replicas=a.removing))
    return r.ListPartitionReassignmentsResponse(error_code=ErrorCode.none, error_message=None, topics=tuple(
        r.OngoingTopicReassignment(name=name, partitions=tuple(parts)) for name, parts in by_topic.items()))
