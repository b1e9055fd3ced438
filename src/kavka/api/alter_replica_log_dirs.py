"""AlterReplicaLogDirs (key 34, KIP-113): move replicas between this broker's log directories.

Each (partition, destination) is answered on its own, checked in Kafka's order:

1. a topic whose future-log directory name (``<topic>-<partition>.<32 hex>-future``)
   would exceed 255 bytes: INVALID_TOPIC_EXCEPTION;
2. a destination that is not one of our log directories, spelt as its absolute path:
   LOG_DIR_NOT_FOUND; an offline one: KAFKA_STORAGE_ERROR;
3. a partition we hold no replica of: REPLICA_NOT_AVAILABLE when the topic has that
   partition elsewhere (Kafka keeps that code here, for compatibility, where other APIs
   say NOT_LEADER_OR_FOLLOWER), UNKNOWN_TOPIC_OR_PARTITION when it does not exist; a
   replica on an offline directory: KAFKA_STORAGE_ERROR;
4. otherwise the partition is moved: copied in a worker thread while it keeps serving
   (``LogManager.precopy_move``; the event loop serves every client meanwhile), then
   closed, brought up to date, swapped in and reopened (``move_partition``), and
   answered NONE, or KAFKA_STORAGE_ERROR if the copy or swap failed.  Kafka answers at
   once and swaps in the background; kavka answers when the move is done, so the
   answer of a very large partition may come after the client's request timeout (the
   move finishes anyway, and DescribeLogDirs shows it).  A replica already in the
   destination stays where it is.

A partition named twice keeps the last destination, as in Kafka (the request becomes a map).
"""

from __future__ import annotations

import asyncio
import logging
import os

from kavka.api.authorization import Op, Res, requires
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.log.errors import StorageError
from kavka.log.log_dir import LogDirHealth
from kavka.protocol.errors import ErrorCode

KEY = 34
VERSIONS = (1, 2)
MAX_DIR_NAME = 255
FUTURE_SUFFIX_LENGTH = len(".") + 32 + len("-future")

log = logging.getLogger("kavka.api")


def _refused(request: Request, code: ErrorCode):
    """Without ALTER on the cluster, as Kafka: every partition CLUSTER_AUTHORIZATION_FAILED."""
    return _answer(request, {tp: code for tp in _destinations(request)})


def _destinations(request: Request) -> dict[tuple[str, int], str]:
    return {(t.name, int(index)): d.path for d in request.body.dirs for t in d.topics for index in t.partitions}


@api(KEY, "AlterReplicaLogDirs", VERSIONS)
@requires(Op.ALTER, Res.CLUSTER, refuse=_refused)
async def handle(request: Request):
    codes = {tp: await _alter(request.broker, *tp, path) for tp, path in _destinations(request).items()}
    return _answer(request, codes)


def _answer(request: Request, codes: dict[tuple[str, int], ErrorCode]):
    r = builder_for(request)
    by_topic: dict[str, list] = {}
    for (topic, index), code in codes.items():
        result = r.AlterReplicaLogDirPartitionResult(partition_index=index, error_code=code)
        by_topic.setdefault(topic, []).append(result)
    results = tuple(r.AlterReplicaLogDirTopicResult(topic_name=topic, partitions=tuple(parts))
                    for topic, parts in by_topic.items())
    return r.AlterReplicaLogDirsResponse(results=results)


async def _alter(broker, topic: str, index: int, path: str) -> ErrorCode:
    if len(f"{topic}-{index}".encode()) + FUTURE_SUFFIX_LENGTH > MAX_DIR_NAME:
        return ErrorCode.invalid_topic_exception
    target = _log_dir(broker.logs.log_dirs(), path)
    if target is None:
        return ErrorCode.log_dir_not_found
    if target.offline:
        return ErrorCode.kafka_storage_error
    partition = broker.logs.partition(topic, index)
    if partition is None:
        return (ErrorCode.replica_not_available if broker.metadata.has_partition(topic, index)
                else ErrorCode.unknown_topic_or_partition)
    if partition.offline:
        return ErrorCode.kafka_storage_error
    try:
        if partition.health is not target:
            precopied = await asyncio.to_thread(broker.logs.precopy_move, topic, index, target)
            broker.logs.move_partition(topic, index, target, precopied)
    except StorageError as exc:
        log.warning("AlterReplicaLogDirs of %s-%d to %s failed: %s", topic, index, path, exc)
        return ErrorCode.kafka_storage_error
    return ErrorCode.none


def _log_dir(dirs: list[LogDirHealth], path: str) -> LogDirHealth | None:
    """The log directory whose absolute path is exactly ``path`` (Kafka compares so)."""
    return next((d for d in dirs if os.path.abspath(d.path) == path), None)
