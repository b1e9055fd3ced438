"""TxnOffsetCommit (key 28, v0-5): a transactional producer commits a consumer group's offsets.

A consume-transform-produce loop sends it after AddOffsetsToTxn, to the group coordinator.
As Kafka does, partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION and an empty
group id INVALID_GROUP_ID; then the write is verified with the transaction coordinator
(Kafka's transaction verification, the AddPartitionsToTxn ``verify_only`` question a
partition leader asks): the id's producer id and epoch must be current and the group's
``__consumer_offsets`` partition already in its ongoing transaction, else that error for
every partition (INVALID_TXN_STATE when AddOffsetsToTxn was not sent, TRANSACTION_ABORTABLE
from v4, PRODUCER_FENCED told as INVALID_PRODUCER_EPOCH, as Kafka's verification answers).
v5 (transactions V2: the Java client sends no AddOffsetsToTxn then) adds the partition to the
transaction instead, as Kafka's ADD_PARTITION operation does.  The question goes to the
broker's ``txn_verifier`` (kavka.txn.verifier), as Produce's does: in a cluster, to the broker
that coordinates the id when that is another one (kavka.cluster.txn_verifier), and its
retriable answers (NOT_COORDINATOR, an unreachable coordinator ...) become
COORDINATOR_NOT_AVAILABLE, which the client retries after looking the coordinator up again (as
Kafka's group coordinator answers a failed verification).  With
``transaction.partition.verification.enable`` the append brings the ``__consumer_offsets``
partition's VerificationGuard (kavka.log.producer_state), taken before the question: a marker
written meanwhile (the transaction aborted) makes the append INVALID_TXN_STATE rather than
opening a transaction there that nobody ends.
The group coordinator then checks the member (v3+ name it: UNKNOWN_MEMBER_ID,
ILLEGAL_GENERATION, FENCED_INSTANCE_ID) and each partition's metadata size, and appends the
offsets as the producer's transactional batch: pending until the transaction's marker
(kavka.group.offsets).  With an authorizer, as Kafka: WRITE on the transactional id
(TRANSACTIONAL_ID_AUTHORIZATION_FAILED), READ on the group (GROUP_AUTHORIZATION_FAILED), both for
every partition, and READ on each topic (TOPIC_AUTHORIZATION_FAILED, not committed).
"""

from __future__ import annotations

import inspect
import logging

from kavka.api._groups import coordinated, reply_or_wait
from kavka.api.authorization import Op, Res, group_id, requires, transactional_id
from kavka.api.offset_commit import split_commits
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.log.producer_state import NO_GUARD, VerificationGuard
from kavka.protocol.control_records import NO_SEQUENCE
from kavka.protocol.errors import ErrorCode

log = logging.getLogger("kavka.group")

KEY = 28
VERSIONS = (0, 5)
GENERIC_ERROR_FROM = 4   # the client knows TRANSACTION_ABORTABLE
ADD_PARTITION_FROM = 5   # transactions V2: the verification adds the group's partition
# The verifier's retriable answers (kavka.txn.verifier): the client looks the coordinator up again.
_RETRY_AS_COORDINATOR_NOT_AVAILABLE = frozenset({ErrorCode.network_exception, ErrorCode.coordinator_load_in_progress,
                                                 ErrorCode.coordinator_not_available, ErrorCode.not_coordinator})


def _unavailable(request: Request):
    return _all(request, ErrorCode.coordinator_not_available)


@api(KEY, "TxnOffsetCommit", VERSIONS)
@requires(Op.WRITE, Res.TRANSACTIONAL_ID, transactional_id, refuse=lambda request, code: _all(request, code))
@requires(Op.READ, Res.GROUP, group_id, refuse=lambda request, code: _all(request, code))
@coordinated(unavailable=_unavailable)
def handle(request: Request, groups):
    body = request.body
    broker = request.broker
    if broker.transactions is None or broker.txn_verifier is None:   # a context built without one (unit tests)
        return _unavailable(request)
    errors, commits = split_commits(request)
    if not commits:
        return _response(request, errors)
    if not body.group_id:
        return _response(request, {**errors, **{(c.topic, c.partition): ErrorCode.invalid_group_id
                                                for c in commits}})
    key = broker.transactions.query(lambda c: c.offsets_partition(body.group_id))
    commit = _Commit(request, groups, errors, commits, key, _guard(request, key))
    answer = broker.txn_verifier.verify(body.transactional_id, body.producer_id, body.producer_epoch, [key],
                                        add=request.version >= ADD_PARTITION_FROM)
    if inspect.isawaitable(answer):
        return commit.later(answer)
    return commit(answer)


def _guard(request: Request, key: tuple[str, int]) -> VerificationGuard | None:
    """The group partition's guard for this producer (NO_GUARD when its transaction is open
    there already); None when verification is off or the partition does not exist yet."""
    broker = request.broker
    partition, _ = broker.leader_partition(*key)   # not led here: the group coordinator refuses it
    if partition is None or not broker.config.get("transaction.partition.verification.enable"):
        return None
    body = request.body
    guard = partition.start_verification(body.producer_id, NO_SEQUENCE, body.producer_epoch, broker.clock.now_ms())
    return NO_GUARD if guard is None else guard


class _Commit:
    """The coordinator's answer, then the group coordinator's append (module doc)."""

    def __init__(self, request: Request, groups, errors, commits, key, guard) -> None:
        self.request, self.groups, self.errors, self.commits = request, groups, errors, commits
        self.key, self.guard = key, guard

    async def later(self, answer):
        result = self(await answer)
        return await result if inspect.isawaitable(result) else result

    def __call__(self, answer: dict):
        request, body = self.request, self.request.body
        refusal = _refusal(answer.get(self.key) or ErrorCode.none, request.version)
        if refusal != ErrorCode.none:
            log.debug("TxnOffsetCommit of %r (producer %d epoch %d) refused: %s", body.transactional_id,
                      body.producer_id, body.producer_epoch, refusal.name)
            if refusal not in (ErrorCode.coordinator_not_available, ErrorCode.concurrent_transactions):
                self._end_verification()   # refused for good: the client aborts
            return _response(request, {**self.errors, **{(c.topic, c.partition): refusal for c in self.commits}})
        result = self.groups.run(lambda c: c.commit_txn_offsets(
            body.group_id, body.producer_id, body.producer_epoch, getattr(body, "generation_id", -1),
            getattr(body, "member_id", ""), getattr(body, "group_instance_id", None), self.commits, self.guard))
        return reply_or_wait(result, lambda committed: _response(request, {**self.errors, **committed}))

    def _end_verification(self) -> None:
        if self.guard is not None and self.guard is not NO_GUARD:
            partition = self.request.broker.logs.partition(*self.key)
            if partition is not None:
                partition.end_verification(self.request.body.producer_id, self.guard)


def _refusal(error: ErrorCode, version: int) -> ErrorCode:
    """The verifier's answer as this client version is told it: TRANSACTION_ABORTABLE reaches
    v4+ clients only (Kafka's TransactionSupportedOperation for TxnOffsetCommit), PRODUCER_FENCED
    is INVALID_PRODUCER_EPOCH."""
    if error in _RETRY_AS_COORDINATOR_NOT_AVAILABLE:
        return ErrorCode.coordinator_not_available
    if error == ErrorCode.transaction_abortable and version < GENERIC_ERROR_FROM:
        return ErrorCode.invalid_txn_state
    return ErrorCode.invalid_producer_epoch if error == ErrorCode.producer_fenced else error



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
