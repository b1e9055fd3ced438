"""Every partition on this broker's disk: load/recover, create/delete, close.

Theory of operation
-------------------
Layout of the data directory::

    <data_dir>/
      .lock                    flock()ed for the broker's lifetime: one broker per directory
      .kafka_cleanshutdown     present only between a clean close() and the next load()
      meta.properties          version=1, cluster.id=<22 chars>, node.id=<broker id>
      __kavka_meta/topics.json the topic catalog (kavka.log.topic_catalog)
      <topic>-<partition>/     one PartitionLog each (segments, indexes, checkpoints,
                               producer snapshots)
      <topic>-<p>.<hex>-delete/  a deleted partition whose files are being removed
      <topic>-<p>.<hex>-stray/   a partition directory no topic owns, set aside

Several log directories (``log.dirs`` with more than one entry, KIP-112): the
broker's data dir is the first; it alone holds ``__kavka_meta/`` and the
clean-shutdown marker.  Every one has its ``.lock`` and a ``meta.properties``
that must name the same cluster and broker, and holds partition directories
(and their ``-delete``/``-stray`` leftovers).  A new partition goes to the
online log dir holding the fewest partitions, the first of those in
``log.dirs`` order, as Kafka places them; ``load()`` finds each partition in
whichever dir holds it (one directory name in two dirs is refused: remove the
stale one), and each dir has its own health (kavka.log.log_dir), so a failed
dir takes only its own partitions offline.  :meth:`move_partition` moves one
between dirs (AlterReplicaLogDirs; kavka.log.dir_move, whose interrupted moves
``load()`` finishes or undoes first).

Which topics exist, and their ids and configs, is the catalog's
(kavka.log.topic_catalog, ``self.catalog``); this module opens the partitions it
names.  Every metadata file is replaced atomically (checkpoint.write_atomically:
temp file, fsync, rename, fsync of the directory), so after a crash it holds
the old or the new contents; a CreateTopics request writes the catalog twice
however many topics it names.

Creation is all or nothing, also across crashes (``create_topics_stepwise``,
``create_partitions``): the new topics (or partitions) are first persisted as
*pending* (``"partitions": 0, "pending": n``, or ``"pending": added`` for a
growth) and are invisible to clients; then their partitions are opened (the
caller may serve other clients between steps); then one write commits them.
An OSError while opening (fd limit, disk) closes and deletes what was opened
and drops the pending entry.  ``load()`` rolls back every pending entry it
finds: the directories of the pending partitions are deleted and the entry
removed, so a crash at any point leaves the topic either whole or absent.
Deletion persists first and removes directories after: a crash in between
leaves directories no topic owns.  Those are renamed ``-stray`` at load, with
a warning, never adopted nor deleted: adopting them could resurrect a deleted
topic's records under a new topic of the same name, deleting them could lose
data an operator wants back.  ``-delete`` directories are removed at load.

Limits: ``max.partitions.per.broker`` (default 50,000; pending partitions
count) is checked by every creation, auto-created topics and validate-only
requests included, and raises PolicyViolation before anything is written;
the api layer adds ``max.partitions.per.request`` (default 10,000).  Client-set
``segment.bytes`` / ``segment.ms`` below ``internal.segment.bytes.min`` (1 MiB,
Kafka 4.0's minimum) / ``internal.segment.ms.min`` (1 min, KIP-1030's) are
InvalidConfig; topics already on disk load whatever they hold.  Segment files
are opened on demand through the process's LRU (kavka.log.file_cache), whose
limit is ``log.max.open.files`` capped at half of RLIMIT_NOFILE.

Crash recovery: ``load()`` removes the clean-shutdown marker first and opens
each partition with ``recover=True`` unless the marker was there, so a crash at
any point after load() (including during it) makes the next start scan and
repair every segment above its recovery point (CRC-32C of every batch, cut at
the first bad one).  On a clean start the marker's mtime is read before it is
removed, and every segment whose ``.log`` was modified after it is checked the
same way: a byte flipped or a file copied in while the broker was stopped is
found at start, not served (kavka.log.partition_dir.load_segments; ``kavka
check`` scans everything on demand).  Every closed segment neither check needs
costs one ``stat`` at start and reads its indexes on first use
(kavka.log.segment, "Lazy open"), so a start is O(partitions) in reads:
10 GB in 10,000 segments start in ~0.6 s (benchmarks/startup.py).  ``close()`` writes the marker last, after every
partition is flushed, has written its producer snapshot and is closed; it does
so in bulk (one syncfs, every checkpoint written without fsync, a second
syncfs: kavka.log.checkpoint.deferred_sync), so 20,000 partitions close in
seconds.

Housekeeping: :meth:`housekeeping` applies retention to every partition; the
broker calls it every ``log.retention.check.interval.ms``.
"""

