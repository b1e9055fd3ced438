"""Client quotas in a cluster of three brokers: a quota set through one broker
(AlterClientQuotas) is kept in etcd, every broker's watch brings it in, so each describes it
and throttles the limited client (throttle_time_ms in its Produce answers) while another
client is not; removed through another broker, none throttles any more."""

from __future__ import annotations

import datetime
import uuid

import pytest
from kio.schema.alter_client_quotas.v1 import request as alter
from kio.schema.describe_client_quotas.v1 import request as describe
from kio.schema.produce.v9 import request as produce

from admin_targets import start_cluster
from kavka.api.responses import make
from kavka.client import Client
from kavka.protocol import record_codec
from test_cluster_acls import until
from test_cluster_partition_cap import create_topic

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

NONE = 0


@pytest.fixture(scope="module")
def cluster(etcd, tmp_path_factory):
    target = start_cluster(etcd.endpoint, tmp_path_factory.mktemp("quotas"), extra={"quota.window.num": "2"})
    try:
        yield target
    finally:
        target.stop()


def set_rate(broker, client_id: str, rate: float | None) -> None:
    entry = make(alter.EntryData, entity=(make(alter.EntityData, entity_type="client-id", entity_name=client_id),),
                 ops=(make(alter.OpData, key="producer_byte_rate", value=rate or 0.0, remove=rate is None),))
    with Client(broker.bootstrap_servers, timeout=20) as client:
        answer = client.request(make(alter.AlterClientQuotasRequest, entries=(entry,), validate_only=False))
    assert answer.entries[0].error_code == NONE


def described(broker) -> dict:
    with Client(broker.bootstrap_servers, timeout=20) as client:
        answer = client.request(make(describe.DescribeClientQuotasRequest, components=(), strict=False))
    assert answer.error_code == NONE
    return {tuple((e.entity_type, e.entity_name) for e in entry.entity): {v.key: v.value for v in entry.values}
            for entry in answer.entries}


def throttle_ms(broker, topic: str, client_id: str) -> float:
    """Produce 50 kB to partition 0 wherever it is asked (a non-leader answers an error, still
    counted and throttled as Kafka does); the throttle_time_ms answered."""
    batch = record_codec.encode_batch([(b"k", b"v" * 50_000, 1, ())])
    body = make(produce.ProduceRequest, transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=5),
                topic_data=(make(produce.TopicProduceData, name=topic, partition_data=(
                    make(produce.PartitionProduceData, index=0, records=batch),)),))
    with Client(broker.bootstrap_servers, timeout=20, client_id=client_id) as client:
        return client.request(body).throttle_time.total_seconds() * 1000


def test_a_quota_set_on_one_broker_is_enforced_by_all(cluster):
    topic = "quota-" + uuid.uuid4().hex[:6]
    assert create_topic(cluster.brokers[1], topic, partitions=1, rf=3)[0] == NONE
    set_rate(cluster.brokers[2], "limited", 10_000)
    for broker_id in cluster.broker_ids:
        b = cluster.brokers[broker_id]
        until(lambda b=b: (("client-id", "limited"),) in described(b), f"broker {broker_id} lacks the quota")
        assert throttle_ms(b, topic, "limited") > 0     # 50 kB against 10 kB/s over 1 s
        assert throttle_ms(b, topic, "free") == 0
    set_rate(cluster.brokers[3], "limited", None)
    for broker_id in cluster.broker_ids:
        b = cluster.brokers[broker_id]
        until(lambda b=b: described(b) == {}, f"broker {broker_id} still has the quota")
        assert throttle_ms(b, topic, "limited") == 0
