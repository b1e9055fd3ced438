"""AddPartitionsToTxn (key 24): partitions join a producer's ongoing transaction.

v0-3 are the client's form: one transactional id, its producer id and epoch, and the
partitions it is about to write.  v4+ carry a batch of transactions, each answered on its
own; ``verify_only`` (KIP-890) asks whether each partition is already in the id's ongoing
transaction, changing nothing, as a partition leader does before a transactional write;
without it the partitions are added (a transactions-V2 client's Produce v12 or TxnOffsetCommit v5
at a leader that does not coordinate the id: kavka.cluster.txn_verifier sends this form).
As in Kafka, a partition the broker does not know fails the transaction's partitions: the
unknown ones UNKNOWN_TOPIC_OR_PARTITION, the others OPERATION_NOT_ATTEMPTED.  PRODUCER_FENCED is INVALID_PRODUCER_EPOCH before v2.
"""

from __future__ import annotations

import asyncio

from kavka.api._groups import reply_or_wait
from kavka.api._txn import fenced_as, transactional
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.protocol.errors import ErrorCode

KEY = 24
VERSIONS = (0, 5)
BATCH_FROM = 4
FENCED_FROM = 2


def _unavailable(request: Request):
    if request.version >= BATCH_FROM:
        r = builder_for(request)
        return r.AddPartitionsToTxnResponse(error_code=ErrorCode.coordinator_not_available,
                                            results_by_transaction=())
    body = request.body
    return _client_response(request, {(t.name, p): ErrorCode.coordinator_not_available
                                      for t in body.v3_and_below_topics for p in t.partitions})


@api(KEY, "AddPartitionsToTxn", VERSIONS)
@transactional(unavailable=_unavailable)
def handle(request: Request, transactions):
    body = request.body
    if request.version < BATCH_FROM:
        result = _add(request, transactions, body.v3_and_below_transactional_id, body.v3_and_below_producer_id,
                      body.v3_and_below_producer_epoch, body.v3_and_below_topics, False)
        return reply_or_wait(result, lambda errors: _client_response(request, errors))
    results = [_add(request, transactions, t.transactional_id, t.producer_id, t.producer_epoch, t.topics,
                    t.verify_only) for t in body.transactions]
    ids = [t.transactional_id for t in body.transactions]
    if any(isinstance(result, asyncio.Future) for result in results):
        return _batch_after(request, ids, results)
    return _batch_response(request, ids, results)


def _add(request: Request, transactions, transactional_id, producer_id, producer_epoch, topics, verify_only):
    """One transaction's partitions: {(topic, partition): error}, or a future of it."""
    wanted = [(t.name, p) for t in topics for p in t.partitions]
    unknown = {tp for tp in wanted if not request.broker.metadata.has_partition(*tp)}
    if unknown:
        return {tp: ErrorCode.unknown_topic_or_partition if tp in unknown else ErrorCode.operation_not_attempted
                for tp in wanted}
    return transactions.run(lambda c: c.add_partitions(transactional_id, producer_id, producer_epoch, wanted,
                                                       verify_only=verify_only))


async def _batch_after(request: Request, ids, results):
    settled = [await result if isinstance(result, asyncio.Future) else result for result in results]
    return _batch_response(request, ids, settled)


def _topic_results(r, version: int, errors: dict, class_name: str = "AddPartitionsToTxnTopicResult"):
    by_topic: dict[str, list] = {}
    for (topic, index), error in errors.items():
        by_topic.setdefault(topic, []).append(r.AddPartitionsToTxnPartitionResult(
            partition_index=index, partition_error_code=fenced_as(error, version, FENCED_FROM)))
    return tuple(getattr(r, class_name)(name=topic, results_by_partition=tuple(parts))
                 for topic, parts in by_topic.items())


def _client_response(request: Request, errors: dict):
    r = builder_for(request)
    return r.AddPartitionsToTxnResponse(results_by_topic_v3_and_below=_topic_results(r, request.version, errors))


def _batch_response(request: Request, ids, results):
    r = builder_for(request)
    return r.AddPartitionsToTxnResponse(error_code=ErrorCode.none, results_by_transaction=tuple(
        r.AddPartitionsToTxnResult(transactional_id=tid, topic_results=_topic_results(r, request.version, errors))
        for tid, errors in zip(ids, results)))