from __future__ import annotations

import base64
import fcntl
import logging
import os
import re
import resource
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

from kavka.clock import Clock
from kavka.config import BrokerConfig, parse_dynamic, parse_properties
from kavka.log import dynamic_configs
from kavka.log.checkpoint import deferred_sync, sync_file_system, write_atomically
from kavka.log.dir_move import copy_to_future, precopy, resolve_futures, swap_in
from kavka.log.errors import (DataDirLocked, DataDirUnusable, InvalidPartitions, LogDirOffline, LogError,
                              PolicyViolation)
from kavka.log.file_cache import FILES
from kavka.log.log_dir import LogDirHealth
from kavka.log.partition import Partition
from kavka.log.partition_log import PartitionLog
from kavka.log.topic_catalog import TopicCatalog, TopicInfo

log = logging.getLogger("kavka.log")

LOCK_FILE = ".lock"
CLEAN_SHUTDOWN_FILE = ".kafka_cleanshutdown"
META_PROPERTIES = "meta.properties"
META_DIR = "__kavka_meta"
TOPICS_FILE = "topics.json"
DELETE_SUFFIX = "-delete"
STRAY_SUFFIX = "-stray"
_PARTITION_DIR = re.compile(r"(.+)-(\d+)")


def open_file_limit(configured: int) -> int:
    """``log.max.open.files``, but at most half of RLIMIT_NOFILE: the rest is for
    sockets, checkpoints and slices in flight."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        return configured
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(16, min(configured, soft // 2))


def extra_log_dirs(config: BrokerConfig, primary: Path) -> list[Path]:
    """The log dirs ``log.dirs`` names besides ``primary`` when it names ``primary`` too (the
    broker's data dir is the first of them); none otherwise."""
    dirs = [Path(os.path.abspath(d)) for d in config.data_dirs()]
    here = Path(os.path.abspath(primary))
    return [d for d in dirs if d != here] if here in dirs else []


def new_cluster_id() -> str:
    """A random 16-byte id in URL-safe base64 without padding (22 chars), like Kafka's
    Uuid.toString(); ids starting with '-' are redrawn because CLI tools read them as flags."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode("ascii")
        if not text.startswith("-"):
            return text


STEP_PARTITIONS = 200  # partitions a creation opens between yields to other clients


def run_steps(steps: Iterator[None]):
    """Drive a stepwise generator to its end without yielding; its return value."""
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value


@dataclass
class CreateOutcome:
    """One topic of :meth:`LogManager.create_topics_stepwise`: created, or ``error``."""

    info: "TopicInfo"
    error: BaseException | None = None

    def result(self) -> "TopicInfo":
        if self.error is not None:
            raise self.error
        return self.info


class LogManager:
    """Owns the data directory and every partition in it; see the module doc."""

    def __init__(self, data_dir: Path, broker_config: BrokerConfig, clock: Clock) -> None:
        self.data_dir = Path(data_dir)
        self.broker_config = broker_config
        self.clock = clock
        self.broker_id: int = broker_config.get("broker.id")
        self.cluster_id: str = ""
        self._partitions: dict[tuple[str, int], Partition] = {}
        self._opening: dict[str, list[Partition]] = {}  # partitions of creations in progress, opened so far
        self._lock_fds: list[int] = []
        self._verify_newer_than_ns: int | None = None  # the clean-shutdown marker's mtime (load)
        self._previous_file_limit: int | None = None
        self.health = LogDirHealth(self.data_dir)  # online, full or offline (kavka.log.log_dir)
        self.catalog = TopicCatalog(self.data_dir / META_DIR / TOPICS_FILE, broker_config, self.health)
        self._dynamic_texts: dynamic_configs.Layers = dynamic_configs.empty()
        self._group_texts: dict[str, dict[str, str]] = {}
        self._dirs = [self.health] + [LogDirHealth(Path(d)) for d in extra_log_dirs(broker_config, self.data_dir)]
        self._homes: dict[tuple[str, int], LogDirHealth] = {}  # the log dir of each partition, opened or found
        self._held: dict[Path, int] = {d.path: 0 for d in self._dirs}  # partitions per log dir, of _homes

    # -- lifecycle -------------------------------------------------------------------------

    def load(self, verify_all: bool = False) -> None:
        """Lock the directory, read metadata, open (and if unclean, recover) every partition.

        ``verify_all`` re-validates every segment whatever the marker says
        (``kavka check --repair``: the broker's own recovery, on everything)."""
        self._prepare_directory()
        self._acquire_lock()
        self._previous_file_limit = FILES.set_limit(open_file_limit(self.broker_config.get("log.max.open.files")))
        try:
            marker = self.data_dir / CLEAN_SHUTDOWN_FILE
            clean = marker.exists()
            # Segments modified after the marker was written are CRC-checked even on a clean start.
            self._verify_newer_than_ns = marker.stat().st_mtime_ns if clean else None
            if verify_all:
                self._verify_newer_than_ns = -1
            marker.unlink(missing_ok=True)
            self._load_identity()
            self._load_dynamic_configs()
            self._group_texts = dynamic_configs.read_groups(self.data_dir / META_DIR / dynamic_configs.GROUP_FILE)
            resolve_futures([d.path for d in self._dirs])
            self._clear_deleted_directories()
            self._find_homes()
            pending = False
            for info, adding in self.catalog.read():
                if adding:
                    pending = True
                    self._roll_back_pending(info, adding)
                if info.partitions:
                    self.catalog.commit(info)
            if pending:
                self.catalog.write()
            self._set_aside_strays()
            for info in self.catalog.topics().values():
                for index in range(info.partitions):
                    self._open_partition(info, index, recover=not clean)
            self._verify_newer_than_ns = None  # partitions created from now on are new files
        except BaseException:
            self._close_partitions()
            self._release_lock()
            raise
        log.info("loaded %d topics, %d partitions from %s%s", len(self.catalog.topics()), len(self._partitions),
                 ", ".join(str(d.path) for d in self._dirs),
                 "" if clean or not self._partitions else " (recovered after an unclean shutdown)")

    def close(self) -> None:
        """Flush and close every partition, then mark the shutdown clean and unlock."""
        if not self._lock_fds:
            return
        closed_all = self._close_partitions()
        try:
            if closed_all and not any(d.offline for d in self._dirs):
                write_atomically(self.data_dir / CLEAN_SHUTDOWN_FILE, "")
        except OSError as exc:  # no marker: the next start recovers every partition
            log.warning("could not mark the shutdown clean: %s", exc)
        self._release_lock()

    def _restore_file_limit(self) -> None:
        if self._previous_file_limit is not None:
            FILES.set_limit(self._previous_file_limit)
            self._previous_file_limit = None

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
        return self.catalog.get(name)

    def topics(self) -> Mapping[str, TopicInfo]:
        return self.catalog.topics()

    def topic_by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        return self.catalog.by_id(topic_id)

    def partitions(self) -> list[Partition]:
        """Every open partition, in no particular order (a copy: safe to mutate the manager)."""
        return list(self._partitions.values())

    def partition(self, topic: str, index: int) -> Partition | None:
        return self._partitions.get((topic, index))

    def log_dirs(self) -> list[LogDirHealth]:
        """The log directories this broker keeps partitions in, in ``log.dirs`` order."""
        return list(self._dirs)

    def precopy_move(self, topic: str, index: int, target: LogDirHealth) -> Path:
        """The first step of a move, safe in a worker thread while the partition serves: a
        future copy of its directory in ``target`` for :meth:`move_partition` to finish.
        A failure raises the target's StorageError."""
        source = self._partitions[(topic, index)].log.path
        try:
            return precopy(source, target.path)
        except OSError as exc:
            raise target.failed(exc, f"a move of {topic}-{index} into") from None

    def move_partition(self, topic: str, index: int, target: LogDirHealth,
                       precopied: Path | None = None) -> None:
        """Move a partition's directory to the log dir ``target`` (AlterReplicaLogDirs):
        closed, copied (or the ``precopied`` future of :meth:`precopy_move` brought up to
        date), swapped in and reopened (kavka.log.dir_move).  A failure to copy leaves it
        where it was, reopened, and raises the target's StorageError; a failure of the swap
        takes the partition's log dir offline (the next load() finishes or undoes the move)
        and raises LogDirOffline.  A partition deleted or already moved meanwhile stays as
        it is and the pre-copy is dropped."""
        partition = self._partitions.get((topic, index))
        if partition is None or partition.health is target or (
                precopied is not None and precopied.parent != target.path):
            if precopied is not None:
                shutil.rmtree(precopied, ignore_errors=True)
            return
        info = self.catalog.require(topic)
        old = partition.log
        source = old.path
        partition.close()
        try:
            future = copy_to_future(source, target.path, precopied)
        except OSError as exc:
            self._reopen(info, index, old)
            raise target.failed(exc, f"a move of {topic}-{index} into") from None
        try:
            swap_in(source, future)
        except OSError as exc:  # half swapped: only the next load() can tell which copy to keep
            what = f"a move of {topic}-{index} to {target.path}"
            partition.health.go_offline(f"{exc.strerror or exc}", what)
            raise LogDirOffline(f"{what}: log directory {partition.health.path} is offline "
                                f"({partition.health.offline_reason})", exc.errno) from None
        self._assign(topic, index, target)
        self._reopen(info, index, old)
        log.info("moved %s-%d from %s to %s", topic, index, source.parent, target.path)

    def _reopen(self, info: TopicInfo, index: int, old: PartitionLog) -> None:
        self._open_partition(info, index, recover=False)
        self._carry_over(old, self._partitions[(info.name, index)].log)

    @staticmethod
    def _carry_over(old: PartitionLog, new: PartitionLog) -> None:
        """What the closed log knew that its files do not say: replication's HW, and parked fetches."""
        new.hw_follows_leo = old.hw_follows_leo
        if not old.hw_follows_leo:
            new.advance_high_watermark(min(max(old.high_watermark, new.log_start_offset), new.log_end_offset))
        for listener in list(old.listeners):  # parked fetches answer now (is_closed), as on deletion
            listener(old)

    # -- admin operations ------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int, overrides: Mapping[str, str] | None = None,
                     topic_id: uuid.UUID | None = None, validate_only: bool = False,
                     client: bool = False) -> TopicInfo:
        """Create a topic; ``validate_only`` runs every check and changes nothing.

        ``client``: the overrides come from a client, so the segment floors
        (``internal.segment.bytes.min`` / ``internal.segment.ms.min``) apply.
        All or nothing: see :meth:`create_topics_stepwise`."""
        info = self.check_new_topic(name, partitions, overrides, topic_id, client=client)
        if validate_only:
            return info
        return run_steps(self.create_topics_stepwise([info]))[0].result()

    def check_new_topic(self, name: str, partitions: int, overrides: Mapping[str, str] | None = None,
                        topic_id: uuid.UUID | None = None, client: bool = False,
                        also_adding: int = 0) -> TopicInfo:
        """Every check of a creation (the catalog's: name, collision, count, configs;
        then the partition cap counting ``also_adding`` partitions of the same
        request); the TopicInfo to create."""
        info = self.catalog.check_new(name, partitions, overrides, topic_id, client=client)
        self.check_capacity(partitions + also_adding)
        return info

    def check_capacity(self, adding: int) -> None:
        """PolicyViolation unless ``adding`` more partitions fit ``max.partitions.per.broker``."""
        limit = self.broker_config.get("max.partitions.per.broker")
        held = len(self._partitions) + self.catalog.pending_partitions()
        if held + adding > limit:
            raise PolicyViolation(
                f"this broker holds {held} partitions; {adding} more would exceed max.partitions.per.broker={limit}")

    def create_topics_stepwise(self, infos: list[TopicInfo],
                               step_partitions: int = STEP_PARTITIONS) -> Iterator[None]:
        """Create checked topics (from :meth:`check_new_topic`), all or nothing per topic.

        A generator: it yields after every ``step_partitions`` partitions opened
        so that an async caller can serve other clients in between; its return
        value is one :class:`CreateOutcome` per topic.  Order (crash-safe, see
        the module doc): the topics are persisted as *pending* (one write for
        all), their partitions opened, then committed (one more write).  A topic
        whose partitions fail to open (an OSError: fd limit, disk) is rolled
        back: its partitions closed and deleted, its pending entry removed.
        """
        outcomes = [CreateOutcome(info) for info in infos]
        self.catalog.begin_creation(infos)
        try:
            self.catalog.write()
        except BaseException:
            for info in infos:
                self.catalog.forget_pending(info.name)
            raise
        opened_since_yield = 0
        try:
            for outcome in outcomes:
                info = outcome.info
                if set("._") & set(info.name) and not info.name.startswith("__"):  # internal topics are fine
                    log.warning("topic %r contains '.' or '_': its metric names may look like another topic's",
                                info.name)
                parts = self._opening[info.name] = []
                try:
                    for index in range(info.partitions):
                        parts.append(self._new_partition(info, index, recover=False))
                        opened_since_yield += 1
                        if opened_since_yield >= step_partitions:
                            opened_since_yield = 0
                            yield
                except (OSError, LogError) as exc:
                    log.error("creating topic %s failed after %d of %d partitions (%s); rolled back",
                              info.name, len(parts), info.partitions, exc)
                    outcome.error = exc
        finally:
            self._finish_creation(outcomes)
        return outcomes

    def _finish_creation(self, outcomes: list["CreateOutcome"]) -> None:
        """Commit the topics whose partitions all opened; roll back the others."""
        for outcome in outcomes:
            info = outcome.info
            parts = self._opening.pop(info.name, [])
            if outcome.error is None and len(parts) == info.partitions:
                self.catalog.commit(info)
                for part in parts:
                    self._partitions[(info.name, part.index)] = part
            else:
                if outcome.error is None:
                    outcome.error = InvalidPartitions(f"creation of {info.name!r} was interrupted")
                self.catalog.forget_pending(info.name)
                self._discard_partitions(info, parts, 0)
        self.catalog.write()

    def _discard_partitions(self, info: TopicInfo, parts: list[Partition], first: int) -> None:
        """Close and delete a failed creation's partitions (and directories it left)."""
        for part in parts:
            try:
                part.delete()
            except OSError:
                log.exception("could not remove %s-%d of a failed creation", part.topic, part.index)
        for index in range(first, first + info.partitions):
            self._unassign(info.name, index)
        for index in range(first + len(parts), first + info.partitions):
            for path in self._existing_dirs(info.name, index):
                shutil.rmtree(path, ignore_errors=True)

    def delete_topic(self, name: str) -> None:
        info = self.catalog.remove(name)
        self.catalog.write()
        for index in range(info.partitions):
            self._unassign(name, index)
            self._partitions.pop((name, index)).delete()  # renames to -delete, then removes

    def create_partitions(self, name: str, new_total: int, validate_only: bool = False) -> TopicInfo:
        """Grow a topic, all or nothing: the new partitions are persisted as pending,
        opened, then committed; a failure to open them deletes them again."""
        info = self.catalog.require(name)
        if new_total <= info.partitions:
            raise InvalidPartitions(
                f"topic {name!r} has {info.partitions} partitions; the new count {new_total} must be higher"
            )
        self.check_capacity(new_total - info.partitions)
        grown = TopicInfo(name, info.topic_id, new_total, info.config, info.overrides)
        if validate_only:
            return grown
        self.catalog.set_growing(name, new_total - info.partitions)
        self.catalog.write()
        parts: list[Partition] = []
        try:
            for index in range(info.partitions, new_total):
                parts.append(self._new_partition(grown, index, recover=False))
        except BaseException:
            self.catalog.set_growing(name, 0)
            self._discard_partitions(TopicInfo(name, info.topic_id, new_total - info.partitions, info.config,
                                               info.overrides), parts, info.partitions)
            self.catalog.write()
            raise
        self.catalog.set_growing(name, 0)
        self.catalog.commit(grown)
        for part in parts:
            self._partitions[(name, part.index)] = part
        self.catalog.write()
        return grown

    def alter_topic_config(self, name: str, overrides: Mapping[str, str | None],
                           validate_only: bool = False, client: bool = False) -> TopicInfo:
        """Set (a string) or remove (None) per-topic overrides; the others stay.

        ``client``: the segment floors apply to the values set (create_topic)."""
        altered = self.catalog.with_overrides(name, overrides, client=client)
        if validate_only:
            return altered
        self.catalog.commit(altered)
        self.catalog.write()
        for index in range(altered.partitions):
            self._partitions[(name, index)].update_config(altered.config)
        return altered

    # -- dynamic broker settings (kavka.log.dynamic_configs) ----------------------------------

    def set_broker_configs(self, scope: str, values: Mapping[str, str], validate_only: bool = False) -> None:
        """Replace one layer of dynamic broker settings (config.PER_BROKER or CLUSTER_DEFAULT)
        with ``values`` (strings, as a client sends them): checked (ConfigError), persisted,
        set on the broker config and handed to every topic whose setting follows the broker's."""
        parsed = parse_dynamic(values)
        if validate_only:
            return
        self._dynamic_texts[scope] = dict(values)
        dynamic_configs.write(self.data_dir / META_DIR / dynamic_configs.FILE, self._dynamic_texts)
        self.broker_config.set_dynamic(scope, parsed)
        self._refresh_topic_configs()

    def broker_config_texts(self, scope: str) -> dict[str, str]:
        """One dynamic layer as it was set (strings)."""
        return dict(self._dynamic_texts[scope])

    def group_configs(self) -> dict[str, dict[str, str]]:
        """group id -> the GROUP configs it sets (strings, kavka.group_configs)."""
        return {group: dict(values) for group, values in self._group_texts.items()}

    def set_group_configs(self, group: str, values: Mapping[str, str]) -> None:
        """Make ``values`` (checked by the caller) the whole set of one group's configs; persisted."""
        self._group_texts[group] = dict(values)
        if not values:
            del self._group_texts[group]
        dynamic_configs.write_groups(self.data_dir / META_DIR / dynamic_configs.GROUP_FILE, self._group_texts)

    def _load_dynamic_configs(self) -> None:
        self._dynamic_texts = dynamic_configs.read(self.data_dir / META_DIR / dynamic_configs.FILE)
        try:
            for scope, texts in self._dynamic_texts.items():
                self.broker_config.set_dynamic(scope, parse_dynamic(texts))
        except ValueError as exc:
            raise DataDirUnusable(f"dynamic broker configs of {self.data_dir}: {exc}") from exc

    def _refresh_topic_configs(self) -> None:
        """Re-resolve every topic against the broker config (its overrides unchanged)."""
        for name in list(self.catalog.topics()):
            refreshed = self.catalog.with_overrides(name, {})
            self.catalog.commit(refreshed)
            for index in range(refreshed.partitions):
                part = self._partitions.get((name, index))
                if part is not None:
                    part.update_config(refreshed.config)

    def describe_remote(self, name: str, topic_id: uuid.UUID, partitions: int,
                        overrides: Mapping[str, str]) -> TopicInfo:
        """A TopicInfo for a topic held elsewhere in the cluster (configs resolved here)."""
        return TopicInfo(name, topic_id, partitions, self.catalog.resolve(dict(overrides)), dict(overrides))

    # -- helpers ---------------------------------------------------------------------------

    def check_client_overrides(self, overrides: Mapping[str, str]) -> None:
        """The checks a client's overrides get beyond parsing (the segment floors)."""
        self.catalog.check_floors(overrides)

    def _partition_dir(self, topic: str, index: int) -> Path:
        """Where a partition lives: its log dir, else (a new one) the online log dir holding
        the fewest partitions, the first of those in ``log.dirs`` order (Kafka's rule)."""
        home = self._homes.get((topic, index))
        if home is None:
            online = [d for d in self._dirs if not d.offline] or self._dirs
            home = min(online, key=lambda d: self._held[d.path])
            self._assign(topic, index, home)
        return home.path / f"{topic}-{index}"

    def _assign(self, topic: str, index: int, home: LogDirHealth) -> None:
        self._unassign(topic, index)
        self._homes[(topic, index)] = home
        self._held[home.path] += 1

    def _unassign(self, topic: str, index: int) -> None:
        home = self._homes.pop((topic, index), None)
        if home is not None:
            self._held[home.path] -= 1

    def _existing_dirs(self, topic: str, index: int) -> list[Path]:
        return [p for p in (d.path / f"{topic}-{index}" for d in self._dirs) if p.exists()]

    def _find_homes(self) -> None:
        """Which log dir holds each partition directory on disk; one name in two dirs is refused."""
        for topic, index in list(self._homes):
            self._unassign(topic, index)
        for d in self._dirs:
            for path in d.path.iterdir():
                match = _PARTITION_DIR.fullmatch(path.name)
                if match is None or not path.is_dir() or path.name != f"{match.group(1)}-{int(match.group(2))}":
                    continue  # not a partition's directory, or a stray name (_set_aside_strays)
                key = (match.group(1), int(match.group(2)))
                if key in self._homes:
                    raise DataDirUnusable(f"partition directory {path.name} is in both {self._homes[key].path} "
                                          f"and {d.path}: remove the stale one")
                self._assign(*key, d)

    def _open_partition(self, info: TopicInfo, index: int, recover: bool) -> None:
        self._partitions[(info.name, index)] = self._new_partition(info, index, recover)

    def _new_partition(self, info: TopicInfo, index: int, recover: bool) -> Partition:
        path = self._partition_dir(info.name, index)
        plog = PartitionLog.open(path, info.name, index, info.config, self.clock, recover=recover,
                                 verify_newer_than_ns=self._verify_newer_than_ns)
        try:
            if plog.leader_epoch < 0:
                # A lone broker leads every partition from epoch 0; the cluster
                # controller will assign epochs instead.
                plog.assign_leader_epoch(0)
            partition = Partition.open(info.name, index, plog, self._homes[(info.name, index)])
            # As Kafka's snapshot load: producers expired meanwhile do not come back.
            partition.producers.remove_expired(self.clock.now_ms(), self.broker_config.get("producer.id.expiration.ms"))
            return partition
        except BaseException:
            plog.close()
            raise

    def _close_partitions(self) -> bool:
        """Close every partition (and those of a creation in progress) in bulk: one
        sync of the file system makes every record durable, the checkpoints are
        then written without fsyncs and made durable by a second sync
        (kavka.log.checkpoint.deferred_sync): seconds for 20,000 partitions.
        False if a disk error kept one from flushing (each is logged, the others
        still close, so shutdown finishes and the lock is released)."""
        ok = True
        doomed = list(self._partitions.values())
        for parts in self._opening.values():
            doomed.extend(parts)
        self._partitions.clear()
        self._opening.clear()
        if doomed:
            ok = self._sync_all()
        try:
            with deferred_sync():
                for part in doomed:
                    try:
                        part.close()
                    except OSError as exc:
                        ok = False
                        log.warning("closing %s-%d: %s", part.topic, part.index, exc)
        finally:
            if doomed:
                ok = self._sync_all() and ok
        return ok

    def _sync_all(self) -> bool:
        ok = True
        for d in self._dirs:
            try:
                sync_file_system(d.path)
            except OSError as exc:
                log.warning("syncing %s: %s", d.path, exc)
                ok = False
        return ok

    # -- the data directory ----------------------------------------------------------------

    def _prepare_directory(self) -> None:
        for d in self._dirs:
            try:
                d.path.mkdir(parents=True, exist_ok=True)
                probe = d.path / ".write-probe.tmp"
                probe.write_bytes(b"")
                probe.unlink()
            except OSError as exc:
                raise DataDirUnusable(f"data directory {d.path} is not a writable directory: {exc}") from exc
        try:
            (self.data_dir / META_DIR).mkdir(exist_ok=True)
        except OSError as exc:
            raise DataDirUnusable(f"data directory {self.data_dir} is not a writable directory: {exc}") from exc

    def _acquire_lock(self) -> None:
        for d in self._dirs:
            fd = os.open(d.path / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                self._release_lock()
                raise DataDirLocked(
                    f"data directory {d.path} is locked by another broker process (file {LOCK_FILE})"
                ) from None
            self._lock_fds.append(fd)

    def _release_lock(self) -> None:
        self._restore_file_limit()
        while self._lock_fds:
            os.close(self._lock_fds.pop())  # closing the only fd drops the flock

    def _load_identity(self) -> None:
        """Read meta.properties, creating it (with a new cluster id) on first start; every
        other log dir has its own copy (written when missing) that must agree with it."""
        path = self.data_dir / META_PROPERTIES
        if path.exists():
            self.cluster_id = self._read_identity(path)
        else:
            self.cluster_id = new_cluster_id()
            self._write_identity(path)
        for d in self._dirs[1:]:
            other = d.path / META_PROPERTIES
            if not other.exists():
                self._write_identity(other)
            elif self._read_identity(other) != self.cluster_id:
                raise DataDirUnusable(f"{other} belongs to another cluster than {path}")

    def _write_identity(self, path: Path) -> None:
        write_atomically(path, f"version=1\ncluster.id={self.cluster_id}\nnode.id={self.broker_id}\n")

    def _read_identity(self, path: Path) -> str:
        """The cluster id of a meta.properties whose node id is ours."""
        props = parse_properties(path.read_text("ascii"))
        cluster_id = props.get("cluster.id", "")
        stored = props.get("node.id", props.get("broker.id"))
        if not cluster_id or stored is None or not stored.isdigit():
            raise DataDirUnusable(f"{path} lacks cluster.id or a numeric node.id")
        if int(stored) != self.broker_id:
            raise DataDirUnusable(
                f"{path} belongs to broker {stored}, but this broker's broker.id is {self.broker_id}"
            )
        return cluster_id

    def _roll_back_pending(self, info: TopicInfo, adding: int) -> None:
        """A crash interrupted a creation (partitions 0) or growth: remove its new partitions."""
        log.warning("rolling back the interrupted %s of topic %s (%d partitions)",
                    "growth" if info.partitions else "creation", info.name, adding)
        for index in range(info.partitions, info.partitions + adding):
            self._unassign(info.name, index)
            for path in self._existing_dirs(info.name, index):
                doomed = path.with_name(f"{path.name}.{uuid.uuid4().hex}{DELETE_SUFFIX}")
                os.rename(path, doomed)
                shutil.rmtree(doomed, ignore_errors=True)

    def _clear_deleted_directories(self) -> None:
        for d in self._dirs:
            for path in d.path.glob("*" + DELETE_SUFFIX):
                log.info("removing %s, left by an interrupted topic deletion or move", path)
                shutil.rmtree(path, ignore_errors=True)

    def _set_aside_strays(self) -> None:
        for d in self._dirs:
            for path in sorted(d.path.iterdir()):
                match = _PARTITION_DIR.fullmatch(path.name)
                if not path.is_dir() or match is None:
                    continue
                topic, index = match.group(1), int(match.group(2))
                info = self.catalog.get(topic)
                if info is not None and index < info.partitions and path.name == f"{topic}-{index}":
                    continue
                aside = path.with_name(f"{path.name}.{uuid.uuid4().hex}{STRAY_SUFFIX}")
                log.warning("partition directory %s belongs to no topic; renamed to %s", path, aside.name)
                os.rename(path, aside)
                if path.name == f"{topic}-{index}":
                    self._unassign(topic, index)
