"""The cluster metadata as a broker last saw it: sans-I/O, no etcd client.

A watcher (``watch.py``) turns etcd's range reads and watch events into, in revision order,

1. a ``Snapshot`` of every key of the cluster at some revision R, then
2. a ``Change`` for every put or delete after R.

``ClusterView.apply`` folds them into dictionaries that the broker (Metadata, fetcher,
controller) reads.  A snapshot means "replace everything": the watcher yields a fresh one
when etcd has compacted the history it would have resumed from.  This module imports no
etcd client (``aetcd``), so the view, the key decoding and everything built on them are
unit-tested without etcd and load without the ``cluster`` extra.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from .keys import KeyLayout, KeyRef
from kavka.metadata.features import FinalizedFeatures
from kavka.security.acl import AclBinding, AclSet
from kavka.security.credentials import ScramCredentialSet, decode_credential
from kavka.security.quota import ClientQuotas, entity_from_key

from .model import (BrokerConfigs, BrokerInfo, ControllerInfo, DecodeError, GroupConfigs, PartitionState, TopicAssignment,
                    Versioned, decode_epoch, decode_features)

log = logging.getLogger(__name__)

_DECODERS: dict[str, Any] = {
    "broker": BrokerInfo.decode,
    "controller": ControllerInfo.decode,
    "controller_epoch": decode_epoch,
    "topic": TopicAssignment.decode,
    "partition": PartitionState.decode,
    "broker_config": BrokerConfigs.decode,
    "group_config": GroupConfigs.decode,
    "features": decode_features,
    "acl": lambda raw: _decode_acl(raw),
    "client_quota": lambda raw: _decode_quota(raw),
}


@dataclass(frozen=True)
class Change:
    """One key put (``value`` decoded) or deleted (``value`` None) at ``revision``."""

    ref: KeyRef
    value: Any
    revision: int
    create_revision: int = 0

    @property
    def deleted(self) -> bool:
        return self.value is None


@dataclass(frozen=True)
class Snapshot:
    """Every key of the cluster at ``revision``, as puts."""

    revision: int
    entries: tuple[Change, ...]


def decode_change(layout: KeyLayout, key: bytes, value: bytes | None, mod_revision: int,
                  create_revision: int = 0) -> Change | None:
    """A Change for one key, or None if the key is not ours or its value is unreadable."""
    ref = layout.parse(key)
    if ref is None:
        return None
    if value is None:
        return Change(ref, None, mod_revision, create_revision)
    try:
        decoded = (_decode_scram(value, ref.mechanism) if ref.kind == "scram_credential"
                   else _DECODERS[ref.kind](value))
        return Change(ref, decoded, mod_revision, create_revision)
    except DecodeError as exc:
        log.warning("ignoring undecodable %r: %s", key, exc)
        return None


@dataclass
class ClusterView:
    """The cluster metadata as last seen; ``apply`` each watcher item in order."""

    brokers: dict[int, Versioned[BrokerInfo]] = field(default_factory=dict)
    controller: Versioned[ControllerInfo] | None = None
    controller_epoch: int = 0
    topics: dict[str, Versioned[TopicAssignment]] = field(default_factory=dict)
    partitions: dict[tuple[str, int], Versioned[PartitionState]] = field(default_factory=dict)
    broker_configs: dict[int | None, Versioned[BrokerConfigs]] = field(default_factory=dict)  # None: defaults
    features: Versioned[FinalizedFeatures] | None = None   # None: the format-time defaults
    group_configs: dict[str, Versioned[GroupConfigs]] = field(default_factory=dict)
    acl_bindings: dict[str, Versioned[AclBinding]] = field(default_factory=dict)   # by their JSON
    quota_values: dict[str, Versioned[dict]] = field(default_factory=dict)   # by entity key
    scram_values: dict[tuple[str, str], Versioned] = field(default_factory=dict)  # (user, mechanism) -> credential
    revision: int = 0
    _quotas: ClientQuotas | None = None   # quota_values folded, rebuilt after a change to them
    _acl_set: AclSet | None = None   # acl_bindings indexed, rebuilt after a change to them
    _scram: ScramCredentialSet | None = None   # scram_values as a set, rebuilt after a change to them

    @property
    def acls(self) -> AclSet:
        if self._acl_set is None:
            self._acl_set = AclSet((v.value for v in self.acl_bindings.values()), loaded=self.revision > 0)
        return self._acl_set

    @property
    def client_quotas(self) -> ClientQuotas:
        if self._quotas is None:
            self._quotas = ClientQuotas({entity_from_key(k): v.value for k, v in self.quota_values.items()})
        return self._quotas

    @property
    def scram_credentials(self) -> ScramCredentialSet:
        if self._scram is None:
            self._scram = ScramCredentialSet({k: v.value for k, v in self.scram_values.items()},
                                             loaded=self.revision > 0)
        return self._scram

    def apply(self, item: Snapshot | Change) -> None:
        if isinstance(item, Snapshot):
            self.__init__()  # type: ignore[misc]
            for change in item.entries:
                self._apply_change(change)
            self.revision = item.revision
            self._acl_set = self._scram = None   # now loaded
        else:
            self._apply_change(item)
            self.revision = max(self.revision, item.revision)

    def _apply_change(self, c: Change) -> None:
        ref = c.ref
        versioned = None if c.deleted else Versioned(c.value, c.revision, c.create_revision)
        if ref.kind == "broker":
            _set(self.brokers, ref.broker_id, versioned)
        elif ref.kind == "topic":
            _set(self.topics, ref.topic, versioned)
        elif ref.kind == "partition":
            _set(self.partitions, (ref.topic, ref.partition), versioned)
        elif ref.kind == "broker_config":
            _set(self.broker_configs, ref.broker_id, versioned)
        elif ref.kind == "group_config":
            _set(self.group_configs, ref.group, versioned)
        elif ref.kind == "acl":
            _set(self.acl_bindings, ref.acl, versioned)
            self._acl_set = None
        elif ref.kind == "client_quota":
            _set(self.quota_values, ref.quota, versioned)
            self._quotas = None
        elif ref.kind == "scram_credential":
            _set(self.scram_values, (ref.user, ref.mechanism), versioned)
            self._scram = None
        elif ref.kind == "controller":
            self.controller = versioned
        elif ref.kind == "features":
            self.features = versioned
        elif ref.kind == "controller_epoch" and not c.deleted:
            self.controller_epoch = c.value


def _decode_acl(raw: bytes) -> AclBinding:
    try:
        return AclBinding.from_json(raw)
    except (ValueError, KeyError, TypeError) as exc:
        raise DecodeError(f"ACL binding: {exc!r} in {raw[:80]!r}") from exc


def _decode_quota(raw: bytes) -> dict:
    try:
        values = json.loads(raw)
        return {str(k): float(v) for k, v in values.items()}
    except (ValueError, AttributeError, TypeError) as exc:
        raise DecodeError(f"client quota: {exc!r} in {raw[:80]!r}") from exc


def _decode_scram(raw: bytes, mechanism: str):
    try:
        return decode_credential(raw, mechanism)
    except ValueError as exc:
        raise DecodeError(f"SCRAM credential: {exc}") from exc


def _set(table: dict[Any, Any], key: Any, value: Any) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value
