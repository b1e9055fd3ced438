"""Produce and transactional batches: without a transactional id Kafka refuses them
(TRANSACTIONAL_ID_AUTHORIZATION_FAILED), so no batch can open a transaction nobody ends."""

from __future__ import annotations

import datetime

from kavka.protocol.errors import ErrorCode
from kavka.protocol.record_codec import encode_batch

PRODUCE = 0


def _produce(h, transactional: bool) -> list[int]:
    q = h.req(PRODUCE, 9)
    now = h.context.clock.now_ms()
    plain = encode_batch([(b"k", b"v", now, ())])
    batch = encode_batch([(b"k", b"v", now, ())], producer_id=5, producer_epoch=0, base_sequence=0,
                         transactional=transactional)
    response = h.call(q.ProduceRequest(
        transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=5),
        topic_data=(q.TopicProduceData(name="t", partition_data=(
            q.PartitionProduceData(index=0, records=plain), q.PartitionProduceData(index=1, records=batch))),)))
    return [p.error_code for p in response.responses[0].partition_responses]


def test_transactional_records_without_a_transactional_id_are_refused(admin):
    h = admin()
    h.logs.create_topic("t", 2)
    code = ErrorCode.transactional_id_authorization_failed.value
    assert _produce(h, transactional=True) == [code, code]  # the whole request, as Kafka
    assert [h.logs.partition("t", i).log.log_end_offset for i in range(2)] == [0, 0]
    assert _produce(h, transactional=False) == [0, 0]
