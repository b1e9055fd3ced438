"""TxnOffsetCommit (key 28, v0-5): a transactional producer commits a consumer group's offsets.

A consume-transform-produce loop sends it after AddOffsetsToTxn, to the group coordinator.
As Kafka does, partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION and an empty
group id INVALID_GROUP_ID; then the write is verified with the transaction coordinator
(Kafka's transaction verification, the AddPartitionsToTxn ``verify_only`` question a
partition leader asks): the id's producer id and epoch must be current and the group's
``__consumer_offsets`` partition already in its ongoing transaction, else that error for
every partition (INVALID_TXN_STATE when AddOffsetsToTxn was not sent, PRODUCER_FENCED told
as INVALID_PRODUCER_EPOCH, as Kafka's verification answers).  In a cluster the id may be
coordinated by another broker (the local coordinator answers NOT_COORDINATOR); kavka does
not ask it over the network yet, so the write goes on unverified, as Kafka's does with
``transaction.partition.verification.enable=false``: the partition's producer table still
refuses an epoch older than it knows (INVALID_PRODUCER_EPOCH, kavka.log.coordinator_journal).
The group coordinator then checks the member (v3+ name it: UNKNOWN_MEMBER_ID,
ILLEGAL_GENERATION, FENCED_INSTANCE_ID) and each partition's metadata size, and appends the
offsets as the producer's transactional batch: pending until the transaction's marker
(kavka.group.offsets).
"""

from __future__ import annotations

from kavka.api._groups import coordinated, reply_or_wait
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.group.offsets import OffsetCommit
from kavka.protocol.errors import ErrorCode

KEY = 28
VERSIONS = (0, 5)


def _unavailable(request: Request):
    return _all(request, ErrorCode.coordinator_not_available)


@api(KEY, "TxnOffsetCommit", VERSIONS)
@coordinated(unavailable=_unavailable)
def handle(request: Request, groups):
    body = request.body
    transactions = request.broker.transactions
    if transactions is None:   # a context built without one (unit tests of other APIs)
        return _unavailable(request)
    errors, commits = _split(request)
    if not commits:
        return _response(request, errors)
    if not body.group_id:
        return _response(request, {**errors, **{(c.topic, c.partition): ErrorCode.invalid_group_id
                                                for c in commits}})
    refusal = _verify(transactions, body)
    if refusal != ErrorCode.none:
        return _response(request, {**errors, **{(c.topic, c.partition): refusal for c in commits}})
    result = groups.run(lambda c: c.commit_txn_offsets(
        body.group_id, body.producer_id, body.producer_epoch, getattr(body, "generation_id", -1),
        getattr(body, "member_id", ""), getattr(body, "group_instance_id", None), commits))
    return reply_or_wait(result, lambda committed: _response(request, {**errors, **committed}))


def _verify(transactions, body) -> ErrorCode:
    """Whether the group's partition is in the producer's ongoing transaction (module doc)."""
    verdict = transactions.run(lambda c: c.add_partitions(
        body.transactional_id, body.producer_id, body.producer_epoch, [c.offsets_partition(body.group_id)],
        verify_only=True))
    error = next(iter(verdict.values()))
    if error == ErrorCode.not_coordinator:   # coordinated by another broker of the cluster
        return ErrorCode.none
    return ErrorCode.invalid_producer_epoch if error == ErrorCode.producer_fenced else error


def _split(request: Request) -> tuple[dict[tuple[str, int], ErrorCode], list[OffsetCommit]]:
    """Partitions of unknown topics with their error, and the commits for the coordinator."""
    errors: dict[tuple[str, int], ErrorCode] = {}
    commits = []
    metadata = request.broker.metadata
    for topic in request.body.topics:
        for p in topic.partitions:
            if not metadata.has_partition(topic.name, p.partition_index):
                errors[(topic.name, p.partition_index)] = ErrorCode.unknown_topic_or_partition
                continue
            commits.append(OffsetCommit(topic.name, p.partition_index, p.committed_offset,
                                        getattr(p, "committed_leader_epoch", -1), p.committed_metadata))
    return errors, commits


def _all(request: Request, error: ErrorCode):
    return _response(request, {(t.name, p.partition_index): error
                               for t in request.body.topics for p in t.partitions})


def _response(request: Request, errors: dict):
    r = builder_for(request)
    return r.TxnOffsetCommitResponse(topics=tuple(
        r.TxnOffsetCommitResponseTopic(name=topic.name, partitions=tuple(
            r.TxnOffsetCommitResponsePartition(partition_index=p.partition_index,
                                               error_code=errors[(topic.name, p.partition_index)])
            for p in topic.partitions))
        for topic in request.body.topics))
