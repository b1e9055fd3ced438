"""Just enough of the consumer protocol's Subscription to know a group's topics
(and of its Assignment, for tools that show who owns which partition).

Members of ``protocol_type="consumer"`` groups send, as protocol metadata, a
ConsumerProtocolSubscription (non-flexible in every version)::

    version i16 | topics: count i32, then i16-length UTF-8 names | user_data ... (ignored)

The broker needs the topics for OffsetDelete (GROUP_SUBSCRIBED_TO_TOPIC) and for
expiring offsets of topics a stable group no longer consumes.  Anything that
does not parse means "unknown", never an error: the metadata is the client's.
"""

from __future__ import annotations

import struct

_I16, _I32 = struct.Struct(">h"), struct.Struct(">i")


def subscribed_topics(metadata: bytes) -> set[str] | None:
    try:
        (version,) = _I16.unpack_from(metadata, 0)
        (count,) = _I32.unpack_from(metadata, 2)
        if version < 0 or count < 0 or count > len(metadata):
            return None
        pos, topics = 6, set()
        for _ in range(count):
            (size,) = _I16.unpack_from(metadata, pos)
            if size < 0 or pos + 2 + size > len(metadata):
                return None
            topics.add(metadata[pos + 2 : pos + 2 + size].decode("utf-8"))
            pos += 2 + size
        return topics
    except (struct.error, UnicodeDecodeError):
        return None


def assigned_partitions(assignment: bytes) -> dict[str, list[int]] | None:
    """The partitions in a ConsumerProtocolAssignment, by topic (for tools that show them).

    Layout (non-flexible in every version)::

        version i16 | partitions: count i32, then (i16-length topic, count i32, i32 each) | user_data ...

    Empty bytes (a member of a group that is not Stable) mean no assignment: ``{}``.
    Anything that does not parse gives None.
    """
    if not assignment:
        return {}
    try:
        (version,) = _I16.unpack_from(assignment, 0)
        (count,) = _I32.unpack_from(assignment, 2)
        if version < 0 or count < 0 or count > len(assignment):
            return None
        pos, topics = 6, {}
        for _ in range(count):
            (size,) = _I16.unpack_from(assignment, pos)
            if size < 0 or pos + 2 + size > len(assignment):
                return None
            topic = assignment[pos + 2 : pos + 2 + size].decode("utf-8")
            pos += 2 + size
            (n,) = _I32.unpack_from(assignment, pos)
            if n < 0 or pos + 4 + 4 * n > len(assignment):
                return None
            partitions = struct.unpack_from(f">{n}i", assignment, pos + 4)
            pos += 4 + 4 * n
            topics.setdefault(topic, []).extend(partitions)
        return {topic: sorted(partitions) for topic, partitions in topics.items()}
    except (struct.error, UnicodeDecodeError):
        return None
