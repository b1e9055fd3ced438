"""Commit/abort markers written straight into this broker's own partitions (a lone broker).

The :class:`~kavka.txn.runner.TxnRunner` hands each :class:`~kavka.txn.coordinator.MarkerJob`
to a ``write_markers`` function; on a lone broker every partition of a transaction is local,
so the marker is :meth:`~kavka.log.partition.Partition.append_marker` on it, with the
answer per partition WriteTxnMarkers would give: UNKNOWN_TOPIC_OR_PARTITION for a partition
that is gone (its topic was deleted: it needs no marker), a log error as its Kafka code
(kavka.error_codes), NONE once the marker is in the log.  ``on_marker(topic, partition,
producer_id, commit)`` hears of every marker written, so the group coordinator can end the
producer's pending offsets when the partition is ``__consumer_offsets``.
"""

from __future__ import annotations

from typing import Callable

from kavka.error_codes import error_code_for
from kavka.log.errors import LogError
from kavka.protocol.errors import ErrorCode
from kavka.txn.coordinator import MarkerJob
from kavka.txn.model import TopicPartition


OnMarker = Callable[[str, int, int, bool], None]


def _nobody(_topic: str, _partition: int, _producer_id: int, _commit: bool) -> None:
    """No one to tell (unit tests of the transaction coordinator alone)."""


def local_marker_writer(logs, clock, on_marker: OnMarker = _nobody):
    """``write_markers(job)`` for TxnRunner, appending to the partitions in ``logs``."""
    async def write_markers(job: MarkerJob) -> dict[TopicPartition, ErrorCode]:
        return {tp: write_marker(logs, clock, job, tp, on_marker) for tp in job.partitions}
    return write_markers


def write_marker(logs, clock, job: MarkerJob, tp: TopicPartition, on_marker: OnMarker = _nobody) -> ErrorCode:
    partition = logs.partition(*tp)
    if partition is None:
        return ErrorCode.unknown_topic_or_partition
    try:
        partition.append_marker(job.producer_id, job.producer_epoch, job.commit, job.coordinator_epoch,
                                clock.now_ms())
    except LogError as exc:
        return error_code_for(exc)
    on_marker(*tp, job.producer_id, job.commit)
    return ErrorCode.none
