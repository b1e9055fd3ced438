"""Every partition on this broker's disk: topic metadata, load/recover, create/delete.

Theory of operation
-------------------
Layout of the data directory::

    <data_dir>/
      .lock                    flock()ed for the broker's lifetime: one broker per directory
      .kafka_cleanshutdown     present only between a clean close() and the next load()
      meta.properties          version=1, cluster.id=<22 chars>, node.id=<broker id>
      __kavka_meta/topics.json every topic: name, id, partition count, config overrides
      <topic>-<partition>/     one PartitionLog each (segments, indexes, checkpoints,
                               producer snapshots)
      <topic>-<p>.<hex>-delete/  a deleted partition whose files are being removed
      <topic>-<p>.<hex>-stray/   a partition directory no topic owns, set aside

``topics.json`` (ASCII JSON; overrides as the strings the client sent, so
DescribeConfigs shows them as given and parsing rules stay in config.py)::

    {"format": 1, "topics": [{"name": "t", "topic_id": "<uuid>", "partitions": 3,
                              "overrides": {"retention.ms": "1000"}}, ...]}

Every metadata file is replaced atomically (checkpoint.write_atomically: temp
file, fsync, rename, fsync of the directory), so after a crash it holds the old
or the new contents.  Metadata changes are persisted *before* the directories
follow them: a crash in between leaves either partitions that the next load
creates empty (create_topic, create_partitions), or directories no topic owns
(delete_topic).  Those are renamed ``-stray`` at load, with a warning, never
adopted nor deleted: adopting them could resurrect a deleted topic's records
under a new topic of the same name, deleting them could lose data an operator
wants back.  ``-delete`` directories are removed at load.

Crash recovery: ``load()`` removes the clean-shutdown marker first and opens
each partition with ``recover=True`` unless the marker was there, so a crash at
any point after load() (including during it) makes the next start scan and
repair every segment.  ``close()`` writes the marker last, after every
partition is flushed, has written its producer snapshot and is closed.

Housekeeping: :meth:`housekeeping` applies retention to every partition; the
broker calls it every ``log.retention.check.interval.ms``.
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from kavka.clock import Clock
from kavka.config import BrokerConfig, ConfigError, TopicConfig, parse_properties, validate_topic_overrides
from kavka.log.checkpoint import write_atomically
from kavka.log.errors import (
    DataDirLocked, DataDirUnusable, InvalidConfig, InvalidPartitions, InvalidTopic, StorageError,
    TopicAlreadyExists, UnknownTopicOrPartition,
)
from kavka.log.log_dir import LogDirHealth
from kavka.log.partition import Partition
from kavka.log.partition_log import PartitionLog

log = logging.getLogger("kavka.log")

LOCK_FILE = ".lock"
CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
META_PROPERTIES = "meta.properties"
META_DIR = "__kavka_meta"
TOPICS_FILE = "topics.json"
TOPICS_FORMAT = 1
DELETE_SUFFIX = "-delete"
STRAY_SUFFIX = "-stray"
MAX_TOPIC_NAME = 249
_LEGAL_NAME = re.compile(r"[a-zA-Z0-9._-]+")
_PARTITION_DIR = re.compile(r"(.+)-(\d+)")


def validate_topic_name(name: str) -> None:
    """Kafka's rules (Topic.validate): 1..249 of [a-zA-Z0-9._-], not "." or ".."."""
    if not name:
        raise InvalidTopic("topic name is empty")
    if name in (".", ".."):
        raise InvalidTopic(f"topic name cannot be {name!r}")
    if len(name) > MAX_TOPIC_NAME:
        raise InvalidTopic(f"topic name is {len(name)} characters long, the limit is {MAX_TOPIC_NAME}")
    if not _LEGAL_NAME.fullmatch(name):
        raise InvalidTopic(f"topic name {name!r} may only contain ASCII letters, digits, '.', '_' and '-'")


def unify_collision_chars(name: str) -> str:
    """Kafka's metric names turn '.' into '_', so "a.b" and "a_b" cannot coexist."""
    return name.replace(".", "_")


