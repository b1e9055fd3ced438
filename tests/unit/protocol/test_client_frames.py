"""Decode bytes that librdkafka and aiokafka really sent."""

import pytest
from client_frames import FRAMES

from kavka.protocol import messages as m
from kavka.protocol import records
from kavka.protocol.framing import parse_request_header, peek_api_key_version
from kavka.protocol.record_codec import XERIAL_MAGIC, Record, decode_records, null_key_indexes

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def decode(name):
    frame = bytes.fromhex(FRAMES[name])
    api_key, version, _ = peek_api_key_version(frame)
    header = parse_request_header(frame, m.request_header_flexible(api_key, version))
    return header, m.decode_request(api_key, version, frame, header.header_size)


def expected_records() -> list[Record]:
    def key(i):
        return b"key-%d" % i if i % 7 else None

    def headers(i):
        return (("h", b"v%d" % i),) if i % 3 == 0 else ()

    return [Record(i, 1_700_000_000_000 + i, key(i), b"value-%d " % i * 4, headers(i)) for i in range(20)]


def produced_batch(name) -> bytes:
    _, request = decode(name)
    return request.topic_data[0].partition_data[0].records


def test_librdkafka_api_versions_v3():
    header, request = decode("rdk-api-versions-v3")
    assert (header.api_key, header.api_version, header.client_id) == (18, 3, "rdk-capture")
    assert request.client_software_name == "confluent-kafka-python"


def test_librdkafka_metadata_v12():
    _, request = decode("rdk-metadata-v12")
    assert [t.name for t in request.topics] == ["t"]


def test_aiokafka_non_flexible_requests():
    header, request = decode("aio-api-versions-v0")
    assert (header.api_version, header.client_id) == (0, "aio-capture")
    _, metadata = decode("aio-metadata-v5")
    assert metadata.topics == ()  # aiokafka's bootstrap probe asks for no topics


@pytest.mark.parametrize("codec", CODECS)
def test_librdkafka_produce_batches(codec):
    batch = produced_batch(f"rdk-produce-v9-{codec}")
    header = records.validate(batch)
    assert header.compression == CODECS.index(codec)
    assert decode_records(batch) == expected_records()
    assert null_key_indexes(batch)


@pytest.mark.parametrize("codec", ["none", "gzip"])
def test_aiokafka_produce_batches(codec):
    batch = produced_batch(f"aio-produce-v7-{codec}")
    records.validate(batch)
    assert decode_records(batch) == expected_records()


def test_librdkafka_writes_raw_snappy_and_independent_lz4_blocks():
    snappy = produced_batch("rdk-produce-v9-snappy")[records.HEADER_SIZE :]
    assert not snappy.startswith(XERIAL_MAGIC)
    lz4 = produced_batch("rdk-produce-v9-lz4")[records.HEADER_SIZE :]
    assert lz4[:4] == b"\x04\x22\x4d\x18" and lz4[4] & 0x20  # frame magic, independent blocks
