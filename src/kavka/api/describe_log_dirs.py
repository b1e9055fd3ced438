"""DescribeLogDirs (key 35, KIP-113): each log directory with the replicas it holds.

For every log directory of this broker (``LogManager.log_dirs``), its absolute
path, and for each partition asked for (all of them when ``topics`` is null, none
for an empty list) that lives there: its size in bytes (the sum of its segment
files, as Kafka's ``log.size``), its offset lag and ``is_future_key`` (false:
kavka never keeps a second, future copy of a replica).  The lag is Kafka's for a
current log, ``max(high watermark - log end offset, 0)``: 0 on a leader, and on
a follower as far as its high watermark (the leader's, capped at our own log
end) runs ahead of what it holds.  v4 adds the volume's total and usable bytes.

An offline directory (kavka.log.log_dir) is listed with KAFKA_STORAGE_ERROR and
nothing else, as Kafka does; so is one whose volume cannot be queried.  Topics
with no asked-for partition in a directory are left out of it.
"""

from __future__ import annotations

import os
import shutil

from kavka.api.authorization import Op, Res, requires
from kavka.api.registry import Request, api
from kavka.api.responses import builder_for
from kavka.log.log_dir import LogDirHealth
from kavka.log.partition import Partition
from kavka.protocol.errors import ErrorCode

KEY = 35
VERSIONS = (1, 4)


@api(KEY, "DescribeLogDirs", VERSIONS)
@requires(Op.DESCRIBE, Res.CLUSTER, refuse=lambda request, code: builder_for(request).DescribeLogDirsResponse(
    error_code=code, results=()))   # v1-2 have no error code: nothing described, as Kafka answers
def handle(request: Request):
    r = builder_for(request)
    logs = request.broker.logs
    wanted = _wanted(request.body.topics)
    partitions = [p for p in logs.partitions() if wanted is None or (p.topic, p.index) in wanted]
    results = tuple(_describe_dir(r, health, [p for p in partitions if p.health is health])
                    for health in logs.log_dirs())
    return r.DescribeLogDirsResponse(error_code=ErrorCode.none, results=results)


def _wanted(topics) -> set[tuple[str, int]] | None:
    if topics is None:
        return None
    return {(t.topic, int(index)) for t in topics for index in t.partitions}


def _describe_dir(r, health: LogDirHealth, partitions: list[Partition]):
    path = os.path.abspath(health.path)
    if health.offline:
        return r.DescribeLogDirsResult(error_code=ErrorCode.kafka_storage_error, log_dir=path, topics=())
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return r.DescribeLogDirsResult(error_code=ErrorCode.kafka_storage_error, log_dir=path, topics=())
    return r.DescribeLogDirsResult(error_code=ErrorCode.none, log_dir=path, topics=_topics(r, partitions),
                                   total_bytes=usage.total, usable_bytes=usage.free)


def _topics(r, partitions: list[Partition]) -> tuple:
    by_topic: dict[str, list[Partition]] = {}
    for p in sorted(partitions, key=lambda p: (p.topic, p.index)):
        by_topic.setdefault(p.topic, []).append(p)
    return tuple(r.DescribeLogDirsTopic(name=name, partitions=tuple(_partition(r, p) for p in parts))
                 for name, parts in by_topic.items())


def _partition(r, p: Partition):
    plog = p.log
    lag = max(plog.high_watermark - plog.log_end_offset, 0)
    return r.DescribeLogDirsPartition(partition_index=p.index, partition_size=plog.size_bytes,
                                      offset_lag=lag, is_future_key=False)
