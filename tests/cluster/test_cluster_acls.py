"""ACLs in a cluster of three brokers: a binding made through one broker (CreateAcls) is
kept in etcd, and every broker's watch brings it to its authorizer, so all three refuse
the same client the same way (Metadata, Produce); removed through another broker, all
three allow again.  Replication and forwarding keep working: the brokers reach each other
as User:ANONYMOUS, which the cluster resource, holding no ACL, lets through
(``allow.everyone.if.no.acl.found``)."""

from __future__ import annotations

import datetime
import time
import uuid

import pytest
from confluent_kafka import Producer
from kio.schema.create_acls.v3 import request as create_acls
from kio.schema.delete_acls.v3 import request as delete_acls
from kio.schema.describe_acls.v3 import request as describe_acls
from kio.schema.metadata.v12 import request as metadata
from kio.schema.produce.v9 import request as produce

from admin_targets import start_cluster
from kavka.api.responses import make
from kavka.client import Client
from kavka.protocol import record_codec
from test_cluster_partition_cap import create_topic

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
NONE, TOPIC_AUTHORIZATION_FAILED = 0, 29
TOPIC, ANY, LITERAL, DENY, READ, WRITE = 2, 1, 3, 2, 3, 4
WAIT = 10


@pytest.fixture(scope="module")
def cluster(etcd, tmp_path_factory):
    target = start_cluster(etcd.endpoint, tmp_path_factory.mktemp("acls"),
                           extra={"authorizer.class.name": AUTHORIZER, "allow.everyone.if.no.acl.found": "true"})
    try:
        yield target
    finally:
        target.stop()


def request(broker, body):
    with Client(broker.bootstrap_servers, timeout=20) as client:
        return client.request(body)


def metadata_code(broker, topic: str) -> int:
    body = make(metadata.MetadataRequest, topics=(make(metadata.MetadataRequestTopic, topic_id=None, name=topic),),
                allow_auto_topic_creation=False, include_topic_authorized_operations=False)
    (t,) = request(broker, body).topics
    return t.error_code


def produce_code(broker, topic: str) -> int:
    data = make(produce.PartitionProduceData, index=0, records=record_codec.encode_batch([(b"k", b"v", 1, ())]))
    body = make(produce.ProduceRequest, transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=5),
                topic_data=(make(produce.TopicProduceData, name=topic, partition_data=(data,)),))
    (t,) = request(broker, body).responses
    return t.partition_responses[0].error_code


def deny(broker, topic: str) -> None:
    creations = tuple(make(create_acls.AclCreation, resource_type=TOPIC, resource_name=topic,
                           resource_pattern_type=LITERAL, principal="User:ANONYMOUS", host="*", operation=op,
                           permission_type=DENY) for op in (READ, WRITE))
    assert [r.error_code for r in request(broker, make(create_acls.CreateAclsRequest, creations=creations)).results] \
        == [NONE, NONE]


def described(broker, topic: str) -> set[tuple]:
    body = make(describe_acls.DescribeAclsRequest, resource_type_filter=TOPIC, resource_name_filter=topic,
                pattern_type_filter=ANY, principal_filter=None, host_filter=None, operation=ANY, permission_type=ANY)
    answer = request(broker, body)
    assert answer.error_code == NONE
    return {(a.principal, a.operation, a.permission_type) for r in answer.resources for a in r.acls}


def until(check, what: str):
    deadline = time.monotonic() + WAIT
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_acls_made_on_one_broker_are_enforced_by_all(cluster):
    guarded, free = "guarded-" + uuid.uuid4().hex[:6], "free-" + uuid.uuid4().hex[:6]
    for name in (guarded, free):
        assert create_topic(cluster.brokers[3], name, partitions=1, rf=3)[0] == NONE   # forwarded to the controller
    brokers = [cluster.brokers[i] for i in cluster.broker_ids]
    assert all(produce_code(b, guarded) != TOPIC_AUTHORIZATION_FAILED for b in brokers)
    deny(cluster.brokers[2], guarded)
    for broker_id, b in zip(cluster.broker_ids, brokers):   # each watch brings the keys in its own time
        until(lambda b=b: metadata_code(b, guarded) == TOPIC_AUTHORIZATION_FAILED, f"broker {broker_id} allows")
        assert described(b, guarded) == {("User:ANONYMOUS", READ, DENY), ("User:ANONYMOUS", WRITE, DENY)}
        assert metadata_code(b, guarded) == TOPIC_AUTHORIZATION_FAILED
        assert produce_code(b, guarded) == TOPIC_AUTHORIZATION_FAILED
        assert metadata_code(b, free) == NONE
    producer = Producer({"bootstrap.servers": cluster.bootstrap(), "acks": "all"})
    producer.produce(free, b"replicated")
    assert producer.flush(20) == 0, "acks=all on the free topic: followers still replicate"
    body = make(delete_acls.DeleteAclsRequest, filters=(make(
        delete_acls.DeleteAclsFilter, resource_type_filter=TOPIC, resource_name_filter=guarded,
        pattern_type_filter=LITERAL, principal_filter=None, host_filter=None, operation=ANY,
        permission_type=ANY),))
    (result,) = request(cluster.brokers[1], body).filter_results
    assert result.error_code == NONE and len(result.matching_acls) == 2
    for broker_id, b in zip(cluster.broker_ids, brokers):
        until(lambda b=b: metadata_code(b, guarded) == NONE, f"broker {broker_id} still refuses")
        assert described(b, guarded) == set() and produce_code(b, guarded) != TOPIC_AUTHORIZATION_FAILED
