"""The hand-written FetchResponse encoder matches kio's byte for byte, v4-v17."""

import datetime
import io
import uuid

import pytest
from kio.index import load_entity_module
from kio.serial import entity_writer
from kio.static.constants import EntityType

from kavka.protocol.errors import ErrorCode
from kavka.protocol.fetch_response import PartitionResult, TopicResult, encode_fetch_response
from kavka.protocol.record_codec import encode_batch

TOPIC_ID = uuid.UUID("12345678-1234-5678-1234-567812345678")


class Region:
    """Stands in for a file slice: only ``size`` and ``read`` are used."""

    def __init__(self, data: bytes) -> None:
        self.data, self.size = data, len(data)

    def read(self) -> bytes:
        return self.data


def _kio_bytes(version: int, topics, aborted_empty: bool) -> bytes:
    mod = load_entity_module("fetch", version, EntityType.response)

    def make(cls, **kw):
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in kw.items() if k in names})

    responses = []
    for topic in topics:
        parts = []
        for p in topic.partitions:
            records = b"".join(r.read() for r in p.records)
            parts.append(make(
                mod.PartitionData, partition_index=p.index, error_code=ErrorCode(p.error_code),
                high_watermark=p.high_watermark, last_stable_offset=p.last_stable_offset,
                log_start_offset=p.log_start_offset,
                aborted_transactions=() if aborted_empty else None, preferred_read_replica=-1,
                records=records))
        responses.append(make(mod.FetchableTopicResponse, topic=topic.name, topic_id=topic.topic_id,
                              partitions=tuple(parts)))
    response = make(mod.FetchResponse, throttle_time=datetime.timedelta(0), error_code=ErrorCode.none,
                    session_id=0, responses=tuple(responses))
    buf = io.BytesIO()
    entity_writer(type(response))(buf, response)
    return buf.getvalue()


@pytest.mark.parametrize("version", range(4, 18))
@pytest.mark.parametrize("aborted_empty", [False, True])
def test_matches_kio(version, aborted_empty):
    batch1 = encode_batch([(b"k", b"v" * 50, 1_700_000_000_000, ())])
    batch2 = encode_batch([(None, b"x" * 300, 1_700_000_000_001, (("h", b"1"),))], base_offset=1)
    topics = [
        TopicResult("alpha", TOPIC_ID, [
            PartitionResult(0, 0, 2, 2, 0, [Region(batch1), Region(batch2)], () if aborted_empty else None),
            PartitionResult(1, ErrorCode.offset_out_of_range.value, 5, 5, 3, [], () if aborted_empty else None),
        ]),
        TopicResult("beta", TOPIC_ID, [PartitionResult(0, 0, 0, 0, 0, [], () if aborted_empty else None)]),
    ]
    parts, size = encode_fetch_response(version, topics)
    ours = b"".join(p if isinstance(p, bytes) else p.read() for p in parts)
    assert len(ours) == size
    assert ours == _kio_bytes(version, topics, aborted_empty)


def test_record_regions_are_passed_through_not_copied():
    region = Region(b"\0" * 100)
    parts, _ = encode_fetch_response(12, [TopicResult("t", None, [PartitionResult(0, records=[region])])])
    assert any(part is region for part in parts)
