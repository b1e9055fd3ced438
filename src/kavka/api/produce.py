"""Produce (key 0): append each partition's record batch to its log.

Batches stay opaque bytes: the storage layer validates the header and CRC and
patches offsets in place.  acks=0 gets no response at all; acks=1 is answered
once the bytes are in the leader's log.  acks=-1 (all) needs ``min.insync.replicas``
in the ISR before the append (NOT_ENOUGH_REPLICAS) and is answered when the high
watermark passes the batch, or REQUEST_TIMED_OUT after the request's timeout;
fewer in-sync replicas by then is NOT_ENOUGH_REPLICAS_AFTER_APPEND.  Only the
leader takes produce requests.  All of these are the broker's replica roles
(``request.broker.replicas``, kavka.metadata): a lone broker is its whole ISR and
answers at once.

Transactional batches need the request's transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED
without one, as in Kafka); a broker without a transaction coordinator (only test contexts lack one)
refuses transactional ids outright.  The partition's producer state judges each batch's epoch
and transaction (kavka.log.producer_state).  Before a producer's first transactional batch in
a partition, the transaction coordinator is asked whether the partition is in its ongoing
transaction, or, for Produce v12+ (transactions V2), adds it there
(kavka.api.produce_verification, KIP-890); a refused partition is not appended.

Versions 0-2 are advertised because librdkafka enables compression only when
Produce v0 is listed, but, as in Kafka 4 (KIP-896), they are refused with
UNSUPPORTED_VERSION: their message formats are gone.

A batch for a compacted topic whose key check would be long (many records,
compressed: kavka.log.validator.needs_offload) is checked in a worker thread
first, then the request is appended as usual on the loop.
"""

from __future__ import annotations

import asyncio
import datetime
import inspect
import struct
from dataclasses import dataclass

from kavka.api import produce_verification
from kavka.api.errors import error_code_for, error_message
from kavka.api.registry import RawResponse, Request, api
from kavka.api.responses import builder_for
from kavka.internal_topics import is_internal
from kavka.log.errors import LogError
from kavka.log.validator import check_keys, needs_offload
from kavka.protocol import messages, records
from kavka.protocol.errors import ErrorCode

KEY = 0
VERSIONS = (0, 12)
VALID_ACKS = (-1, 0, 1)
_UTC = datetime.timezone.utc
_ATTRIBUTES = struct.Struct(">h")
_ATTRIBUTES_AT = 21


@dataclass(frozen=True, slots=True)
class PartitionResult:
    """One partition's answer (PartitionProduceResponse)."""
    index: int
    error: ErrorCode = ErrorCode.none
    base_offset: int = -1
    log_append_time_ms: int = -1
    log_start_offset: int = -1
    message: str | None = None
    record_errors: tuple[tuple[int, str], ...] = ()   # (batch index, message) of each bad record (v8+)

    def failed(self, error: ErrorCode) -> "PartitionResult":
        """The same partition refused with ``error`` (the append already happened: the log start stays)."""
        return PartitionResult(self.index, error, log_start_offset=self.log_start_offset)


def _decode_legacy(frame: bytes, offset: int):
    """v0-2 bodies are v3 without transactional_id: read them as v3 with a null one."""
    return messages.decode_request(KEY, 3, b"\xff\xff" + frame[offset:], 0)


@api(KEY, "Produce", VERSIONS, decoders={0: _decode_legacy, 1: _decode_legacy, 2: _decode_legacy},
     pipelined=True)
def handle(request: Request):
    body = request.body
    if request.version < 3:
        results = _refuse_all(body, ErrorCode.unsupported_version)
    elif body.acks not in VALID_ACKS:
        results = _refuse_all(body, ErrorCode.invalid_required_acks)
    elif body.transactional_id is not None and request.broker.transactions is None:
        results = _refuse_all(body, ErrorCode.transactional_id_authorization_failed)
    elif body.transactional_id is None and _has_transactional_records(body):  # as Kafka: a transaction needs a transactional id
        results = _refuse_all(body, ErrorCode.transactional_id_authorization_failed)
    else:
        verified = produce_verification.begin(request)
        if inspect.isawaitable(verified):
            return _append_after_verification(request, verified)
        return _check_and_append(request, verified)
    return _answer(request, results)


def _check_and_append(request: Request, verified: produce_verification.Verified):
    heavy = _heavy_key_checks(request)
    if heavy:
        return _append_after_checks(request, heavy, verified)
    return _append_and_answer(request, verified)


