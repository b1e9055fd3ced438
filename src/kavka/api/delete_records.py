"""DeleteRecords (key 21): move a partition's log start offset forward.

Per partition, as Kafka's leader does:

* without DELETE on the topic (with an authorizer, kavka.api.authorization):
  TOPIC_AUTHORIZATION_FAILED, low watermark -1, before anything else;
* an internal topic (kavka.internal_topics): INVALID_TOPIC_EXCEPTION, low
  watermark -1, before anything else, as Kafka's ReplicaManager answers;
* unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION, low watermark -1;
* a topic whose ``cleanup.policy`` lacks ``delete`` (compact only):
  POLICY_VIOLATION — compaction, not the client, decides what goes there;
* offset -1 means the high watermark; any other negative offset, or one above
  the high watermark: OFFSET_OUT_OF_RANGE;
* otherwise the log start offset becomes ``max(current, offset)`` (persisted),
  segments wholly below it are deleted at once, and the answer carries the
  new low watermark (this broker's log start offset: there are no followers
  whose start could lag behind).
"""

from __future__ import annotations

from kavka.api.authorization import Op, Res, refused
from kavka.api.errors import error_code_for
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.internal_topics import is_internal
from kavka.log.errors import LogError
from kavka.protocol.errors import ErrorCode

KEY = 21
VERSIONS = (0, 2)
HIGH_WATERMARK = -1


@api(KEY, "DeleteRecords", VERSIONS)
def handle(request: Request):
    r = builder_for(request)
    broker = request.broker
    denied = refused(request, Op.DELETE, Res.TOPIC, (t.name for t in request.body.topics))
    topics = tuple(
        r.DeleteRecordsTopicResult(name=topic.name, partitions=tuple(
            _result(r, *((ErrorCode.topic_authorization_failed, -1) if topic.name in denied
                         else _delete(broker, topic.name, wanted.partition_index, wanted.offset)),
                    wanted.partition_index)
            for wanted in topic.partitions))
        for topic in request.body.topics)
    return r.DeleteRecordsResponse(topics=topics)


def _delete(broker, topic: str, index: int, offset: int) -> tuple[ErrorCode, int]:
    """(error, low watermark) of one partition's deletion (on its leader; followers take the
    new log start from their next fetch)."""
    if is_internal(topic):
        return ErrorCode.invalid_topic_exception, -1
    partition, error = broker.leader_partition(topic, index)
    if partition is None:
        return error, -1
    log = partition.log
    if "delete" not in log.config["cleanup.policy"]:
        return ErrorCode.policy_violation, -1
    target = log.high_watermark if offset == HIGH_WATERMARK else offset
    if target < 0:
        return ErrorCode.offset_out_of_range, -1
    try:
        log.set_log_start_offset(target)
    except (LogError, OSError) as exc:
        return error_code_for(exc), -1
    return ErrorCode.none, log.log_start_offset


def _result(r, code: ErrorCode, low_watermark: int, index: int):
    return r.DeleteRecordsPartitionResult(partition_index=index, low_watermark=low_watermark, error_code=code)
