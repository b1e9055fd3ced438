"""Malformed input closes only the offending connection (or gets Kafka's error code);
every other client keeps working and no stored data changes."""

from __future__ import annotations

import logging
import os
import socket
import struct

import pytest
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.list_offsets.v5.request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
import datetime

from kavka.client import Client, ClientError
from kavka.protocol import messages
from kavka.protocol.framing import parse_response_header
from kavka.protocol.record_codec import encode_batch


def metadata_ok(bootstrap: str) -> bool:
    with Client(bootstrap) as client:
        response = client.request(MetadataRequest(topics=None, allow_auto_topic_creation=False,
                                                  include_topic_authorized_operations=False))
    return len(response.brokers) == 1


def closed_by_broker(sock: socket.socket, timeout: float = 5.0) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def raw(bootstrap: str) -> socket.socket:
    host, _, port = bootstrap.rpartition(":")
    return socket.create_connection((host, int(port)), timeout=5)


def produce_request(batch: bytes, topic: str = "t") -> ProduceRequest:
    return ProduceRequest(transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=5), topic_data=(
        TopicProduceData(name=topic, partition_data=(PartitionProduceData(index=0, records=batch),)),))


def latest_offset(bootstrap: str, topic: str = "t") -> int:
    with Client(bootstrap) as client:
        response = client.request(ListOffsetsRequest(replica_id=-1, isolation_level=0, topics=(
            ListOffsetsTopic(name=topic, partitions=(ListOffsetsPartition(
                partition_index=0, current_leader_epoch=-1, timestamp=-1),)),)))
    return response.topics[0].partitions[0].offset


@pytest.fixture
def bootstrap(kavka_broker):
    return kavka_broker.bootstrap_servers


@pytest.mark.parametrize("payload", [
    pytest.param(b"\x00\x00\x00\x10" + bytes(range(16)), id="garbage-frame"),
    pytest.param(struct.pack(">i", 10) + struct.pack(">hhi", 9999, 0, 1) + b"\xff\xff", id="unknown-api-key"),
    pytest.param(struct.pack(">i", 10) + struct.pack(">hhi", 3, 99, 1) + b"\xff\xff", id="unknown-version"),
    pytest.param(struct.pack(">i", -5), id="negative-size"),
    pytest.param(struct.pack(">i", 200 * 1024 * 1024), id="size-over-socket.request.max.bytes"),
    pytest.param(struct.pack(">i", 12) + struct.pack(">hhi", 3, 12, 7) + b"\x00\x05ab", id="truncated-header"),
])
def test_bad_frames_close_only_that_connection(bootstrap, payload, caplog):
    caplog.set_level(logging.WARNING, logger="kavka.server")
    bystander = Client(bootstrap)  # connected before, must survive
    sock = raw(bootstrap)
    sock.sendall(payload)
    assert closed_by_broker(sock)
    assert any("closing connection" in r.getMessage() for r in caplog.records), "reason is logged"
    assert metadata_ok(bootstrap)
    response = bystander.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"))
    assert response.error_code == 0
    bystander.close()


def test_truncated_frame_then_hangup_leaves_broker_serving(bootstrap):
    sock = raw(bootstrap)
    sock.sendall(struct.pack(">i", 100) + b"\x00\x03\x00\x0c")
    sock.close()
    assert metadata_ok(bootstrap)


def test_random_garbage_streams(bootstrap):
    for seed in range(20):
        sock = raw(bootstrap)
        sock.sendall(os.urandom(64 + seed * 31))
        sock.close()
    assert metadata_ok(bootstrap)


def test_too_new_api_versions_gets_v0_answer_with_our_range(bootstrap):
    sock = raw(bootstrap)
    header = struct.pack(">hhi", 18, 77, 42) + struct.pack(">h", 1) + b"x" + b"\x00"
    sock.sendall(struct.pack(">i", len(header) + 1) + header + b"\x00")
    size = struct.unpack(">i", sock.recv(4))[0]
    frame = b""
    while len(frame) < size:
        frame += sock.recv(size - len(frame))
    correlation_id, header_size = parse_response_header(frame, flexible=False)
    response = messages.decode_response(18, 0, frame, header_size)
    assert correlation_id == 42
    assert response.error_code == 35
    assert [(k.api_key, k.min_version, k.max_version) for k in response.api_keys] == [(18, 0, 4)]
    sock.close()


def test_corrupted_crc_gets_corrupt_message_and_stores_nothing(bootstrap):
    with Client(bootstrap) as client:
        client.request(MetadataRequest(topics=(MetadataRequestTopic(name="t", topic_id=None),),
                                       allow_auto_topic_creation=True, include_topic_authorized_operations=False))
        good = encode_batch([(b"k", b"v", 1_700_000_000_000, ())])
        bad = bytearray(good)
        bad[-1] ^= 0xFF
        response = client.request(produce_request(bytes(bad)))
        assert response.responses[0].partition_responses[0].error_code == 2  # CORRUPT_MESSAGE
        assert latest_offset(bootstrap) == 0
        response = client.request(produce_request(good))  # the same connection still works
        assert response.responses[0].partition_responses[0].error_code == 0
    assert latest_offset(bootstrap) == 1


def test_nonzero_base_offset_is_invalid_record(bootstrap):
    with Client(bootstrap) as client:
        client.request(MetadataRequest(topics=(MetadataRequestTopic(name="t", topic_id=None),),
                                       allow_auto_topic_creation=True, include_topic_authorized_operations=False))
        batch = encode_batch([(b"k", b"v", 1_700_000_000_000, ())], base_offset=5)
        response = client.request(produce_request(batch))
        assert response.responses[0].partition_responses[0].error_code == 87  # INVALID_RECORD
    assert latest_offset(bootstrap) == 0


