"""One partition as the api layer sees it: its log plus its idempotent-producer table.

Every client write goes through :meth:`Partition.append_records`, in this order:
Kafka's produce-time validation (kavka.log.validator), the producer sequence
check (an exact retry is answered with its original offsets and not written),
the append, then the producer-state update.  Producer state is snapshotted at
each segment roll, so a restart replays at most one segment of batch headers.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass

from kavka.config import TopicConfig
from kavka.log.errors import StorageError
from kavka.log.log_dir import LogDirHealth
from kavka.log.partition_log import AppendInfo, PartitionLog
from kavka.log.producer_state import ProducerState
from kavka.log.validator import validate_produce_records
from kavka.protocol import records

log = logging.getLogger("kavka.log")


@dataclass(frozen=True, slots=True)
class ProduceInfo(AppendInfo):
    """AppendInfo of a produce; ``duplicate`` means a retry answered from producer state."""

    duplicate: bool = False


class Partition:
    """What the api layer talks to: one PartitionLog plus its idempotent-producer table.

    Reads, offsets and epochs go straight to ``.log``; writes from clients come
    through :meth:`append_records`, so no batch skips validation or the
    producer check.
    """

    def __init__(self, topic: str, index: int, plog: PartitionLog, producers: ProducerState,
                 health: LogDirHealth | None = None) -> None:
        self.topic, self.index, self.log, self.producers = topic, index, plog, producers
        self._active_base = plog.active_base_offset
        # The data directory's state, shared by all its partitions (kavka.log.log_dir).
        self.health = health or LogDirHealth(plog.path.parent)

    @classmethod
    def open(cls, topic: str, index: int, plog: PartitionLog, health: LogDirHealth | None = None) -> "Partition":
        producers = ProducerState(plog.path)
        producers.load(plog)
        return cls(topic, index, plog, producers, health)

    @property
    def offline(self) -> bool:
        """On a failed (offline) log directory: refuse reads and writes (KAFKA_STORAGE_ERROR)."""
        return self.health.offline

    def storage_failure(self, exc: OSError, what: str) -> StorageError:
        """The domain error for an OSError met on this partition (logged once per episode)."""
        return self.health.failed(exc, f"{what} {self.topic}-{self.index}")

    @property
    def config(self) -> TopicConfig:
        return self.log.config

    def append_records(self, buf: bytearray, produce_version: int, now_ms: int,
                       keys_checked: bool = False) -> ProduceInfo:
        """Validate, dedupe and append a client's records; offsets are patched into ``buf``.

        A payload is one batch (Produce v3+, as in Kafka: v0-2 are refused by the api
        layer); a retry of it is answered with its original offsets and written
        nothing.  ``keys_checked``: the compacted-topic key check already ran off the
        loop (validator.check_keys).
        """
        if self.health.degraded:
            self.health.check(f"produce to {self.topic}-{self.index}")
        ((_, header),) = validate_produce_records(buf, self.log.config, now_ms, produce_version, keys_checked)
        original = self.producers.check(header)
        if original is not None:
            return ProduceInfo(original.first_offset, original.last_offset,
                               original.log_append_time_ms, self.log.log_start_offset, True)
        info = self._append(self.log.append, buf, now_ms=now_ms)
        self._snapshot_if_rolled()
        self.producers.update(records.read_header(buf, 0))  # with the assigned offsets
        return ProduceInfo(info.base_offset, info.last_offset, info.log_append_time_ms, info.log_start_offset)

    def append_as_follower(self, data: bytes | bytearray | memoryview) -> AppendInfo | None:
        """Append batches copied from the leader (offsets and epochs already set), keeping
        the producer table up to date so that this replica can lead with it."""
        view = memoryview(data)
        info = None
        for pos, header in records.iter_batches(view):
            info = self._append(self.log.append_as_follower, view[pos : pos + header.size])
            self._snapshot_if_rolled()
            self.producers.update(header)
        return info

    def append_internal(self, batch: bytearray, now_ms: int) -> AppendInfo:
        """A batch the broker built itself (the group coordinator's journal): no
        validation, no producer state, the same storage-error handling."""
        return self._append(self.log.append, batch, now_ms=now_ms)

    def _append(self, append, *args, **kwargs) -> AppendInfo:
        """``append(*args)`` with an OSError turned into a StorageError; the log undid
        the write already (kavka.log.segment), so nothing of the batch remains."""
        health = self.health
        if health.degraded:
            health.check(f"append to {self.topic}-{self.index}")
        try:
            info = append(*args, **kwargs)
        except OSError as exc:
            raise self.storage_failure(exc, "an append to") from None
        if health.degraded:
            health.succeeded()
        return info

    def _snapshot_if_rolled(self) -> None:
        """Kafka snapshots producers at each roll, so a restart replays one segment at most.

        Called between the append and the producer update, when the table
        covers exactly the offsets below the new segment.
        """
        active_base = self.log.active_base_offset
        if active_base != self._active_base:
            self._active_base = active_base
            if self.producers.end_offset == active_base:
                try:
                    self.producers.write_snapshot()
                except OSError as exc:
                    # The batch is in the log already and will be answered: a missing
                    # snapshot only makes the next start replay more of the log.
                    log.warning("%s-%d: producer snapshot at %d failed: %s", self.topic, self.index,
                                active_base, exc)
                    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                        self.health.failed(exc, f"a producer snapshot of {self.topic}-{self.index}")

    def truncate_to(self, offset: int) -> None:
        self.log.truncate_to(offset)
        self.producers.load(self.log)  # drops snapshots above the new end, replays the rest

    def restart_at(self, offset: int) -> None:
        self.log.restart_at(offset)
        self.producers.load(self.log)

    def update_config(self, config: TopicConfig) -> None:
        self.log.update_config(config)

    def flush(self) -> None:
        self.log.flush()

    def close(self) -> None:
        """Flush, write the producer snapshot and close; a second call does nothing."""
        if self.log.is_closed:
            return
        try:
            self.log.flush()
            # At the offset the table really covers (the LEO unless batches bypassed it).
            self.producers.write_snapshot()
        finally:
            self.log.close()

    def delete(self) -> None:
        self.log.delete()
