"""The topic catalog of one data directory: the topics this broker holds, their
ids, partition counts and config overrides, and the rules a new topic must pass.

A lone broker's catalog is the cluster's (kavka.metadata.local answers from it);
in a cluster, etcd is the catalog and this one records which topics the broker
holds replicas of, so that it can open them at start before etcd answers.
kavka.log.log_manager opens and closes the partitions the catalog names; the
catalog itself touches only ``__kavka_meta/topics.json``.

``topics.json`` (ASCII JSON; overrides as the strings the client sent, so
DescribeConfigs shows them as given and parsing rules stay in config.py)::

    {"format": 1, "topics": [{"name": "t", "topic_id": "<uuid>", "partitions": 3,
                              "overrides": {"retention.ms": "1000"}}, ...]}

A creation in progress is an entry with ``"partitions": 0, "pending": n``, a
growth one with ``"pending": added``; both are invisible to clients and rolled
back by the next load if the broker stops before they are committed (see
kavka.log.log_manager).  The file is replaced atomically (temp file, fsync,
rename, fsync of the directory); each committed topic's entry is encoded once
and cached, so a rewrite costs a string join.

Names follow Kafka's rules (1 to 249 of ``[a-zA-Z0-9._-]``, not ``.`` or
``..``), and two topics may not differ only by '.' against '_' (their metric
names would collide).
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

from kavka.config import BrokerConfig, ConfigError, TopicConfig, validate_topic_overrides
from kavka.log.checkpoint import write_atomically
from kavka.log.errors import (
    DataDirUnusable,
    InvalidConfig,
    InvalidPartitions,
    InvalidTopic,
    TopicAlreadyExists,
    UnknownTopicOrPartition,
)
from kavka.log.log_dir import LogDirHealth

TOPICS_FORMAT = 1
MAX_TOPIC_NAME = 249
_LEGAL_NAME = re.compile(r"[a-zA-Z0-9._-]+")


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


@dataclass(frozen=True)
class TopicInfo:
    name: str
    topic_id: uuid.UUID
    partitions: int
    config: TopicConfig
    overrides: Mapping[str, str] = field(default_factory=dict)


def _entry(info: TopicInfo, partitions: int, pending: int) -> str:
    item = {"name": info.name, "topic_id": str(info.topic_id), "partitions": partitions,
            "overrides": dict(info.overrides)}
    if pending:
        item["pending"] = pending
    return json.dumps(item, sort_keys=True)


class TopicCatalog:
    """The committed topics, the creations and growths in progress, and their file."""

    def __init__(self, path: Path, broker_config: BrokerConfig, health: LogDirHealth) -> None:
        self.path = path
        self.broker_config = broker_config
        self.health = health
        self._topics: dict[str, TopicInfo] = {}
        self._by_id: dict[uuid.UUID, TopicInfo] = {}
        self._unified: dict[str, str] = {}  # unify_collision_chars(name) -> name, for O(1) collision checks
        self._pending: dict[str, TopicInfo] = {}  # topics being created (persisted as pending)
        self._growing: dict[str, int] = {}  # topic -> partitions being added (persisted as pending)
        self._encoded: dict[str, str] = {}  # name -> its committed entry of topics.json

    # -- queries ---------------------------------------------------------------------------

    def get(self, name: str) -> TopicInfo | None:
        return self._topics.get(name)

    def topics(self) -> Mapping[str, TopicInfo]:
        return MappingProxyType(self._topics)

    def by_id(self, topic_id: uuid.UUID) -> TopicInfo | None:
        return self._by_id.get(topic_id)

    def require(self, name: str) -> TopicInfo:
        info = self._topics.get(name)
        if info is None:
            raise UnknownTopicOrPartition(f"topic {name!r} does not exist")
        return info

    def pending_partitions(self) -> int:
        """Partitions of creations in progress (they count against the broker's cap)."""
        return sum(p.partitions for p in self._pending.values())

    # -- the rules -------------------------------------------------------------------------

    def check_new(self, name: str, partitions: int, overrides: Mapping[str, str] | None = None,
                  topic_id: uuid.UUID | None = None, client: bool = False) -> TopicInfo:
        """The name, collision, partition count and config checks of a creation;
        the TopicInfo to create.  ``client``: the overrides come from a client, so
        the segment floors apply (:meth:`check_floors`)."""
        validate_topic_name(name)
        if name in self._topics or name in self._pending:
            raise TopicAlreadyExists(f"Topic '{name}' already exists.")
        existing = self._unified.get(unify_collision_chars(name))
        if existing is not None and existing != name:
            raise InvalidTopic(f"topic {name!r} collides with existing topic {existing!r} ('.' and '_' clash)")
        if partitions < 1:
            raise InvalidPartitions(f"a topic needs at least one partition, not {partitions}")
        overrides = dict(overrides or {})
        if client:
            self.check_floors(overrides)
        info = TopicInfo(name, topic_id or uuid.uuid4(), partitions, self.resolve(overrides), overrides)
        if info.topic_id in self._by_id:
            raise TopicAlreadyExists(f"topic id {info.topic_id} is already used by {self._by_id[info.topic_id].name}")
        return info

    def check_floors(self, overrides: Mapping[str, str]) -> None:
        """Kafka 4.0's floor for segment.bytes (1 MiB, KIP-1030) and KIP-1030's one
        minute for segment.ms, on values a client sets: thousands of tiny
        segments would exhaust files.  The broker-level ``internal.*`` settings
        lower them (tests)."""
        parsed = self._parse(overrides)
        for key, floor_key in (("segment.bytes", "internal.segment.bytes.min"),
                               ("segment.ms", "internal.segment.ms.min")):
            floor = self.broker_config.get(floor_key)
            if key in parsed and parsed[key] < floor:
                raise InvalidConfig(f"{key}: {parsed[key]} is below the minimum {floor}")

    def resolve(self, overrides: Mapping[str, str]) -> TopicConfig:
        """The topic's whole config: its overrides over this broker's defaults."""
        return self.broker_config.topic_config(self._parse(overrides))

    @staticmethod
    def _parse(overrides: Mapping[str, str]) -> dict:
        try:
            return validate_topic_overrides(overrides)
        except ConfigError as exc:
            raise InvalidConfig(str(exc), exc) from exc

    def with_overrides(self, name: str, changes: Mapping[str, str | None], client: bool = False) -> TopicInfo:
        """The topic with overrides set (a string) or removed (None), the others kept; checked, not stored."""
        info = self.require(name)
        merged = dict(info.overrides)
        for key, value in changes.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        if client:
            self.check_floors({k: v for k, v in changes.items() if v is not None})
        return TopicInfo(name, info.topic_id, info.partitions, self.resolve(merged), merged)

    # -- changes (each followed by write() where it must be durable) ----------------------------

    def begin_creation(self, infos: list[TopicInfo]) -> None:
        for info in infos:
            self._pending[info.name] = info
            self._unified[unify_collision_chars(info.name)] = info.name

    def forget_pending(self, name: str) -> None:
        self._pending.pop(name, None)
        if name not in self._topics:
            self._unified.pop(unify_collision_chars(name), None)

    def commit(self, info: TopicInfo) -> None:
        """``info`` is the topic from now on (created, grown or reconfigured)."""
        self._pending.pop(info.name, None)
        self._topics[info.name] = info
        self._by_id[info.topic_id] = info
        self._unified[unify_collision_chars(info.name)] = info.name
        self._encoded.pop(info.name, None)

    def remove(self, name: str) -> TopicInfo:
        info = self.require(name)
        del self._topics[name]
        del self._by_id[info.topic_id]
        self._unified.pop(unify_collision_chars(name), None)
        self._encoded.pop(name, None)
        return info

    def set_growing(self, name: str, adding: int) -> None:
        """``adding`` partitions of ``name`` are being opened (0: no longer)."""
        if adding:
            self._growing[name] = adding
        else:
            self._growing.pop(name, None)

    # -- the file --------------------------------------------------------------------------

    def read(self) -> list[tuple[TopicInfo, int]]:
        """Every entry of the file: (topic, partitions of an unfinished creation or growth)."""
        if not self.path.exists():
            return []
        try:
            body = json.loads(self.path.read_text("ascii"))
            if body["format"] != TOPICS_FORMAT:
                raise ValueError(f"unknown format {body['format']}")
            return [self._from_json(item) for item in body["topics"]]
        except (ValueError, KeyError, TypeError, LookupError, InvalidConfig) as exc:
            raise DataDirUnusable(f"topic metadata {self.path} is unreadable: {exc}") from exc

    def _from_json(self, item: dict) -> tuple[TopicInfo, int]:
        overrides = {str(k): str(v) for k, v in item["overrides"].items()}
        return (TopicInfo(item["name"], uuid.UUID(item["topic_id"]), int(item["partitions"]),
                          self.resolve(overrides), overrides), int(item.get("pending", 0)))

    def write(self) -> None:
        """Rewrite the file: committed topics plus pending creations and growths."""
        entries = []
        for t in self._topics.values():
            adding = self._growing.get(t.name)
            if adding:  # not cached: changes at commit
                entries.append(_entry(t, t.partitions, adding))
                continue
            text = self._encoded.get(t.name)
            if text is None:
                text = self._encoded[t.name] = _entry(t, t.partitions, 0)
            entries.append(text)
        entries.extend(_entry(t, 0, t.partitions) for t in self._pending.values())
        body = '{"format": %d, "topics": [\n%s\n]}\n' % (TOPICS_FORMAT, ",\n".join(entries))
        try:
            write_atomically(self.path, body)
        except OSError as exc:
            raise self.health.failed(exc, f"{self.path.parent.name}/{self.path.name}") from None
