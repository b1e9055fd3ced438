import datetime
import struct
from dataclasses import replace as _replace
import uuid

import pytest
from kafka_python_ref import (
    ApiVersionsRequest,
    ApiVersionsResponse,
    DefaultRecordBatchBuilder,
    MetadataRequest,
    MetadataResponse,
    ProduceRequest,
)
from kio.serial import entity_reader
from kio.static.constants import EntityType
from protocol_samples import UNKNOWN_VALUE, augmented_sample, message_classes, sample

from kavka.protocol import messages as m
from kavka.protocol.errors import ErrorCode, InvalidRequest, UnknownApiKey, UnsupportedVersion
from kavka.protocol.framing import parse_request_header, parse_response_header
from kavka.protocol.record_codec import decode_records

REQUESTS = list(message_classes(EntityType.request))
RESPONSES = list(message_classes(EntityType.response))


def kp_frame(request, correlation_id=1, client_id="kp") -> bytes:
    """A request frame as kafka-python writes it, size prefix stripped."""
    request.with_header(correlation_id=correlation_id, client_id=client_id)
    return bytes(request.encode(framed=True, header=True))[4:]


def decode_frame(frame: bytes):
    api_key, version, _ = struct.unpack_from(">hhi", frame)
    header = parse_request_header(frame, m.request_header_flexible(api_key, version))
    return m.decode_request(api_key, version, frame, header.header_size)


# -- lookup --------------------------------------------------------------------------------

def test_classes_by_key_and_version():
    assert m.request_class(3, 12).__name__ == "MetadataRequest"
    assert m.response_class(0, 9).__name__ == "ProduceResponse"
    assert m.request_class(3, 12) is m.request_class(3, 12)


@pytest.mark.parametrize("api_key", [-1, 9999, 32767])
def test_unknown_api_key(api_key):
    with pytest.raises(UnknownApiKey):
        m.request_class(api_key, 0)
    with pytest.raises(UnknownApiKey):
        m.response_class(api_key, 0)


@pytest.mark.parametrize("version", [-1, 99])
def test_unsupported_version(version):
    with pytest.raises(UnsupportedVersion) as info:
        m.request_class(3, version)
    assert (info.value.api_key, info.value.version) == (3, version)


@pytest.mark.parametrize("api_key, version, body, request_header", [
    (3, 8, False, False), (3, 9, True, True), (0, 8, False, False), (0, 9, True, True),
    (18, 2, False, False), (18, 3, True, True), (1, 12, True, True), (11, 5, False, False),
])
def test_flexibility(api_key, version, body, request_header):
    assert m.is_flexible(api_key, version) is body
    assert m.request_header_flexible(api_key, version) is request_header
    assert m.response_header_flexible(api_key, version) is (request_header and api_key != 18)


@pytest.mark.parametrize("version", [0, 1, 2, 3, 4, 99])
def test_api_versions_response_header_is_always_v0(version):
    assert m.response_header_flexible(18, version) is False


def test_header_of_a_version_newer_than_any_known():
    assert m.request_header_flexible(18, 99) is True  # so the broker can answer error 35
    with pytest.raises(UnsupportedVersion):
        m.request_header_flexible(18, -1)
    with pytest.raises(UnknownApiKey):
        m.request_header_flexible(9999, 0)


# -- every kio message round-trips ---------------------------------------------------------

def _decode_any(cls, body):
    decode = m.decode_request if cls.__type__ is EntityType.request else m.decode_response
    return decode(cls.__api_key__, cls.__version__, body, 0)


@pytest.mark.parametrize("with_nulls", [False, True])
def test_every_request_and_response_round_trips(with_nulls):
    for api_key, version, cls in REQUESTS + RESPONSES:
        obj = sample(cls, with_nulls)
        assert _decode_any(cls, m.encode_request(obj)) == obj, (api_key, version)


