"""max.partitions.per.broker in a cluster: the controller counts the replicas each target
broker would hold (every topic's assignment in etcd) and refuses CreateTopics and
CreatePartitions beyond the cap with POLICY_VIOLATION, forwarded or not.

Broker 1 starts first (so it is the controller) with a cap of 10; brokers 2 and 3 have a
cap of 1000, so a request sent to them passes their own pre-check and is refused by the
controller itself (validate-only requests are not forwarded: the receiving broker answers
them with its own setting, so the cap should be set alike on every broker).  Nothing refused reaches etcd or any broker's data directory.
"""

from __future__ import annotations

import datetime
import uuid

import pytest

from kavka.broker import Broker
from kavka.cluster.node import ClusterSettings

from test_cluster_brokers import wait

pytestmark = pytest.mark.timeout(90)

POLICY_VIOLATION = 44
CAP = 10


@pytest.fixture
def capped(etcd, tmp_path):
    settings = ClusterSettings(etcd.endpoint, "cap-" + uuid.uuid4().hex[:10], 2000)
    config = {"offsets.topic.num.partitions": "3", "num.partitions": "1", "default.replication.factor": "3"}
    brokers = {}
    try:
        for i in (1, 2, 3):
            cap = CAP if i == 1 else 1000
            brokers[i] = Broker(tmp_path / f"b{i}", config={**config, "broker.id": str(i),
                                                            "max.partitions.per.broker": str(cap)},
                                cluster=settings).start()
            if i == 1:
                wait(lambda: brokers[1].node.controller_id() == 1, 10, "broker 1 the controller")
        wait(lambda: all(len(b.node.view.brokers) == 3 and b.node.controller_id() == 1 for b in brokers.values()),
             10, "3 registered brokers, broker 1 the controller")
        yield brokers
    finally:
        for b in brokers.values():
            b.stop()


def create_topic(broker, name, partitions=-1, rf=-1, assignment=None, validate_only=False):
    from kio.schema.create_topics.v5 import request as q

    from kavka.api.responses import make
    from kavka.client import Client
    topic = make(q.CreatableTopic, name=name, num_partitions=partitions, replication_factor=rf, configs=(),
                 assignments=tuple(make(q.CreatableReplicaAssignment, partition_index=p, broker_ids=tuple(r))
                                   for p, r in enumerate(assignment or ())))
    body = make(q.CreateTopicsRequest, topics=(topic,), timeout=datetime.timedelta(seconds=10),
                validate_only=validate_only)
    with Client(broker.bootstrap_servers, timeout=20) as client:
        result = client.request(body).topics[0]
    return result.error_code, result.error_message


def create_partitions(broker, name, count, validate_only=False):
    from kio.schema.create_partitions.v3 import request as q

    from kavka.api.responses import make
    from kavka.client import Client
    body = make(q.CreatePartitionsRequest, topics=(make(q.CreatePartitionsTopic, name=name, count=count,
                                                        assignments=None),),
                timeout=datetime.timedelta(seconds=10), validate_only=validate_only)
    with Client(broker.bootstrap_servers, timeout=20) as client:
        result = client.request(body).results[0]
    return result.error_code, result.error_message


def held(brokers):
    """Partitions each broker holds on disk."""
    return {i: sum(t.partitions for t in b.logs.topics().values()) for i, b in brokers.items()}


def test_controller_refuses_replicas_beyond_the_per_broker_cap(capped):
    brokers = capped
    assert create_topic(brokers[2], "six", 6, 3)[0] == 0              # 6 replicas on every broker
    wait(lambda: held(brokers) == {1: 6, 2: 6, 3: 6}, 10, "six created on every broker")
    # forwarded (the controller refuses), and on the controller (its pre-check, also validate-only);
    # a validate-only request is checked by the receiving broker, whose cap is 1000 on broker 2
    for target, validate_only in ((brokers[2], False), (brokers[1], True), (brokers[1], False)):
        code, message = create_topic(target, "five", 5, 3, validate_only=validate_only)
        assert code == POLICY_VIOLATION and "max.partitions.per.broker=10" in message, (code, message)
    # a manual assignment: only broker 3 would go over (6 + 5 > 10); named in the answer
    code, message = create_topic(brokers[2], "on-three", assignment=[[3]] * 5)
    assert code == POLICY_VIOLATION and "broker 3 holds 6" in message, (code, message)
    assert create_topic(brokers[2], "four-on-one", assignment=[[1]] * 4)[0] == 0   # 6 + 4 = 10 fits
    # CreatePartitions: broker 1 is full now; growing "six" needs a replica on every broker
    for target, validate_only in ((brokers[3], False), (brokers[1], True), (brokers[1], False)):
        code, message = create_partitions(target, "six", 7, validate_only)
        assert code == POLICY_VIOLATION and "broker 1 holds 10" in message, (code, message)
    wait(lambda: held(brokers) == {1: 10, 2: 6, 3: 6}, 10, "four-on-one created")
    for b in brokers.values():   # nothing refused reached etcd
        assert sorted(b.node.metadata.topic_names()) == ["four-on-one", "six"]
        assert len(b.node.view.topics["six"].value.replicas) == 6