async def _append_after_verification(request: Request, pending):
    """The coordinator answers later (another broker): append once it did."""
    answer = _check_and_append(request, await pending)
    return await answer if asyncio.iscoroutine(answer) else answer


def _append_and_answer(request: Request, verified: produce_verification.Verified, checked=None):
    results, waits = _append_all(request, verified, checked)
    durable = request.broker.durable
    if durable is not None and request.body.acks != 0 and (appended := _appended(request, results)):
        return _await_durable(request, results, waits, durable.sync(appended))
    if waits:
        return _await_replication(request, results, waits)
    return _answer(request, results)


def _answer(request: Request, results):
    if request.body.acks == 0:
        return None
    if request.version < 3:
        return _legacy_response(request.version, results)
    return _response(request, results)


def _heavy_key_checks(request: Request) -> dict:
    """{(topic, partition): (records, config)} of key checks to run off the event loop."""
    heavy = {}
    for topic in request.body.topic_data:
        for data in topic.partition_data:
            partition = request.broker.logs.partition(topic.name, data.index)
            if partition is not None and data.records and needs_offload(data.records, partition.config):
                heavy[(topic.name, data.index)] = (data.records, partition.config)
    return heavy


async def _append_after_checks(request: Request, heavy: dict, verified: produce_verification.Verified):
    """Key checks in a worker thread, then the usual append; a failed check answers its partition."""
    loop = asyncio.get_running_loop()
    checked = {}
    for key, (data, config) in heavy.items():
        try:
            await loop.run_in_executor(None, check_keys, data, config)
            checked[key] = None
        except LogError as exc:
            checked[key] = exc
    answer = _append_and_answer(request, verified, checked)
    return await answer if asyncio.iscoroutine(answer) else answer


def _has_transactional_records(body) -> bool:
    """Whether a partition's first batch has the transactional bit (Kafka's
    ProduceRequest.hasTransactionalRecords); the bytes are not validated yet."""
    return any(len(data.records or b"") >= records.HEADER_SIZE
               and _ATTRIBUTES.unpack_from(data.records, _ATTRIBUTES_AT)[0] & records.ATTR_TRANSACTIONAL
               for topic in body.topic_data for data in topic.partition_data)


def _refuse_all(body, code: ErrorCode):
    return [(t.name, [PartitionResult(p.index, code) for p in t.partition_data]) for t in body.topic_data]


def _append_all(request: Request, verified: produce_verification.Verified, checked=None):
    """(results by topic, {(topic index, partition index): future of the replication error}).

    ``verified``: the transaction verification's guards and refusals.
    ``checked``: {(topic, partition): None or the LogError of its key check} from a worker thread."""
    logs = request.broker.logs
    replicas = request.broker.replicas
    acks = request.body.acks
    now_ms = request.broker.clock.now_ms()
    results, waits = [], {}
    for i, topic in enumerate(request.body.topic_data):
        partitions = []
        for j, data in enumerate(topic.partition_data):
            result, last_offset = _append_one(logs, replicas, acks, topic.name, data, request.version, now_ms,
                                              (checked or {}).get((topic.name, data.index), False), verified)
            partitions.append(result)
            if acks == -1 and result.error == ErrorCode.none:
                min_isr = logs.partition(topic.name, data.index).config["min.insync.replicas"]
                waited = replicas.wait_replicated((topic.name, data.index), last_offset + 1, min_isr)
                if isinstance(waited, ErrorCode):
                    if waited != ErrorCode.none:   # already replicated: the answer stands
                        partitions[-1] = result.failed(waited)
                else:
                    waits[(i, j)] = waited
        results.append((topic.name, partitions))
    return results, waits


def _append_one(logs, replicas, acks: int, topic: str, data, version: int, now_ms: int, checked=False,
                verified: produce_verification.Verified = produce_verification.OFF):
    """(PartitionResult, last offset appended or -1).

    ``checked``: False (check keys here), None (checked and fine) or the check's LogError."""
    index = data.index
    if is_internal(topic):  # only the broker writes there (kavka.internal_topics)
        return PartitionResult(index, ErrorCode.invalid_topic_exception,
                               message=f"Cannot append to internal topic {topic}"), -1
    partition = logs.partition(topic, index)
    if partition is None:
        return PartitionResult(index, ErrorCode.unknown_topic_or_partition), -1
    error = replicas.produce_check((topic, index), acks, partition.config["min.insync.replicas"])
    if error != ErrorCode.none:
        return PartitionResult(index, error), -1
    if not data.records:
        return PartitionResult(index, ErrorCode.invalid_record, message="no record batch"), -1
    refused = verified.refused.get((topic, index))
    if refused is not None:
        return PartitionResult(index, refused[0], message=refused[1]), -1
    try:
        if isinstance(checked, LogError):
            raise checked
        info = partition.append_records(bytearray(data.records), version, now_ms, checked is None,
                                        verified.guard((topic, index)))
    except LogError as exc:
        return _refusal(topic, index, exc, partition.log.log_start_offset), -1
    return (PartitionResult(index, ErrorCode.none, info.base_offset, info.log_append_time_ms, info.log_start_offset),
            info.last_offset)


