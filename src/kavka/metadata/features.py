"""Kafka's feature flags (KIP-584, KIP-778, KIP-1022): what kavka supports, what is finalized,
and how an UpdateFeatures request changes the finalized levels.

A *supported* range says which levels of a feature this broker's software can run at; a
*finalized* level is the one the cluster runs at, chosen by the operator with
``kafka-features upgrade|downgrade`` (UpdateFeatures) and reported in ApiVersions v3+ with an
epoch that grows with every change.  A level of 0 means "not finalized": it is left out of
the finalized list, as Kafka leaves it out.

The table lists the features a Kafka 4.1 broker reports, each with the range kavka can
truthfully claim:

* ``metadata.version`` 7 (3.3-IV3) to 25 (4.0-IV3): Kafka 4.0's range.  kavka serves
  Kafka 4.0's API version ranges (Produce ≤ 12, Fetch ≤ 17: not 4.1's Produce 13 / Fetch 18
  with topic ids, which 4.1-IV0 and later gate), so 4.0-IV3 is its newest level.
* ``kraft.version`` 0 only: kavka's controller quorum is etcd, not KRaft; level 1 (dynamic
  KRaft voters, KIP-853) has nothing to switch on.
* ``group.version`` 0-1, finalized at 1: the KIP-848 consumer protocol
  (ConsumerGroupHeartbeat / ConsumerGroupDescribe) works; at 0 those APIs answer
  UNSUPPORTED_VERSION, as Kafka's do.
* ``transaction.version`` 0-2, finalized at 2 (Kafka 4.0's default on a new cluster: TV_2
  bootstraps from 4.0-IV2), on a lone broker and a cluster alike (a cluster's partition leaders
  add a V2 client's partitions through the id's coordinator, kavka.cluster.txn_verifier).
  Level 2 is KIP-890's transactions V2: a client that sees it (the Java client from 4.0)
  sends EndTxn v5, Produce v12 and TxnOffsetCommit v5 with no AddPartitionsToTxn or
  AddOffsetsToTxn of its own, and every commit or abort bumps its epoch.  Levels 0 and 1 (Kafka's flexible
  ``__transaction_state`` records) run the classic protocol; the partition-side check that a
  transactional write belongs to an ongoing transaction (KIP-890 part 1) is on at every level
  (``transaction.partition.verification.enable``).
* ``eligible.leader.replicas.version`` 0 only: no ELR (KIP-966).
* ``share.version`` 0 only: no share groups (KIP-932).
* ``streams.version`` 0 only: no streams groups (KIP-1071).

A fresh lone broker starts at Kafka 4.0's format-time defaults for these ranges (the newest
metadata.version, group.version 1 and transaction.version 2) at epoch 0, and so does a fresh
cluster.  Updates follow Kafka's controller
(FeatureControlManager): the whole request fails with INVALID_UPDATE_VERSION on the first
update it cannot make, and nothing changes.  This module is pure: the metadata
implementations (kavka.metadata.local, kavka.cluster.metadata) keep the levels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Mapping, Sequence

METADATA_VERSION = "metadata.version"
GROUP_VERSION = "group.version"
TRANSACTION_VERSION = "transaction.version"


@dataclass(frozen=True)
class SupportedRange:
    min_level: int
    max_level: int

    def __contains__(self, level: int) -> bool:
        return self.min_level <= level <= self.max_level

    def __str__(self) -> str:   # as Kafka's VersionRange prints itself
        if self.min_level == self.max_level:
            return str(self.min_level)
        return f"{self.min_level}-{self.max_level}"


SUPPORTED: dict[str, SupportedRange] = {
    METADATA_VERSION: SupportedRange(7, 25),
    "kraft.version": SupportedRange(0, 0),
    GROUP_VERSION: SupportedRange(0, 1),
    TRANSACTION_VERSION: SupportedRange(0, 2),
    "eligible.leader.replicas.version": SupportedRange(0, 0),
    "share.version": SupportedRange(0, 0),
    "streams.version": SupportedRange(0, 0),
}

# metadata.version level -> (Kafka's release-version name, whether that level changed the
# metadata's format: a downgrade across such a level is refused, as Kafka refuses it).
METADATA_VERSIONS: dict[int, tuple[str, bool]] = {
    7: ("3.3-IV3", True), 8: ("3.4-IV0", True), 9: ("3.5-IV0", False), 10: ("3.5-IV1", False),
    11: ("3.5-IV2", True), 12: ("3.6-IV0", False), 13: ("3.6-IV1", True), 14: ("3.6-IV2", True),
    15: ("3.7-IV0", True), 16: ("3.7-IV1", False), 17: ("3.7-IV2", True), 18: ("3.7-IV3", False),
    19: ("3.7-IV4", False), 20: ("3.8-IV0", False), 21: ("3.9-IV0", False), 22: ("4.0-IV0", False),
    23: ("4.0-IV1", True), 24: ("4.0-IV2", False), 25: ("4.0-IV3", False),
}

DEFAULT_LEVELS: dict[str, int] = {METADATA_VERSION: 25, GROUP_VERSION: 1, TRANSACTION_VERSION: 2}


class UpgradeType(IntEnum):
    """FeatureUpdate.UpgradeType; UpdateFeatures v0's allow_downgrade means SAFE_DOWNGRADE."""
    UNKNOWN = 0
    UPGRADE = 1
    SAFE_DOWNGRADE = 2
    UNSAFE_DOWNGRADE = 3

    @classmethod
    def of(cls, code: int) -> "UpgradeType":
        return cls(code) if code in cls._value2member_map_ else cls.UNKNOWN


