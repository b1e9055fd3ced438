"""Records of the internal topic ``__consumer_offsets``: keys, values, partitioning.

Theory of operation
-------------------
Every durable change of group state is one record; the latest record of a key
is the current state, so the topic is compacted and a ``None`` value
(tombstone) deletes.  The layout follows Kafka's own schemas (not required, but
it costs nothing and lets Kafka's tools read our topic).  Big-endian; strings
are i16 length + UTF-8 (-1 = null); bytes are i32 length + data::

    key, offset commit   i16 version=1 | group str | topic str | partition i32
    key, group metadata  i16 version=2 | group str
    value, offset        i16 version=3 | offset i64 | leader_epoch i32 | metadata str
                         | commit_timestamp i64
    value, group         i16 version=3 | protocol_type str | generation i32
                         | protocol str? | leader str? | current_state_timestamp i64
                         | member count i32, then per member:
                           member_id str | group_instance_id str? | client_id str
                           | client_host str | rebalance_timeout i32 | session_timeout i32
                           | subscription bytes | assignment bytes

Groups of the consumer protocol (KIP-848) use two more keys, with Kafka's key
versions and layouts; their values are kavka's own (version 0), since Kafka
spreads the same facts over six record types::

    key, consumer group  i16 version=3 | group str
    key, group member    i16 version=5 | group str | member str
    value, group         i16 version=0 | group_epoch i32 | assignment_epoch i32
                         | assignor str | subscribed topics (topic str, partitions i32)[]
                         | target (member str, assignment)[]
    value, member        i16 version=0 | instance_id str? | rack_id str? | client_id str
                         | client_host str | rebalance_timeout i32 | server_assignor str?
                         | topics str[] | regex str? | member_epoch i32 | previous_epoch i32
                         | state i8 | assigned assignment | revoking assignment
    assignment           (topic str, partitions i32[])[]; arrays are i32 count + items

A group's records all go to one partition, ``abs(java_hash(group_id)) % n``
with Java's ``String.hashCode`` as Kafka computes it, so the mapping is the
one Kafka would choose and never changes between runs (Python's ``hash`` of a
str is salted per process).  Records whose key version we do not know are
skipped at load: a newer broker may add record types.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Union

from kavka.internal_topics import coordinator_partition as partition_for  # noqa: F401 (the group's partition)

OFFSET_KEY_VERSIONS = (0, 1)
GROUP_KEY_VERSION = 2
OFFSET_VALUE_VERSION = 3
GROUP_VALUE_VERSION = 3

CONSUMER_GROUP_KEY_VERSION = 3
CONSUMER_MEMBER_KEY_VERSION = 5
CONSUMER_VALUE_VERSION = 0

_I8, _I16, _I32, _I64 = struct.Struct(">b"), struct.Struct(">h"), struct.Struct(">i"), struct.Struct(">q")

# An assignment in canonical form: topics sorted, partitions sorted, no empty topic.
Assignment = tuple[tuple[str, tuple[int, ...]], ...]


@dataclass(frozen=True, slots=True)
class OffsetKey:
    group: str
    topic: str
    partition: int


@dataclass(frozen=True, slots=True)
class GroupKey:
    group: str


@dataclass(frozen=True, slots=True)
class OffsetValue:
    offset: int
    leader_epoch: int
    metadata: str
    commit_timestamp: int


@dataclass(frozen=True, slots=True)
class MemberValue:
    member_id: str
    instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True, slots=True)
class GroupValue:
    protocol_type: str
    generation: int
    protocol: str | None
    leader: str | None
    state_timestamp: int
    members: tuple[MemberValue, ...]


@dataclass(frozen=True, slots=True)
class ConsumerGroupKey:
    group: str


@dataclass(frozen=True, slots=True)
class ConsumerMemberKey:
    group: str
    member_id: str


@dataclass(frozen=True, slots=True)
class ConsumerGroupValue:
    group_epoch: int
    assignment_epoch: int
    assignor: str
    subscribed: tuple[tuple[str, int], ...]        # topic -> partition count at the last assignment
    target: tuple[tuple[str, Assignment], ...]     # member -> target assignment


@dataclass(frozen=True, slots=True)
class ConsumerMemberValue:
    instance_id: str | None
    rack_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    server_assignor: str | None
    topics: tuple[str, ...]
    regex: str | None
    member_epoch: int
    previous_epoch: int
    state: int
    assigned: Assignment
    revoking: Assignment


Key = Union[OffsetKey, GroupKey, ConsumerGroupKey, ConsumerMemberKey]
Value = Union[OffsetValue, GroupValue, ConsumerGroupValue, ConsumerMemberValue, None]


class UnknownRecord(ValueError):
    """A key version this broker does not know (written by a newer one)."""


# -- encoding --------------------------------------------------------------------------------

def _str(text: str | None) -> bytes:
    if text is None:
        return _I16.pack(-1)
    data = text.encode("utf-8")
    return _I16.pack(len(data)) + data


def _bytes(data: bytes | None) -> bytes:
    if data is None:
        return _I32.pack(-1)
    return _I32.pack(len(data)) + bytes(data)


def _array(items, encode) -> bytes:
    return _I32.pack(len(items)) + b"".join(encode(item) for item in items)


def _assignment(assignment: Assignment) -> bytes:
    return _array(assignment, lambda tp: _str(tp[0]) + _array(tp[1], _I32.pack))


def encode_key(key: Key) -> bytes:
    if isinstance(key, OffsetKey):
        return _I16.pack(1) + _str(key.group) + _str(key.topic) + _I32.pack(key.partition)
    if isinstance(key, ConsumerGroupKey):
        return _I16.pack(CONSUMER_GROUP_KEY_VERSION) + _str(key.group)
    if isinstance(key, ConsumerMemberKey):
        return _I16.pack(CONSUMER_MEMBER_KEY_VERSION) + _str(key.group) + _str(key.member_id)
    return _I16.pack(GROUP_KEY_VERSION) + _str(key.group)


def encode_value(value: Value) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, OffsetValue):
        return (_I16.pack(OFFSET_VALUE_VERSION) + _I64.pack(value.offset) + _I32.pack(value.leader_epoch)
                + _str(value.metadata) + _I64.pack(value.commit_timestamp))
    if isinstance(value, ConsumerGroupValue):
        return b"".join((
            _I16.pack(CONSUMER_VALUE_VERSION), _I32.pack(value.group_epoch), _I32.pack(value.assignment_epoch),
            _str(value.assignor), _array(value.subscribed, lambda tc: _str(tc[0]) + _I32.pack(tc[1])),
            _array(value.target, lambda ma: _str(ma[0]) + _assignment(ma[1]))))
    if isinstance(value, ConsumerMemberValue):
        return b"".join((
            _I16.pack(CONSUMER_VALUE_VERSION), _str(value.instance_id), _str(value.rack_id),
            _str(value.client_id), _str(value.client_host), _I32.pack(value.rebalance_timeout_ms),
            _str(value.server_assignor), _array(value.topics, _str), _str(value.regex),
            _I32.pack(value.member_epoch), _I32.pack(value.previous_epoch), _I8.pack(value.state),
            _assignment(value.assigned), _assignment(value.revoking)))
    parts = [_I16.pack(GROUP_VALUE_VERSION), _str(value.protocol_type), _I32.pack(value.generation),
             _str(value.protocol), _str(value.leader), _I64.pack(value.state_timestamp),
             _I32.pack(len(value.members))]
    for m in value.members:
        parts += (_str(m.member_id), _str(m.instance_id), _str(m.client_id), _str(m.client_host),
                  _I32.pack(m.rebalance_timeout_ms), _I32.pack(m.session_timeout_ms),
                  _bytes(m.subscription), _bytes(m.assignment))
    return b"".join(parts)


# -- decoding --------------------------------------------------------------------------------

class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def _take(self, fmt: struct.Struct) -> int:
        (value,) = fmt.unpack_from(self.data, self.pos)
        self.pos += fmt.size
        return value

    def i8(self) -> int:
        return self._take(_I8)

    def i16(self) -> int:
        return self._take(_I16)

    def i32(self) -> int:
        return self._take(_I32)

    def i64(self) -> int:
        return self._take(_I64)

    def str(self) -> str | None:
        n = self.i16()
        if n < 0:
            return None
        self.pos += n
        return self.data[self.pos - n : self.pos].decode("utf-8")

    def bytes(self) -> bytes:
        n = self.i32()
        if n < 0:
            return b""
        self.pos += n
        return bytes(self.data[self.pos - n : self.pos])

    def array(self, read) -> tuple:
        n = self.i32()
        if n < 0 or n > len(self.data) - self.pos:
            raise UnknownRecord(f"bad array length {n}")
        return tuple(read() for _ in range(n))

    def assignment(self) -> Assignment:
        return self.array(lambda: (self.str(), self.array(self.i32)))


def decode_key(data: bytes) -> Key:
    r = _Reader(data)
    version = r.i16()
    if version in OFFSET_KEY_VERSIONS:
        return OffsetKey(r.str(), r.str(), r.i32())
    if version == GROUP_KEY_VERSION:
        return GroupKey(r.str())
    if version == CONSUMER_GROUP_KEY_VERSION:
        return ConsumerGroupKey(r.str())
    if version == CONSUMER_MEMBER_KEY_VERSION:
        return ConsumerMemberKey(r.str(), r.str())
    raise UnknownRecord(f"unknown __consumer_offsets key version {version}")


def decode_value(key: Key, data: bytes | None) -> Value:
    if data is None:
        return None
    r = _Reader(data)
    version = r.i16()
    if isinstance(key, OffsetKey):
        if version != OFFSET_VALUE_VERSION:
            raise UnknownRecord(f"offset value version {version} is not supported")
        return OffsetValue(r.i64(), r.i32(), r.str() or "", r.i64())
    if isinstance(key, (ConsumerGroupKey, ConsumerMemberKey)):
        if version != CONSUMER_VALUE_VERSION:
            raise UnknownRecord(f"consumer group value version {version} is not supported")
        if isinstance(key, ConsumerGroupKey):
            return ConsumerGroupValue(r.i32(), r.i32(), r.str() or "", r.array(lambda: (r.str(), r.i32())),
                                      r.array(lambda: (r.str(), r.assignment())))
        return ConsumerMemberValue(r.str(), r.str(), r.str() or "", r.str() or "", r.i32(), r.str(),
                                   r.array(r.str), r.str(), r.i32(), r.i32(), r.i8(), r.assignment(),
                                   r.assignment())
    if version != GROUP_VALUE_VERSION:
        raise UnknownRecord(f"group metadata value version {version} is not supported")
    head = (r.str() or "", r.i32(), r.str(), r.str(), r.i64())
    members = tuple(MemberValue(r.str(), r.str(), r.str() or "", r.str() or "", r.i32(), r.i32(),
                                r.bytes(), r.bytes()) for _ in range(r.i32()))
    return GroupValue(*head, members)
