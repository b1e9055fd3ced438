"""Reading cluster metadata, and the guarded writes that change it.

Write rules (each one etcd transaction; nothing is read-modify-written outside a txn):

* **Controller writes** (topics, partition states) compare
  ``value(controller_epoch) == claim.epoch`` and
  ``create_revision(controller) == claim.create_revision``, plus the target key's
  ``mod_revision`` the writer last read (0 = "must not exist"). A deposed controller fails the
  first (a newer epoch exists) or the second (its lease lapsed, even before a successor won),
  and raises ``StaleControllerEpoch`` or ``ControllerFenced``; a lost race with another write
  to the same key raises ``ConcurrentUpdate`` carrying the key's current value.
* **Feature writes** (UpdateFeatures, from any broker) compare the ``features`` key's
  ``mod_revision`` the writer read (0 = none yet): two concurrent updates cannot both apply
  to the same levels; the loser raises ``ConcurrentUpdate`` and decides again.
* **Leader writes** (ISR shrink/expand, as Kafka leaders did with ZooKeeper) compare the
  partition key's ``mod_revision`` and ``create_revision(brokers/<leader>) == broker epoch``:
  a leader whose registration expired (cut off from etcd) cannot change the ISR, and any
  controller decision in between (new leader, new epoch) moves the mod revision.

Every partition state written by the controller carries the controller's epoch, so a broker
can also ignore states written by an older controller it hears about late.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from .errors import (ConcurrentUpdate, ControllerFenced, NotLeader, SessionLost,
                     StaleControllerEpoch)
from kavka.metadata.features import FinalizedFeatures

from .etcd_client import Etcd
from .keys import KeyLayout, prefix_end
from .model import (BrokerInfo, ControllerClaim, ControllerInfo, DecodeError, PartitionState,
                    TopicAssignment, Versioned, decode_epoch, decode_features, encode_epoch)
from .session import BrokerSession

log = logging.getLogger(__name__)


def _versioned(kv: Any, decode: Any) -> Versioned[Any]:
    return Versioned(decode(kv.value), kv.mod_revision, kv.create_revision)


class ClusterStore:
    def __init__(self, etcd: Etcd, layout: KeyLayout) -> None:
        self.etcd = etcd
        self.layout = layout

    # -- reads ---------------------------------------------------------------------------
    async def controller(self) -> Versioned[ControllerInfo] | None:
        kv = await self.etcd.get(self.layout.controller())
        return None if kv is None else _versioned(kv, ControllerInfo.decode)

    async def controller_epoch(self) -> int:
        kv = await self.etcd.get(self.layout.controller_epoch())
        return decode_epoch(None if kv is None else kv.value)

    async def write_features(self, features: FinalizedFeatures, expected_mod_revision: int) -> int:
        """Replace the finalized features read at ``expected_mod_revision`` (0: none yet)."""
        key = self.layout.features()
        tx = self.etcd.tx
        ok, responses = await self.etcd.txn([tx.mod(key) == expected_mod_revision],
                                            [tx.put(key, features.encode())], [tx.get(key)])
        if ok:
            return txn_revision(responses[0])
        current = _first(responses[0])
        raise ConcurrentUpdate(key, expected_mod_revision,
                               None if current is None else _versioned(current, decode_features))

    async def brokers(self) -> dict[int, Versioned[BrokerInfo]]:
        found = await self._prefix(self.layout.brokers_prefix(), BrokerInfo.decode)
        return {v.value.broker_id: v for v in found}

    async def topic(self, name: str) -> Versioned[TopicAssignment] | None:
        kv = await self.etcd.get(self.layout.topic(name))
        return None if kv is None else _versioned(kv, TopicAssignment.decode)

    async def topics(self) -> dict[str, Versioned[TopicAssignment]]:
        found = await self._prefix(self.layout.topics_prefix(), TopicAssignment.decode)
        return {v.value.name: v for v in found}

    async def partition(self, topic: str, partition: int) -> Versioned[PartitionState] | None:
        kv = await self.etcd.get(self.layout.partition(topic, partition))
        return None if kv is None else _versioned(kv, PartitionState.decode)

    async def partitions(self, topic: str) -> dict[int, Versioned[PartitionState]]:
        result = await self.etcd.get_prefix(self.layout.partitions_prefix(topic))
        out = {}
        for kv in result.kvs:
            ref = self.layout.parse(kv.key)
            if ref is not None and ref.partition is not None:
                out[ref.partition] = _versioned(kv, PartitionState.decode)
        return out

    async def _prefix(self, prefix: bytes, decode: Any) -> list[Versioned[Any]]:
        result = await self.etcd.get_prefix(prefix)
        out = []
        for kv in result.kvs:
            try:
                out.append(_versioned(kv, decode))
            except DecodeError as exc:
                log.warning("skipping %r: %s", kv.key, exc)
        return out

    # -- controller writes ---------------------------------------------------------------
    async def create_topic(self, claim: ControllerClaim, topic: TopicAssignment,
                           states: dict[int, PartitionState]) -> int:
        """Create a topic and its partitions' initial states at once; the revision written.

        One transaction, so at most etcd's ``--max-txn-ops`` (128 by default; the bundled
        dev server raises it) minus one partitions."""
        key = self.layout.topic(topic.name)
        tx = self.etcd.tx
        puts = [tx.put(key, topic.encode())]
        compares = [tx.create(key) == 0]
        for p, state in sorted(states.items()):
            pkey = self.layout.partition(topic.name, p)
            compares.append(tx.create(pkey) == 0)
            puts.append(tx.put(pkey, _stamped(state, claim).encode()))
        return await self._guarded(claim, key, 0, compares, puts)

    async def write_topic(self, claim: ControllerClaim, topic: TopicAssignment, expected_mod_revision: int) -> int:
        """Replace a topic's assignment (e.g. its configs) if unchanged since ``expected_mod_revision``."""
        key = self.layout.topic(topic.name)
        tx = self.etcd.tx
        return await self._guarded(claim, key, expected_mod_revision, [tx.mod(key) == expected_mod_revision],
                                   [tx.put(key, topic.encode())])

    async def add_partitions(self, claim: ControllerClaim, topic: TopicAssignment, expected_mod_revision: int,
                             states: dict[int, PartitionState]) -> int:
        """Replace a topic's assignment with one that has more partitions, and create their
        states, if the topic is unchanged since ``expected_mod_revision``."""
        key = self.layout.topic(topic.name)
        tx = self.etcd.tx
        compares = [tx.mod(key) == expected_mod_revision]
        puts = [tx.put(key, topic.encode())]
        for p, state in sorted(states.items()):
            pkey = self.layout.partition(topic.name, p)
            compares.append(tx.create(pkey) == 0)
            puts.append(tx.put(pkey, _stamped(state, claim).encode()))
        return await self._guarded(claim, key, expected_mod_revision, compares, puts)

    async def write_topic_and_partitions(self, claim: ControllerClaim, topic: TopicAssignment,
                                         expected_mod_revision: int,
                                         states: dict[int, tuple[PartitionState, int]]) -> int:
        """Replace a topic's assignment and some of its partitions' states at once (a
        reassignment completing or cancelled), each ``(state, expected mod revision)``."""
        key = self.layout.topic(topic.name)
        tx = self.etcd.tx
        compares = [tx.mod(key) == expected_mod_revision]
        puts = [tx.put(key, topic.encode())]
        for p, (state, expected) in sorted(states.items()):
            pkey = self.layout.partition(topic.name, p)
            compares.append(tx.mod(pkey) == expected)
            puts.append(tx.put(pkey, _stamped(state, claim).encode()))
        return await self._guarded(claim, key, expected_mod_revision, compares, puts)

    async def write_partition(self, claim: ControllerClaim, topic: str, partition: int,
                              state: PartitionState, expected_mod_revision: int) -> int:
        """Replace a partition's state if unchanged since ``expected_mod_revision`` (0: new)."""
        key = self.layout.partition(topic, partition)
        tx = self.etcd.tx
        return await self._guarded(claim, key, expected_mod_revision,
                                   [tx.mod(key) == expected_mod_revision],
                                   [tx.put(key, _stamped(state, claim).encode())])

    async def delete_topic(self, claim: ControllerClaim, name: str,
                           expected_mod_revision: int) -> int:
        key = self.layout.topic(name)
        tx = self.etcd.tx
        prefix = self.layout.partitions_prefix(name)
        return await self._guarded(claim, key, expected_mod_revision,
                                   [tx.mod(key) == expected_mod_revision],
                                   [tx.delete(key), tx.delete(prefix, prefix_end(prefix))])

    async def _guarded(self, claim: ControllerClaim, key: bytes, expected: int,
                       compares: list[Any], ops: list[Any]) -> int:
        tx = self.etcd.tx
        epoch_key, ctl_key = self.layout.controller_epoch(), self.layout.controller()
        fence = [tx.value(epoch_key) == encode_epoch(claim.epoch),
                 tx.create(ctl_key) == claim.create_revision]
        ok, responses = await self.etcd.txn(
            fence + compares, ops, [tx.get(epoch_key), tx.get(ctl_key), tx.get(key)])
        if ok:
            return txn_revision(responses[0])
        epoch_kv, ctl_kv, key_kv = (_first(r) for r in responses)
        current = decode_epoch(None if epoch_kv is None else epoch_kv.value)
        if current != claim.epoch:
            raise StaleControllerEpoch(claim.epoch, current)
        if ctl_kv is None or ctl_kv.create_revision != claim.create_revision:
            raise ControllerFenced(f"controller epoch {claim.epoch} of broker "
                                   f"{claim.broker_id} no longer holds the controller key")
        raise ConcurrentUpdate(key, expected, None if key_kv is None else
                               _versioned(key_kv, self._decoder(key)))

    def _decoder(self, key: bytes) -> Any:
        ref = self.layout.parse(key)
        kind = None if ref is None else ref.kind
        return {"topic": TopicAssignment.decode,
                "partition": PartitionState.decode}.get(kind, bytes)

    # -- leader writes -------------------------------------------------------------------
    async def leader_update_isr(self, session: BrokerSession, topic: str, partition: int,
                                current: Versioned[PartitionState], isr: list[int]) -> int:
        """The partition's leader replaces the ISR of the state it read (``current``)."""
        me = session.info.broker_id
        if current.value.leader != me:
            raise NotLeader(f"broker {me} is not leader of {topic}-{partition}")
        if me not in isr:
            raise ValueError("a leader cannot remove itself from the ISR")
        session.check()
        key = self.layout.partition(topic, partition)
        state = dataclasses.replace(current.value, isr=tuple(isr))
        tx = self.etcd.tx
        ok, responses = await self.etcd.txn(
            [tx.create(session.key) == session.broker_epoch,
             tx.mod(key) == current.mod_revision],
            [tx.put(key, state.encode())],
            [tx.get(session.key), tx.get(key)])
        if ok:
            return txn_revision(responses[0])
        reg_kv, key_kv = (_first(r) for r in responses)
        if reg_kv is None or reg_kv.create_revision != session.broker_epoch:
            raise SessionLost(f"broker {me}'s registration (epoch "
                              f"{session.broker_epoch}) is gone")
        raise ConcurrentUpdate(key, current.mod_revision, None if key_kv is None else
                               _versioned(key_kv, PartitionState.decode))


def _stamped(state: PartitionState, claim: ControllerClaim) -> PartitionState:
    return dataclasses.replace(state, controller_epoch=claim.epoch)


def txn_revision(put_response: Any) -> int:
    """Store revision of a successful txn, from its first op's response header."""
    for field in ("response_put", "response_delete_range"):
        if put_response.HasField(field):
            return int(getattr(put_response, field).header.revision)
    raise ValueError("no revision in txn response")


def _first(range_result: list[Any]) -> Any:
    """aetcd returns a txn's get as a list of (value, Get); the Get or None."""
    return range_result[0][1] if range_result else None