@dataclass(frozen=True)
class FeatureUpdate:
    feature: str
    level: int
    upgrade_type: UpgradeType = UpgradeType.UPGRADE


class InvalidUpdateVersion(ValueError):
    """An update the cluster cannot make (Kafka's INVALID_UPDATE_VERSION)."""


@dataclass(frozen=True)
class FinalizedFeatures:
    """The finalized levels (only those above 0) and the epoch of the last change."""
    levels: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_LEVELS))
    epoch: int = 0

    def level(self, feature: str) -> int:
        return self.levels.get(feature, 0)

    def encode(self) -> bytes:
        return json.dumps({"epoch": self.epoch, "levels": dict(self.levels)},
                          sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, raw: bytes) -> "FinalizedFeatures":
        """Raises ValueError for anything but what :meth:`encode` writes."""
        try:
            o = json.loads(raw)
            levels = {str(k): int(v) for k, v in o["levels"].items()}
            return cls(levels, int(o["epoch"]))
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"undecodable finalized features: {raw[:80]!r}") from exc


def apply_updates(current: FinalizedFeatures, updates: Sequence[FeatureUpdate],
                  node_id: int) -> FinalizedFeatures:
    """The finalized features after ``updates`` (a later update of the same feature wins, as
    in Kafka's keyed request collection), at the next epoch; raises InvalidUpdateVersion for
    the first one refused.  Unchanged levels keep the current epoch."""
    levels = dict(current.levels)
    for u in {u.feature: u for u in updates}.values():
        _check(u, current.level(u.feature), node_id)
        if u.level > 0:
            levels[u.feature] = u.level
        else:
            levels.pop(u.feature, None)
    if levels == dict(current.levels):
        return current   # nothing changes: no new epoch
    return FinalizedFeatures(levels, current.epoch + 1)


def _check(u: FeatureUpdate, current: int, node_id: int) -> None:
    def refuse(reason: str) -> InvalidUpdateVersion:
        return InvalidUpdateVersion(f"Invalid update version {u.level} for feature {u.feature}. {reason}")

    if u.upgrade_type == UpgradeType.UNKNOWN:
        raise refuse("The controller does not support the given upgrade type.")
    if u.level < 0:
        raise refuse("A feature version cannot be less than 0.")
    supported = SUPPORTED.get(u.feature, SupportedRange(0, 0))
    if u.level not in supported:
        what = f"Local controller {node_id}"
        raise refuse(f"{what} does not support this feature." if supported.max_level == 0
                     else f"{what} only supports versions {supported}")
    if u.level < current and u.upgrade_type == UpgradeType.UPGRADE:
        raise refuse("Can't downgrade the version of this feature without setting the "
                     "upgrade type to either safe or unsafe downgrade.")
    if u.level > current and u.upgrade_type != UpgradeType.UPGRADE:
        raise refuse("Can't downgrade to a newer version.")
    if u.feature == METADATA_VERSION and u.level < current:
        _check_metadata_downgrade(u, current)


def _check_metadata_downgrade(u: FeatureUpdate, current: int) -> None:
    changed = any(METADATA_VERSIONS[level][1] for level in range(u.level + 1, current + 1))
    if not changed:
        return
    if u.upgrade_type == UpgradeType.UNSAFE_DOWNGRADE:
        reason = "Unsafe metadata downgrade is not supported in this version."
    else:
        reason = "Refusing to perform the requested downgrade because it might delete metadata information."
    raise InvalidUpdateVersion(f"Invalid metadata.version {u.level}. {reason}")