def test_unknown_tagged_field_in_request_is_ignored(bootstrap):
    request = MetadataRequest(topics=None, allow_auto_topic_creation=False, include_topic_authorized_operations=False)
    body = messages.encode_request(request)
    assert body.endswith(b"\x00")  # empty top-level tag section
    body = body[:-1] + b"\x01" + b"\x63\x02hi"  # one unknown tag (99) of 2 bytes
    header = struct.pack(">hhi", 3, 12, 5) + struct.pack(">h", 1) + b"x" + b"\x00"
    with Client(bootstrap) as client:
        client.send_raw(struct.pack(">i", len(header) + len(body)) + header + body)
        frame = client.recv_frame()
    correlation_id, header_size = parse_response_header(frame, flexible=True)
    response = messages.decode_response(3, 12, frame, header_size)
    assert correlation_id == 5 and len(response.brokers) == 1


def test_connection_to_closed_port_reports_clearly():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ClientError, match="cannot connect"):
        Client(f"127.0.0.1:{port}")


@pytest.mark.parametrize("version", [0, 1, 2])
def test_produce_v0_to_v2_is_answered_unsupported_version_not_closed(bootstrap, version):
    """Kafka 4 advertises Produce v0-2 (librdkafka needs it) and answers them with
    UNSUPPORTED_VERSION per partition; the connection stays usable."""
    with Client(bootstrap) as client:
        client.request(MetadataRequest(topics=(MetadataRequestTopic(name="t", topic_id=None),),
                                       allow_auto_topic_creation=True, include_topic_authorized_operations=False))
    batch = encode_batch([(b"k", b"v", 1_700_000_000_000, ())])
    body = (struct.pack(">hi", 1, 5000) + struct.pack(">i", 1) + struct.pack(">h", 1) + b"t"
            + struct.pack(">i", 1) + struct.pack(">ii", 0, len(batch)) + batch)
    header = struct.pack(">hhi", 0, version, 77) + struct.pack(">h", 1) + b"x"
    sock = raw(bootstrap)
    sock.sendall(struct.pack(">i", len(header) + len(body)) + header + body)
    size = struct.unpack(">i", sock.recv(4))[0]
    frame = b""
    while len(frame) < size:
        frame += sock.recv(size - len(frame))
    correlation_id, topics = struct.unpack_from(">ii", frame, 0)
    name_len = struct.unpack_from(">h", frame, 8)[0]
    index, code = struct.unpack_from(">ih", frame, 10 + name_len + 4)
    assert (correlation_id, topics, frame[10:10 + name_len], index, code) == (77, 1, b"t", 0, 35)
    sock.settimeout(5)
    header = struct.pack(">hhi", 18, 0, 78) + struct.pack(">h", 1) + b"x"
    sock.sendall(struct.pack(">i", len(header)) + header)
    assert struct.unpack(">i", sock.recv(4))[0] > 0, "the connection still answers"
    sock.close()
    assert latest_offset(bootstrap) == 0, "nothing was written"


@pytest.mark.parametrize("version", [10, 11, 12, 13])
def test_metadata_by_unknown_topic_id_answers_unknown_topic_id(bootstrap, version):
    import importlib
    import uuid

    q = importlib.import_module(f"kio.schema.metadata.v{version}.request")
    extra = {"include_cluster_authorized_operations": False} if version < 11 else {}
    with Client(bootstrap) as client:
        response = client.request(q.MetadataRequest(
            topics=(q.MetadataRequestTopic(name=None, topic_id=uuid.uuid4()),), allow_auto_topic_creation=False,
            include_topic_authorized_operations=False, **extra))
        assert [t.error_code for t in response.topics] == [100]
        assert metadata_ok(bootstrap)


NULL_FIELD_APIS = [(3, 0), (3, 4), (1, 11), (1, 12), (1, 15), (0, 3), (0, 9), (2, 8), (8, 8), (19, 5), (10, 4),
                   (11, 7), (9, 8)]


def test_null_where_the_schema_has_none_closes_that_connection_with_one_line(bootstrap, caplog):
    """Issue 9 item 8: a null array/string in a non-nullable field used to reach the handler
    (TypeError, one traceback per request).  Kafka's parser refuses it and closes the
    connection; kavka does the same and logs one warning line, no traceback."""
    from null_fields import null_bodies

    caplog.set_level(logging.DEBUG, logger="kavka")
    bystander = Client(bootstrap)
    sent = 0
    for api_key, version in NULL_FIELD_APIS:
        flexible = messages.request_header_flexible(api_key, version)
        for path, body in null_bodies(api_key, version):
            header = struct.pack(">hhi", api_key, version, 9) + struct.pack(">h", 1) + b"x"
            header += b"\x00" if flexible else b""
            sock = raw(bootstrap)
            sock.sendall(struct.pack(">i", len(header) + len(body)) + header + body)
            assert closed_by_broker(sock), (api_key, version, path)
            sock.close()
            sent += 1
    assert sent > 40
    assert metadata_ok(bootstrap)
    assert bystander.request(ApiVersionsRequest(client_software_name="t", client_software_version="1")).error_code == 0
    bystander.close()
    closes = [r for r in caplog.records if "closing connection" in r.getMessage()]
    assert len(closes) == sent and all("where the schema does not allow one" in r.getMessage() for r in closes)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], "no tracebacks"
