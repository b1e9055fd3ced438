"""The admin contract's topic-name rules, on a lone broker and a 3-broker cluster.

Apart from test_admin_contract.py because, should the cluster break a rule, the
broken state would stay (a topic in etcd that some replica cannot create locally
stops that broker's reconciliation), and the other contract tests should not run
on it.  The brokers are this module's own (``admin_target`` is module-scoped).

Kafka refuses a name equal to an existing one once '.' and '_' are treated alike
(their metric names collide), and names that are not legal topic names, for
CreateTopics and for creation by Metadata alike.
"""

from __future__ import annotations

import pytest
from admin_contract_helpers import (
    TIMEOUT,
    admin,
    create,
    error_name,
    ready_everywhere,
    round_trip,
    topic_metadata,
)
from confluent_kafka.admin import NewTopic

pytestmark = pytest.mark.timeout(120)


def controller_id(target) -> int:
    client = admin(target)
    return client.describe_cluster(request_timeout=TIMEOUT).result(TIMEOUT).controller.id


def test_a_name_colliding_with_a_topic_on_another_broker_is_refused(admin_target):
    """Kafka refuses a name that equals an existing one once '.' and '_' are treated alike
    (their metric names would collide), wherever the existing topic's replicas are."""
    target = admin_target
    elsewhere = [i for i in target.broker_ids if i != controller_id(target)] or target.broker_ids
    create(admin(target), NewTopic("metrics_raw", 1, replica_assignment=[[elsewhere[0]]]))
    ready_everywhere(target, "metrics_raw", 1)
    client = admin(target)
    assert error_name(client.create_topics([NewTopic("metrics.raw", 1, 1)])["metrics.raw"]) == "TOPIC_EXCEPTION"
    assert "metrics.raw" not in client.list_topics(timeout=TIMEOUT).topics


def test_names_colliding_within_one_request_are_refused(admin_target):
    target = admin_target
    client = admin(target)
    futures = client.create_topics([NewTopic("pair.one", 1, 1), NewTopic("pair_one", 1, 1)])
    futures["pair.one"].result(TIMEOUT)
    assert error_name(futures["pair_one"]) == "TOPIC_EXCEPTION"
    assert "pair_one" not in client.list_topics(timeout=TIMEOUT).topics


def test_a_name_colliding_with_a_topic_on_the_controller_is_refused(admin_target):
    target = admin_target
    create(admin(target), NewTopic("gauges_raw", 1, replica_assignment=[[controller_id(target)]]))
    ready_everywhere(target, "gauges_raw", 1)
    client = admin(target)
    assert error_name(client.create_topics([NewTopic("gauges.raw", 1, 1)])["gauges.raw"]) == "TOPIC_EXCEPTION"


def _metadata_creating(target, broker_id: int, name: str) -> str:
    """Metadata v12 with allow_auto_topic_creation to one broker (kavka's one-connection
    client: librdkafka would not send an illegal name); the topic's error, by
    kafka-python's name for the code."""
    from kafka.errors import for_code
    from kio.schema.metadata.v12 import request as q

    from kavka.api.responses import make
    from kavka.client import Client
    body = make(q.MetadataRequest, topics=(make(q.MetadataRequestTopic, topic_id=None, name=name),),
                allow_auto_topic_creation=True, include_topic_authorized_operations=False)
    with Client(target.brokers[broker_id].bootstrap_servers, client_id="contract", timeout=TIMEOUT) as client:
        (topic,) = client.request(body).topics
    return for_code(topic.error_code).__name__


@pytest.mark.parametrize("name", ["bad name", "x" * 250, "metrics.auto"])
def test_metadata_does_not_auto_create_illegal_or_colliding_names(admin_target, name):
    target = admin_target
    if name == "metrics.auto":
        create(admin(target), NewTopic("metrics_auto", 1, target.broker_count))
        ready_everywhere(target, "metrics_auto", 1)
    for broker_id in target.broker_ids:
        assert _metadata_creating(target, broker_id, name) == "InvalidTopicError", f"through broker {broker_id}"
    for broker_id in target.broker_ids:
        assert topic_metadata(target, broker_id, name) is None


def test_a_colliding_auto_creation_leaves_later_topics_working(admin_target):
    target = admin_target
    create(admin(target), NewTopic("gauge_auto", 1, target.broker_count))
    ready_everywhere(target, "gauge_auto", 1)
    assert _metadata_creating(target, target.broker_ids[0], "gauge.auto") == "InvalidTopicError"
    create(admin(target), NewTopic("after-names", target.broker_count, target.broker_count))
    ready_everywhere(target, "after-names", target.broker_count)
    for p in range(target.broker_count):
        round_trip(target, "after-names", p, timeout=5)
