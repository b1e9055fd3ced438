"""schema_walk: the bounds walk that runs before kio, and the tolerant reader."""

import struct
import subprocess
from dataclasses import replace
import sys

import pytest
from kio.static.constants import EntityType
from protocol_samples import augmented_sample, message_classes, sample

from kavka.protocol import messages as m
from kavka.protocol.errors import InvalidRequest
from kavka.protocol.schema_walk import check_bounds, tolerant_reader

CLASSES = [cls for t in (EntityType.request, EntityType.response) for _, _, cls in message_classes(t)]


@pytest.mark.parametrize("with_nulls", [False, True])
def test_walks_exactly_to_the_end_of_every_message(with_nulls):
    for cls in CLASSES:
        body = m.encode_request(sample(cls, with_nulls))
        assert check_bounds(cls, body, 0) == len(body), cls
        assert check_bounds(cls, b"pre" + body, 3) == len(body) + 3, cls


def test_walks_over_unknown_tags():
    for cls in CLASSES:
        if cls.__flexible__:
            body = m.encode_request(augmented_sample(cls))
            assert check_bounds(cls, body, 0) == len(body), cls


@pytest.mark.parametrize("with_nulls", [False, True])
def test_tolerant_reader_matches_kio_on_every_message(with_nulls):
    for cls in CLASSES:
        obj = sample(cls, with_nulls)
        body = m.encode_request(obj)
        assert tolerant_reader(cls)(body, 0) == (obj, len(body)), cls


@pytest.mark.parametrize("api_key, version", [(0, 9), (0, 3), (3, 12), (3, 1), (1, 15), (1, 4), (11, 7)])
def test_every_strict_prefix_is_refused(api_key, version):
    cls = m.request_class(api_key, version)
    for body in (m.encode_request(sample(cls)), m.encode_request(sample(cls, with_nulls=True))):
        for cut in range(len(body)):
            with pytest.raises(InvalidRequest):
                check_bounds(cls, body[:cut], 0)


@pytest.mark.parametrize("api_key, version, body", [
    (3, 12, b"\xfc\x8f\xab\x92\x1b0\xd2"),  # compact array of 7 billion topics
    (3, 1, struct.pack(">i", 0x7FFFFFFF) + b"xx"),  # legacy array of 2**31 - 1 topics
    (1, 4, bytes(17) + struct.pack(">i", 0x7FFFFFF0)),  # after a fetch request's fixed fields
    (1, 4, bytes(17) + struct.pack(">ih", 1, 1) + b"t" + struct.pack(">i", 0x7FFFFFF0)),  # nested
])
def test_huge_counts_are_refused_before_kio_allocates(api_key, version, body):
    with pytest.raises(InvalidRequest, match="array of"):
        m.decode_request(api_key, version, body, 0)


def test_huge_count_does_not_abort_the_process():
    # kio reserves the declared count before reading: a regression here kills
    # the interpreter, so it runs in a child.
    code = ("from kavka.protocol.messages import decode_request\n"
            "from kavka.protocol.errors import InvalidRequest\n"
            "try:\n    decode_request(3, 12, b'\\xfc\\x8f\\xab\\x92\\x1b0\\xd2', 0)\n"
            "except InvalidRequest:\n    print('refused')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "refused", result.stderr[-500:]


def test_tagged_value_longer_than_its_size_is_refused():
    cls = m.request_class(1, 15)  # FetchRequest: ClusterId is tag 0
    untagged = replace(sample(cls), cluster_id=None,
                       replica_state=cls.__dataclass_fields__["replica_state"].default)
    body = m.encode_request(untagged)
    assert body.endswith(b"\x00")  # the empty top-level tag section
    section = b"\x01" + b"\x00\x01" + b"\x04clu"  # declares 1 byte, the string needs 4
    with pytest.raises(InvalidRequest, match="tagged field 0"):
        check_bounds(cls, body[:-1] + section, 0)


# -- nulls where the schema has none, and the element cap (issue 9, items 4 and 8) -------------

FETCH_FIXED = bytes(4 + 4 + 4 + 4 + 1 + 4 + 4)  # Fetch v7-12 before the topics
PRODUCE_V3_HEAD = struct.pack(">hhi", -1, 1, 1000)  # null transactional id, acks, timeout


@pytest.mark.parametrize("api_key, version, body, field", [
    (3, 0, struct.pack(">i", -1), "topics"),                      # Metadata v0: topics not nullable
    (1, 11, FETCH_FIXED + struct.pack(">i", -1), "topics"),        # legacy null array
    (1, 12, FETCH_FIXED + b"\x00", "topics"),                     # compact null array (0)
    (1, 12, FETCH_FIXED + b"\x02\x00", "topic"),                   # compact null string (0)
    (0, 3, PRODUCE_V3_HEAD + struct.pack(">i", -1), "topic_data"),
    (0, 3, PRODUCE_V3_HEAD + struct.pack(">ih", 1, -1), "name"),  # legacy null string (-1)
    (19, 3, struct.pack(">ih", 1, -1), "name"),                   # CreateTopics
])
def test_null_where_not_nullable_is_refused(api_key, version, body, field):
    with pytest.raises(InvalidRequest, match=f"null {field} where the schema does not allow one"):
        m.decode_request(api_key, version, body, 0)


def test_null_where_nullable_is_accepted():
    assert m.decode_request(3, 4, struct.pack(">i", -1) + b"\x00", 0).topics is None  # Metadata v1+: all
    assert m.decode_request(3, 12, bytes(4), 0).topics is None  # compact null


def test_element_cap_counts_every_array_of_the_message():
    from kavka.protocol import schema_walk
    n = schema_walk.MAX_ELEMENTS
    ok = struct.pack(">i", n) + b"\x00\x00" * n + b"\x00"  # Metadata v4, n empty names
    assert len(m.decode_request(3, 4, ok, 0).topics) == n
    over = struct.pack(">i", n + 1) + b"\x00\x00" * (n + 1) + b"\x00"
    with pytest.raises(InvalidRequest, match="array elements in one message"):
        m.decode_request(3, 4, over, 0)
    # nested: 2 topics of n/2 partitions each, plus the topics themselves, is over the cap
    half = n // 2
    topic = struct.pack(">h", 1) + b"t" + struct.pack(">i", half) + bytes(28 * half)
    fetch = FETCH_FIXED + struct.pack(">i", 2) + topic * 2 + struct.pack(">i", 0) + b"\x00\x00"
    with pytest.raises(InvalidRequest, match="array elements in one message"):
        m.decode_request(1, 11, fetch, 0)
    # the count starts afresh for each message
    assert len(m.decode_request(3, 4, ok, 0).topics) == n
