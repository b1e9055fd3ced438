"""ElectLeaders (key 43, KIP-183 and KIP-460): elect partitions' leaders on demand.

What ``kafka-leader-election`` and the admin clients' ``electLeaders`` send.  The
election itself is the topic admin's (kavka.metadata: a lone broker has nothing to
elect; in a cluster the controller does it), so this module only reads the request
and shapes the answer, as Kafka does:

* v0 has no ``election_type``: it asks for the preferred replica;
* an election type other than PREFERRED (0) or UNCLEAN (1): INVALID_REQUEST at the
  top (v1+) and for every partition named;
* per partition: NONE when its leader changed, ELECTION_NOT_NEEDED when it already
  had the leader asked for, UNKNOWN_TOPIC_OR_PARTITION, PREFERRED_LEADER_NOT_AVAILABLE
  or ELIGIBLE_LEADERS_NOT_AVAILABLE;
* ``topic_partitions`` null means every partition of every topic, and the answer
  lists every topic but only the partitions where an election happened or failed
  (not those where none was needed).  A request naming partitions is answered one
  result per topic entry and partition, in request order.
"""

from __future__ import annotations

from kavka.api.authorization import Op, Res, requires
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.metadata.model import ElectionType
from kavka.protocol.errors import ErrorCode

KEY = 43
VERSIONS = (0, 2)


def _refused(request: Request, code: ErrorCode):
    """Without ALTER on the cluster, as Kafka: every partition asked for, and the whole answer, refused."""
    asked = request.body.topic_partitions or ()
    return _answer(builder_for(request), code, [(t.topic, [(p, code, None) for p in t.partitions]) for t in asked])


@api(KEY, "ElectLeaders", VERSIONS)
@requires(Op.ALTER, Res.CLUSTER, refuse=_refused)
async def handle(request: Request):
    r = builder_for(request)
    body, broker = request.body, request.broker
    raw_type = getattr(body, "election_type", ElectionType.PREFERRED)
    everything = body.topic_partitions is None
    asked = (_every_partition(broker.metadata) if everything
             else [(t.topic, tuple(t.partitions)) for t in body.topic_partitions])
    if raw_type not in tuple(ElectionType):
        return _answer(r, ErrorCode.invalid_request, [] if everything else [
            (topic, [(p, ErrorCode.invalid_request, f"Unknown election type {raw_type}.") for p in partitions])
            for topic, partitions in asked])
    flat = [(topic, p) for topic, partitions in asked for p in partitions]
    results = iter(await broker.admin.elect_leaders(ElectionType(raw_type), flat) if flat else ())
    topics = []
    for topic, partitions in asked:
        outcomes = [(p, result.error, result.message) for p, result in zip(partitions, results)]
        if everything:
            outcomes = [o for o in outcomes if o[1] != ErrorCode.election_not_needed]
        topics.append((topic, outcomes))
    return _answer(r, ErrorCode.none, topics)


def _every_partition(metadata) -> list[tuple[str, tuple[int, ...]]]:
    return [(name, tuple(range(metadata.topic(name).partitions))) for name in metadata.topic_names()]


def _answer(r, code: ErrorCode, topics):
    """``topics``: [(name, [(partition, error code, message)])]."""
    return r.ElectLeadersResponse(error_code=code, replica_election_results=tuple(
        r.ReplicaElectionResult(topic=topic, partition_result=tuple(
            r.PartitionResult(partition_id=p, error_code=error, error_message=message)
            for p, error, message in outcomes))
        for topic, outcomes in topics))
