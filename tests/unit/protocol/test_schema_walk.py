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
