"""The one place where domain exceptions become Kafka error codes.

Lookup walks the exception's class hierarchy by class name, so a more specific
storage error maps to its own code and anything else under ``LogError`` to a
sensible parent; the layers that raise them (log, metadata, api) need not know
the wire's codes.  Used by the API layer and by the metadata implementations,
which answer topic changes as (code, message).
"""

from __future__ import annotations

import logging

from kavka.protocol.errors import ErrorCode

log = logging.getLogger("kavka.api")

_CODES: dict[str, ErrorCode] = {
    "OffsetOutOfRange": ErrorCode.offset_out_of_range,
    "UnknownTopicOrPartition": ErrorCode.unknown_topic_or_partition,
    "TopicAlreadyExists": ErrorCode.topic_already_exists,
    "InvalidPartitions": ErrorCode.invalid_partitions,
    "PolicyViolation": ErrorCode.policy_violation,
    "InvalidTopic": ErrorCode.invalid_topic_exception,
    "RecordTooLarge": ErrorCode.message_too_large,
    "CorruptRecord": ErrorCode.corrupt_message,
    "LogCorrupted": ErrorCode.corrupt_message,  # bad bytes met while reading a stored log
    "InvalidRecord": ErrorCode.invalid_record,
    "InvalidTimestamp": ErrorCode.invalid_timestamp,
    "OutOfOrderSequence": ErrorCode.out_of_order_sequence_number,
    "InvalidProducerEpoch": ErrorCode.invalid_producer_epoch,
    "UnknownProducerId": ErrorCode.unknown_producer_id,
    "InvalidTxnState": ErrorCode.invalid_txn_state,
    "TransactionCoordinatorFenced": ErrorCode.transaction_coordinator_fenced,
    "UnsupportedCompression": ErrorCode.unsupported_compression_type,
    "InvalidConfig": ErrorCode.invalid_config,
    "ConfigError": ErrorCode.invalid_config,
    "InvalidReplicationFactor": ErrorCode.invalid_replication_factor,
    "InvalidReplicaAssignment": ErrorCode.invalid_replica_assignment,
    "InvalidRequestError": ErrorCode.invalid_request,
    "TopicDeletionDisabled": ErrorCode.topic_deletion_disabled,
    "FencedLeaderEpoch": ErrorCode.fenced_leader_epoch,
    "UnknownLeaderEpoch": ErrorCode.unknown_leader_epoch,
    "StorageError": ErrorCode.kafka_storage_error,
    "InvalidUpdateVersion": ErrorCode.invalid_update_version,
    "TopicAuthorizationFailed": ErrorCode.topic_authorization_failed,
    "GroupAuthorizationFailed": ErrorCode.group_authorization_failed,
    "ClusterAuthorizationFailed": ErrorCode.cluster_authorization_failed,
}


def error_code_for(exc: BaseException) -> ErrorCode:
    for cls in type(exc).__mro__:
        code = _CODES.get(cls.__name__)
        if code is not None:
            return code
    log.error("no Kafka error code for %r; answering UNKNOWN_SERVER_ERROR", exc, exc_info=exc)
    return ErrorCode.unknown_server_error


def error_message(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