@pytest.mark.slow
@pytest.mark.parametrize("with_nulls", [False, True])
def test_unknown_tags_at_every_depth_are_skipped(with_nulls):
    checked = 0
    for api_key, version, cls in REQUESTS + RESPONSES:
        if not cls.__flexible__:
            continue
        body = m.encode_request(augmented_sample(cls, with_nulls))
        assert UNKNOWN_VALUE.encode() in body
        with pytest.raises(KeyError):  # the kio limitation this guards against
            entity_reader(cls)(body, 0)
        assert _decode_any(cls, body) == sample(cls, with_nulls), (api_key, version)
        checked += 1
    assert checked > 300


# -- unknown tags in real request bytes ----------------------------------------------------

def test_metadata_request_with_unknown_tags_top_level_and_nested():
    request = MetadataRequest[12](
        topics=[MetadataRequest[12].MetadataRequestTopic(topic_id=None, name="t1")],
        allow_auto_topic_creation=True, include_topic_authorized_operations=False)
    frame = kp_frame(request, correlation_id=5)
    header = parse_request_header(frame, flexible=True)
    body = frame[header.header_size :]
    zero_uuid = bytes(16)
    assert body == b"\x02" + zero_uuid + b"\x03t1" + b"\x00" + b"\x01\x00" + b"\x00"
    nested_tags = b"\x01" + b"\x05\x02hi"  # tag 5, two bytes
    top_tags = b"\x02" + b"\x03\x01\x07" + b"\xac\x02\x03abc"  # tags 3 and 300
    tagged = b"\x02" + zero_uuid + b"\x03t1" + nested_tags + b"\x01\x00" + top_tags
    decoded = m.decode_request(3, 12, frame[: header.header_size] + tagged, header.header_size)
    assert decoded == m.decode_request(3, 12, frame, header.header_size)
    assert decoded.topics[0].name == "t1" and decoded.allow_auto_topic_creation is True


def test_api_versions_request_v3_with_unknown_tag():
    frame = kp_frame(ApiVersionsRequest[3](client_software_name="kp", client_software_version="3"))
    assert frame.endswith(b"\x00")
    tagged = frame[:-1] + b"\x01\x00\x04\x00\x00\x00\x01"
    request = decode_frame(tagged)
    assert (request.client_software_name, request.client_software_version) == ("kp", "3")


def test_known_tags_around_unknown_ones_are_kept():
    cls = m.request_class(1, 15)  # FetchRequest: ClusterId is tag 0, ReplicaState tag 1
    replica_state_cls = cls.__dataclass_fields__["replica_state"].type
    plain = m.encode_request(_replace(sample(cls), cluster_id=None,
                                      replica_state=cls.__dataclass_fields__["replica_state"].default))
    assert plain.endswith(b"\x00")  # the top-level tag section closes the body
    replica_state = struct.pack(">iq", 4, 9) + b"\x00"
    section = (b"\x04"
               + b"\x00\x04" + b"\x04clu"
               + b"\x01" + bytes([len(replica_state)]) + replica_state
               + b"\x02\x01\x09"
               + b"\x63\x00")
    decoded = m.decode_request(1, 15, plain[:-1] + section, 0)
    assert decoded.cluster_id == "clu"
    assert decoded.replica_state == replica_state_cls(replica_id=4, replica_epoch=9)
    assert decoded.topics == sample(cls).topics


# -- requests written by kafka-python, decoded by us ---------------------------------------

def kp_batch(n=3) -> bytes:
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                        producer_id=-1, producer_epoch=-1, base_sequence=-1,
                                        batch_size=1 << 20)
    for i in range(n):
        builder.append(i, timestamp=1000 + i, key=b"k%d" % i, value=b"v" * i, headers=[("h", b"x")])
    return bytes(builder.build())