def _refusal(topic: str, index: int, exc: LogError, log_start_offset: int) -> PartitionResult:
    """The answer to a refused batch; records that broke a per-record rule are listed
    one by one (KIP-467) with Kafka's wording, so a client can tell them from the
    good records of the same batch."""
    indexes = getattr(exc, "record_indexes", ())
    if not indexes:
        return PartitionResult(index, error_code_for(exc), log_start_offset=log_start_offset,
                               message=error_message(exc))
    record_errors = tuple((i, f"{exc.record_reason} in topic partition {topic}-{index}.") for i in indexes)
    shown = ", ".join(f"RecordError(batchIndex={i}, message='{m}')" for i, m in record_errors[:3])
    message = (f"One or more records have been rejected due to {len(record_errors)} record errors in total, "
               f"and only showing the first three errors at most: [{shown}]")
    return PartitionResult(index, error_code_for(exc), log_start_offset=log_start_offset, message=message,
                           record_errors=record_errors)


async def _await_replication(request: Request, results, waits):
    """acks=all in a cluster: answer when every partition is replicated, or at the timeout."""
    timeout = max(request.body.timeout.total_seconds(), 0)
    futures = list(waits.values())
    await asyncio.wait(futures, timeout=timeout)
    for (i, j), future in waits.items():
        error = future.result() if future.done() else ErrorCode.request_timed_out
        if not future.done():
            future.cancel()
        if error != ErrorCode.none:
            results[i][1][j] = results[i][1][j].failed(error)
    return _response(request, results)


def _appended(request: Request, results) -> list:
    """The partitions this produce wrote to (or answered a retry from): what --durable syncs."""
    logs = request.broker.logs
    return [logs.partition(name, result.index) for name, partitions in results
            for result in partitions if result.error == ErrorCode.none]


async def _await_durable(request: Request, results, waits, synced):
    """--durable: answer once the group commit fsynced the batches (kavka.log.group_commit),
    then as acks asks (replication in a cluster); a failed fsync answers KAFKA_STORAGE_ERROR."""
    error = await asyncio.shield(synced)
    if error is not None:
        code = error_code_for(error)
        for _name, partitions in results:
            for j, result in enumerate(partitions):
                if result.error == ErrorCode.none:
                    partitions[j] = result.failed(code)
        for future in waits.values():
            future.cancel()
        return _response(request, results)
    if waits:
        return await _await_replication(request, results, waits)
    return _response(request, results)


def _response(request: Request, results):
    r = builder_for(request)
    topics = tuple(
        r.TopicProduceResponse(name=name, partition_responses=tuple(
            r.PartitionProduceResponse(
                index=p.index, error_code=p.error, base_offset=p.base_offset, log_start_offset=p.log_start_offset,
                log_append_time=(None if p.log_append_time_ms < 0
                                 else datetime.datetime.fromtimestamp(p.log_append_time_ms / 1000, _UTC)),
                record_errors=tuple(r.BatchIndexAndErrorMessage(batch_index=i, batch_index_error_message=m)
                                    for i, m in p.record_errors) if request.version >= 8 else (),
                error_message=p.message)
            for p in partitions))
        for name, partitions in results)
    return r.ProduceResponse(responses=topics)


def _legacy_response(version: int, results) -> RawResponse:
    """Hand-encoded v0-2 response (kio dropped these versions)."""
    out = [struct.pack(">i", len(results))]
    for name, partitions in results:
        encoded = name.encode()
        out.append(struct.pack(">h", len(encoded)) + encoded + struct.pack(">i", len(partitions)))
        for p in partitions:
            out.append(struct.pack(">ihq", p.index, p.error.value, p.base_offset))
            if version >= 2:
                out.append(struct.pack(">q", p.log_append_time_ms))
    if version >= 1:
        out.append(struct.pack(">i", 0))
    body = b"".join(out)
    return RawResponse([body], len(body))