def new_cluster_id() -> str:
    """A random 16-byte id in URL-safe base64 without padding (22 chars), like Kafka's
    Uuid.toString(); ids starting with '-' are redrawn because CLI tools read them as flags."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not text.startswith("-"):
            return text


@dataclass(frozen=True)
class TopicInfo:
    name: str
    topic_id: uuid.UUID
    partitions: int
    config: TopicConfig
    overrides: Mapping[str, str] = field(default_factory=dict)


class LogManager:
    """Owns the data directory and every partition in it; see the module doc."""

    def __init__(self, data_dir: Path, broker_config: BrokerConfig, clock: Clock) -> None:
        self.data_dir = Path(data_dir)
        self.broker_config = broker_config
        self.clock = clock
        self.broker_id: int = broker_config.get("broker.id")
        self.cluster_id: str = ""
        self._topics: dict[str, TopicInfo] = {}
        self._by_id: dict[uuid.UUID, TopicInfo] = {}
        self._partitions: dict[tuple[str, int], Partition] = {}
        self._lock_fd: int | None = None
        self.health = LogDirHealth(self.data_dir)  # online, full or offline (kavka.log.log_dir)

    # -- lifecycle -------------------------------------------------------------------------

    def load(self) -> None:
        """Lock the directory, read metadata, open (and if unclean, recover) every partition."""
        self._prepare_directory()
        self._acquire_lock()
        try:
            marker = self.data_dir / CLEAN_SHUTDOWN_FILE
            clean = marker.exists()
            marker.unlink(missing_ok=True)
            self._load_identity()
            self._clear_deleted_directories()
            for info in self._read_topics():
                self._remember(info)
            self._set_aside_strays()
            for info in self._topics.values():
                for index in range(info.partitions):
                    self._open_partition(info, index, recover=not clean)
        except BaseException:
            self._close_partitions()
            self._release_lock()
            raise
        log.info("loaded %d topics, %d partitions from %s%s", len(self._topics), len(self._partitions),
                 self.data_dir, "" if clean or not self._partitions else " (recovered after an unclean shutdown)")

    def close(self) -> None:
        """Flush and close every partition, then mark the shutdown clean and unlock."""
        if self._lock_fd is None:
            return
        closed_all = self._close_partitions()
        try:
            if closed_all and not self.health.offline:
                write_atomically(self.data_dir / CLEAN_SHUTDOWN_FILE, "")
        except OSError as exc:  # no marker: the next start recovers every partition
            log.warning("could not mark the shutdown clean: %s", exc)
        self._release_lock()

    def housekeeping(self, now_ms: int) -> int:
        """Retention, run every ``log.retention.check.interval.ms``; returns segments deleted.

        Each partition deletes the closed segments that retention.ms,
        retention.bytes or its log start offset expire (kavka.log.retention).
        One partition failing (a disk error) is logged and does not stop the others.
        """
        deleted = 0
        for (topic, index), partition in list(self._partitions.items()):
            if partition.offline:
                continue
            try:
                decision = partition.log.apply_retention(now_ms)
            except OSError as exc:
                partition.storage_failure(exc, "retention of")  # logged once, not per run
                continue
            if decision:
                deleted += decision.count
                log.info("%s-%d: deleted %d segments (%s); log start offset now %d", topic, index,
                         decision.count, ", ".join(f"{r}: {n}" for r, n in decision.reasons),
                         partition.log.log_start_offset)
        return deleted

    # -- queries ---------------------------------------------------------------------------

    def topic(self, name: str) -> TopicInfo | None:
        return self._topics.get(name)

    def topics(self) -> Mapping[str, TopicInfo]:
        return MappingProxyType(self._topics)

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        return self._by_id.get(topic_id)

    def partitions(self) -> list[Partition]:
        """Every open partition, in no particular order (a copy: safe to mutate the manager)."""
        return list(self._partitions.values())

    def partition(self, topic: str, index: int) -> Partition | None:
        return self._partitions.get((topic, index))

    # -- admin operations ------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int, overrides: Mapping[str, str] | None = None,
                     topic_id: uuid.UUID | None = None, validate_only: bool = False) -> TopicInfo:
        """Create a topic; ``validate_only`` runs every check and changes nothing."""
        validate_topic_name(name)
        if name in self._topics:
            raise TopicAlreadyExists(f"topic {name!r} already exists")
        self._check_collision(name)
        if partitions < 1:
            raise InvalidPartitions(f"a topic needs at least one partition, not {partitions}")
        overrides = dict(overrides or {})
        info = TopicInfo(name, topic_id or uuid.uuid4(), partitions, self._resolve(overrides), overrides)
        if info.topic_id in self._by_id:
            raise TopicAlreadyExists(f"topic id {info.topic_id} is already used by {self._by_id[info.topic_id].name}")
        if validate_only:
            return info
        if set("._") & set(name) and not name.startswith("__"):  # internal topics are fine
            log.warning("topic %r contains '.' or '_': its metric names may look like another topic's", name)
        self._remember(info)
        try:
            self._write_topics()
        except StorageError:  # not persisted: no half-made topic in memory either
            del self._topics[name], self._by_id[info.topic_id]
            raise
        for index in range(partitions):
            self._open_partition(info, index, recover=False)
        return info

    def delete_topic(self, name: str) -> None:
        info = self._require(name)
        del self._topics[name]
        del self._by_id[info.topic_id]
        self._write_topics()
        for index in range(info.partitions):
            self._partitions.pop((name, index)).delete()  # renames to -delete, then removes

    def create_partitions(self, name: str, new_total: int, validate_only: bool = False) -> TopicInfo:
        info = self._require(name)
        if new_total <= info.partitions:
            raise InvalidPartitions(
                f"topic {name!r} has {info.partitions} partitions; the new count {new_total} must be higher"
            )
        grown = TopicInfo(name, info.topic_id, new_total, info.config, info.overrides)
        if validate_only:
            return grown
        self._remember(grown)
        self._write_topics()
        for index in range(info.partitions, new_total):
            self._open_partition(grown, index, recover=False)
        return grown

    def alter_topic_config(self, name: str, overrides: Mapping[str, str | None],
                           validate_only: bool = False) -> TopicInfo:
        """Set (a string) or remove (None) per-topic overrides; the others stay."""
        info = self._require(name)
        merged = dict(info.overrides)
        for key, value in overrides.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        altered = TopicInfo(name, info.topic_id, info.partitions, self._resolve(merged), merged)
        if validate_only:
            return altered
        self._remember(altered)
        self._write_topics()
        for index in range(info.partitions):
            self._partitions[(name, index)].update_config(altered.config)
        return altered

    def describe_remote(self, name: str, topic_id: uuid.UUID, partitions: int,
                        overrides: Mapping[str, str]) -> TopicInfo:
        """A TopicInfo for a topic held elsewhere in the cluster (configs resolved here)."""
        return TopicInfo(name, topic_id, partitions, self._resolve(dict(overrides)), dict(overrides))

    # -- helpers ---------------------------------------------------------------------------

    def _require(self, name: str) -> TopicInfo:
        info = self._topics.get(name)
        if info is None:
            raise UnknownTopicOrPartition(f"topic {name!r} does not exist")
        return info

    def _check_collision(self, name: str) -> None:
        unified = unify_collision_chars(name)
        for existing in self._topics:
            if unify_collision_chars(existing) == unified:
                raise InvalidTopic(f"topic {name!r} collides with existing topic {existing!r} ('.' and '_' clash)")

    def _resolve(self, overrides: Mapping[str, str]) -> TopicConfig:
        try:
            parsed = validate_topic_overrides(overrides)
        except ConfigError as exc:
            raise InvalidConfig(str(exc), exc) from exc
        return self.broker_config.topic_config(parsed)

    def _remember(self, info: TopicInfo) -> None:
        self._topics[info.name] = info
        self._by_id[info.topic_id] = info

    def _partition_dir(self, topic: str, index: int) -> Path:
        return self.data_dir / f"{topic}-{index}"

    def _open_partition(self, info: TopicInfo, index: int, recover: bool) -> None:
        path = self._partition_dir(info.name, index)
        plog = PartitionLog.open(path, info.name, index, info.config, self.clock, recover=recover)
        if plog.leader_epoch < 0:
            # A lone broker leads every partition from epoch 0; the cluster
            # controller will assign epochs instead.
            plog.assign_leader_epoch(0)
        self._partitions[(info.name, index)] = Partition.open(info.name, index, plog, self.health)

    def _close_partitions(self) -> bool:
        """Close every partition; False if a disk error kept one from flushing (each is
        logged, the others still close, so shutdown finishes and the lock is released)."""
        ok = True
        for key in list(self._partitions):
            try:
                self._partitions.pop(key).close()
            except OSError as exc:
                ok = False
                log.warning("closing %s-%d: %s", key[0], key[1], exc)
        return ok

    # -- the data directory ----------------------------------------------------------------

    def _prepare_directory(self) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            (self.data_dir / META_DIR).mkdir(exist_ok=True)
            probe = self.data_dir / ".write-probe.tmp"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise DataDirUnusable(f"data directory {self.data_dir} is not a writable directory: {exc}") from exc

    def _acquire_lock(self) -> None:
        fd = os.open(self.data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise DataDirLocked(
                f"data directory {self.data_dir} is locked by another broker process (file {LOCK_FILE})"
            ) from None
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the only fd drops the flock
            self._lock_fd = None

    def _load_identity(self) -> None:
        """Read meta.properties, creating it (with a new cluster id) on first start."""
        path = self.data_dir / META_PROPERTIES
        if not path.exists():
            self.cluster_id = new_cluster_id()
            write_atomically(path, f"version=1\ncluster.id={self.cluster_id}\nnode.id={self.broker_id}\n")
            return
        props = parse_properties(path.read_text("ascii"))
        self.cluster_id = props.get("cluster.id", "")
        stored = props.get("node.id", props.get("broker.id"))
        if not self.cluster_id or stored is None or not stored.isdigit():
            raise DataDirUnusable(f"{path} lacks cluster.id or a numeric node.id")
        if int(stored) != self.broker_id:
            raise DataDirUnusable(
                f"{path} belongs to broker {stored}, but this broker's broker.id is {self.broker_id}"
            )

    def _read_topics(self) -> list[TopicInfo]:
        path = self.data_dir / META_DIR / TOPICS_FILE
        if not path.exists():
            return []
        try:
            body = json.loads(path.read_text("ascii"))
            if body["format"] != TOPICS_FORMAT:
                raise ValueError(f"unknown format {body['format']}")
            return [self._topic_from_json(item) for item in body["topics"]]
        except (ValueError, KeyError, TypeError, LookupError, InvalidConfig) as exc:
            raise DataDirUnusable(f"topic metadata {path} is unreadable: {exc}") from exc

    def _topic_from_json(self, item: dict) -> TopicInfo:
        overrides = {str(k): str(v) for k, v in item["overrides"].items()}
        return TopicInfo(item["name"], uuid.UUID(item["topic_id"]), int(item["partitions"]),
                         self._resolve(overrides), overrides)

    def _write_topics(self) -> None:
        body = {"format": TOPICS_FORMAT, "topics": [
            {"name": t.name, "topic_id": str(t.topic_id), "partitions": t.partitions,
             "overrides": dict(t.overrides)}
            for t in self._topics.values()]}
        try:
            write_atomically(self.data_dir / META_DIR / TOPICS_FILE, json.dumps(body, indent=1, sort_keys=True))
        except OSError as exc:
            raise self.health.failed(exc, f"{META_DIR}/{TOPICS_FILE}") from None

    def _clear_deleted_directories(self) -> None:
        for path in self.data_dir.glob("*" + DELETE_SUFFIX):
            log.info("removing %s, left by an interrupted topic deletion", path.name)
            shutil.rmtree(path, ignore_errors=True)

    def _set_aside_strays(self) -> None:
        for path in sorted(self.data_dir.iterdir()):
            match = _PARTITION_DIR.fullmatch(path.name)
            if not path.is_dir() or match is None:
                continue
            info = self._topics.get(match.group(1))
            index = int(match.group(2))
            if info is not None and index < info.partitions and path == self._partition_dir(info.name, index):
                continue
            aside = path.with_name(f"{path.name}.{uuid.uuid4().hex}{STRAY_SUFFIX}")
            log.warning("partition directory %s belongs to no topic; renamed to %s", path.name, aside.name)
            os.rename(path, aside)