@pytest.mark.parametrize("version", [3, 7, 8, 9])
def test_produce_request_from_kafka_python(version):
    P = ProduceRequest[version]
    batch = kp_batch()
    request = P(transactional_id=None, acks=-1, timeout_ms=1500, topic_data=[
        P.TopicProduceData(name="events", partition_data=[P.TopicProduceData.PartitionProduceData(index=2, records=batch)])])
    decoded = decode_frame(kp_frame(request))
    assert decoded.acks == -1 and decoded.timeout == datetime.timedelta(milliseconds=1500)
    partition = decoded.topic_data[0].partition_data[0]
    assert decoded.topic_data[0].name == "events" and partition.index == 2
    assert partition.records == batch
    assert [r.value for r in decode_records(partition.records)] == [b"", b"v", b"vv"]


@pytest.mark.parametrize("version", [0, 1, 5, 9, 12])
def test_metadata_request_from_kafka_python(version):
    M = MetadataRequest[version]
    kwargs = {"topics": [M.MetadataRequestTopic(name="a"), M.MetadataRequestTopic(name="b")]}
    if version >= 4:
        kwargs["allow_auto_topic_creation"] = False
    decoded = decode_frame(kp_frame(M(**kwargs)))
    assert [t.name for t in decoded.topics] == ["a", "b"]


# -- responses written by us, decoded by kafka-python --------------------------------------

@pytest.mark.parametrize("version", [0, 1, 2, 3])
def test_api_versions_response_readable_by_kafka_python(version):
    cls = m.response_class(18, version)
    key_cls = cls.__dataclass_fields__["api_keys"].type.__args__[0]
    kwargs = {"error_code": ErrorCode.none,
              "api_keys": (key_cls(api_key=0, min_version=0, max_version=9),
                           key_cls(api_key=18, min_version=0, max_version=3))}
    if version >= 1:
        kwargs["throttle_time"] = datetime.timedelta(0)
    body = m.encode_response(cls(**kwargs))
    theirs = ApiVersionsResponse[version].decode(body)
    assert [(k.api_key, k.min_version, k.max_version) for k in theirs.api_keys] == [(0, 0, 9), (18, 0, 3)]
    assert m.decode_response(18, version, body) == cls(**kwargs)


def test_metadata_response_v12_readable_by_kafka_python():
    cls = m.response_class(3, 12)
    obj = sample(cls)
    body = m.encode_response(obj)
    theirs = MetadataResponse[12].decode(body)
    assert theirs.brokers[0].host == obj.brokers[0].host
    assert [t.name for t in theirs.topics] == [t.name for t in obj.topics]


def test_encode_request_frame_has_header_and_size():
    obj = sample(m.request_class(18, 3))
    frame = m.encode_request_frame(obj, correlation_id=11, client_id="cli")
    assert struct.unpack_from(">i", frame)[0] == len(frame) - 4
    assert decode_frame(frame[4:]) == obj
    assert parse_response_header(b"\x00\x00\x00\x0b\x00", flexible=True) == (11, 5)


# -- bad input -----------------------------------------------------------------------------

def test_truncated_body_is_an_invalid_request():
    body = m.encode_request(sample(m.request_class(0, 9)))
    for cut in (1, len(body) // 2, len(body) - 1):
        with pytest.raises(InvalidRequest, match="ProduceRequest v9"):
            m.decode_request(0, 9, body[:cut], 0)


def test_garbage_is_an_invalid_request():
    with pytest.raises(InvalidRequest):
        m.decode_request(3, 12, b"\x05\xff\xfe\xfd\xfc\xfb", 0)


def test_truncated_body_with_unknown_tag_is_an_invalid_request():
    body = m.encode_request(augmented_sample(m.request_class(3, 12)))
    with pytest.raises(InvalidRequest):
        m.decode_request(3, 12, body[:-3], 0)


def test_writable_buffers_are_accepted():
    body = m.encode_request(sample(m.request_class(3, 12)))
    expected = m.decode_request(3, 12, body, 0)
    assert m.decode_request(3, 12, bytearray(body), 0) == expected
    assert m.decode_request(3, 12, memoryview(bytearray(body)), 0) == expected


def test_uuid_sample_is_not_the_null_uuid():
    assert sample(m.request_class(3, 12)).topics[0].topic_id != uuid.UUID(int=0)
