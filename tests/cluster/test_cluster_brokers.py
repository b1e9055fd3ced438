"""Three in-process brokers in cluster mode on a real etcd, driven by real clients.

Brokers run in this process (each on its own event loop thread); stopping one
revokes its lease at once, so failover takes a moment, not a session timeout.
The process-level kill -9 / SIGSTOP / network-partition tests are in tests/faults.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kavka.broker import Broker
from kavka.cluster.node import ClusterSettings

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def cluster(etcd, tmp_path):
    settings = ClusterSettings(etcd.endpoint, "t-" + uuid.uuid4().hex[:10], 2000)
    config = {"replica.lag.time.max.ms": "2000", "group.initial.rebalance.delay.ms": "0",
              "offsets.topic.num.partitions": "6", "num.partitions": "2", "default.replication.factor": "3",
              "leader.imbalance.check.interval.seconds": "1"}
    brokers = {}

    def start(i):
        brokers[i] = Broker(tmp_path / f"b{i}", config={**config, "broker.id": str(i), "broker.rack": f"rack-{i}"},
                            cluster=settings).start()
        return brokers[i]

    for i in (1, 2, 3):
        start(i)
    wait(lambda: all(len(b.node.view.brokers) == 3 and b.node.controller_id() > 0 for b in brokers.values()),
         10, "3 registered brokers and a controller")
    yield brokers, start
    for b in brokers.values():
        b.stop()


def wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached within {timeout}s")


def bootstrap(brokers, *ids):
    return ",".join(brokers[i].bootstrap_servers for i in ids or brokers)


def non_controller(brokers) -> int:
    controller = next(iter(brokers.values())).node.controller_id()
    return next(i for i in brokers if i != controller)


def test_metadata_topics_and_placement(cluster):
    brokers, _ = cluster
    other = non_controller(brokers)
    admin = AdminClient({"bootstrap.servers": bootstrap(brokers, other)})   # forwarded to the controller
    admin.create_topics([NewTopic("placed", 6, 3)])["placed"].result(10)
    with pytest.raises(KafkaException, match="INVALID_REPLICATION_FACTOR|larger than available brokers"):
        admin.create_topics([NewTopic("too-many", 1, 4)])["too-many"].result(10)
    md = admin.list_topics(timeout=5)
    assert sorted(md.brokers) == [1, 2, 3]
    assert md.controller_id in (1, 2, 3)
    assert md.cluster_id == brokers[1].node.settings.cluster_id     # the same from every broker
    for i in (1, 2, 3):
        one = AdminClient({"bootstrap.servers": bootstrap(brokers, i)}).list_topics(timeout=5)
        assert one.cluster_id == md.cluster_id
    parts = md.topics["placed"].partitions
    assert len(parts) == 6
    assert all(sorted(p.replicas) == [1, 2, 3] and sorted(p.isrs) == [1, 2, 3] for p in parts.values())
    leaders = [p.leader for p in parts.values()]
    assert sorted(leaders.count(b) for b in (1, 2, 3)) == [2, 2, 2]
    # Every broker holds the topic with the cluster's topic id.
    ids = {str(b.logs.topic("placed").topic_id) for b in brokers.values()}
    assert len(ids) == 1


def test_auto_create_and_delete_through_any_broker(cluster):
    brokers, _ = cluster
    other = non_controller(brokers)
    producer = Producer({"bootstrap.servers": bootstrap(brokers, other), "acks": "all"})
    producer.produce("auto", b"x")
    assert producer.flush(15) == 0
    admin = AdminClient({"bootstrap.servers": bootstrap(brokers, other)})
    assert len(admin.list_topics(timeout=5).topics["auto"].partitions) == 2
    admin.delete_topics(["auto"])["auto"].result(10)
    wait(lambda: all(b.logs.topic("auto") is None for b in brokers.values()), 10, "the topic gone everywhere")


def test_replicated_produce_consume_and_failover_keep_data_and_offsets(cluster):
    brokers, _ = cluster
    admin = AdminClient({"bootstrap.servers": bootstrap(brokers)})
    admin.create_topics([NewTopic("orders", 1, 3, config={"min.insync.replicas": "2"})])["orders"].result(10)
    producer = Producer({"bootstrap.servers": bootstrap(brokers), "acks": "all", "enable.idempotence": True})
    acked = []
    for i in range(200):
        producer.produce("orders", str(i).encode(), on_delivery=lambda e, m: e or acked.append(m.offset()))
    assert producer.flush(15) == 0 and len(acked) == 200

    consumer = Consumer({"bootstrap.servers": bootstrap(brokers), "group.id": "billing",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["orders"])
    seen = _consume(consumer, 120)
    consumer.commit(offsets=[TopicPartition("orders", 0, 120)], asynchronous=False)
    consumer.close()
    assert seen[:120] == [str(i).encode() for i in range(120)]

    leader = admin.list_topics("orders", timeout=5).topics["orders"].partitions[0].leader
    coordinator = _coordinator(brokers, "billing")
    victims = {leader, coordinator}
    for v in victims:
        brokers[v].stop()
    survivors = [i for i in brokers if i not in victims]
    admin = AdminClient({"bootstrap.servers": bootstrap(brokers, *survivors)})
    wait(lambda: admin.list_topics("orders", timeout=5).topics["orders"].partitions[0].leader in survivors, 15,
         "a new leader for orders")
    if len(survivors) >= 2:
        producer = Producer({"bootstrap.servers": bootstrap(brokers, *survivors), "acks": "all"})
        producer.produce("orders", b"after")
        assert producer.flush(15) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap(brokers, *survivors), "group.id": "billing",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["orders"])
    rest = _consume(consumer, 80)
    consumer.close()
    assert rest[:80] == [str(i).encode() for i in range(120, 200)]   # resumed at the committed offset


def _consume(consumer, n, timeout=30):
    out, deadline = [], time.monotonic() + timeout
    while len(out) < n and time.monotonic() < deadline:
        for m in consumer.consume(100, 0.5):
            if not m.error():
                out.append(m.value())
    return out


def _coordinator(brokers, group) -> int:
    node = next(iter(brokers.values())).node
    found = node.metadata.group_coordinator(group)
    assert found is not None
    return found.broker_id


def test_a_restarted_broker_catches_up_and_rejoins_the_isr(cluster):
    brokers, start = cluster
    admin = AdminClient({"bootstrap.servers": bootstrap(brokers)})
    admin.create_topics([NewTopic("catch", 1, 3)])["catch"].result(10)
    follower = next(i for i, p in [(b, admin.list_topics("catch", timeout=5).topics["catch"].partitions[0])
                                   for b in brokers] if p.leader != i)
    brokers[follower].stop()
    producer = Producer({"bootstrap.servers": bootstrap(brokers, *[i for i in brokers if i != follower]),
                         "acks": "all"})
    for i in range(100):
        producer.produce("catch", str(i).encode())
    assert producer.flush(20) == 0
    wait(lambda: sorted(admin.list_topics("catch", timeout=5).topics["catch"].partitions[0].isrs)
         == sorted(i for i in brokers if i != follower), 15, "the stopped follower out of the ISR")
    start(follower)
    wait(lambda: sorted(admin.list_topics("catch", timeout=5).topics["catch"].partitions[0].isrs) == [1, 2, 3],
         20, "the follower back in the ISR")
    plog = brokers[follower].logs.partition("catch", 0).log
    assert plog.log_end_offset == 100
    consumer = Consumer({"bootstrap.servers": bootstrap(brokers), "group.id": "x", "enable.auto.commit": False})
    consumer.assign([TopicPartition("catch", 0, 0)])
    assert _consume(consumer, 100) == [str(i).encode() for i in range(100)]
    consumer.close()


def test_partitions_added_through_any_broker(cluster):
    from confluent_kafka.admin import NewPartitions
    brokers, _ = cluster
    other = non_controller(brokers)
    admin = AdminClient({"bootstrap.servers": bootstrap(brokers, other)})
    admin.create_topics([NewTopic("grow", 2, 2)])["grow"].result(10)
    admin.create_partitions([NewPartitions("grow", 5)])["grow"].result(10)
    with pytest.raises(KafkaException, match="INVALID_PARTITIONS"):
        admin.create_partitions([NewPartitions("grow", 3)])["grow"].result(10)
    parts = admin.list_topics("grow", timeout=5).topics["grow"].partitions
    assert sorted(parts) == [0, 1, 2, 3, 4]
    assert all(len(p.replicas) == 2 and p.leader in p.replicas for p in parts.values())
    producer = Producer({"bootstrap.servers": bootstrap(brokers), "acks": "all"})
    for p in range(5):
        producer.produce("grow", b"x", partition=p)
    assert producer.flush(15) == 0


@pytest.mark.slow
def test_leadership_returns_to_the_preferred_replica(cluster):
    brokers, start = cluster
    admin = AdminClient({"bootstrap.servers": bootstrap(brokers)})
    admin.create_topics([NewTopic("pref", 3, 3)])["pref"].result(10)
    leaders = lambda: {p: m.leader for p, m in admin.list_topics("pref", timeout=5).topics["pref"].partitions.items()}  # noqa
    preferred = {p: m.replicas[0] for p, m in admin.list_topics("pref", timeout=5).topics["pref"].partitions.items()}
    assert leaders() == preferred
    victim = preferred[0]
    brokers[victim].stop()
    admin = AdminClient({"bootstrap.servers": bootstrap(brokers, *[i for i in brokers if i != victim])})
    wait(lambda: victim not in leaders().values(), 10, "leadership moved away")
    start(victim)
    wait(lambda: leaders() == preferred, 20, "leadership back on the preferred replicas")


def test_topic_configs_are_stored_in_the_cluster_and_applied_by_every_replica(cluster):
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
    brokers, _ = cluster
    other = non_controller(brokers)
    admin = AdminClient({"bootstrap.servers": bootstrap(brokers, other)})
    admin.create_topics([NewTopic("conf", 1, 2, config={"retention.ms": "60000"})])["conf"].result(10)
    resource = ConfigResource("TOPIC", "conf", incremental_configs=[
        ConfigEntry("min.insync.replicas", "2", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE)])
    admin.incremental_alter_configs([resource])[resource].result(10)
    replicas = admin.list_topics("conf", timeout=5).topics["conf"].partitions[0].replicas
    wait(lambda: all(getattr(brokers[i].logs.topic("conf"), "overrides", None) == {"min.insync.replicas": "2"}
                     for i in replicas), 10,  # a replica may not have created the topic yet
         "every replica applying the new overrides")
    bad = ConfigResource("TOPIC", "conf", incremental_configs=[
        ConfigEntry("min.insync.replicas", "zero", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException, match="INVALID_CONFIG"):
        admin.incremental_alter_configs([bad])[bad].result(10)
    for broker_id in brokers:   # any broker describes it, replica or not
        a = AdminClient({"bootstrap.servers": bootstrap(brokers, broker_id)})
        described = a.describe_configs([ConfigResource("TOPIC", "conf")])
        entries = next(iter(described.values())).result(10)
        assert entries["min.insync.replicas"].value == "2"
        assert entries["retention.ms"].value == "604800000"


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_a_group_reads_partitions_led_by_every_broker(cluster, protocol):
    brokers, _ = cluster
    admin = AdminClient({"bootstrap.servers": bootstrap(brokers)})
    admin.create_topics([NewTopic(f"spread-{protocol}", 3, 1)])[f"spread-{protocol}"].result(10)
    topic = f"spread-{protocol}"
    producer = Producer({"bootstrap.servers": bootstrap(brokers)})
    for p in range(3):
        for i in range(10):
            producer.produce(topic, f"{p}-{i}".encode(), partition=p)
    assert producer.flush(10) == 0
    assert len({m.leader for m in admin.list_topics(topic, timeout=5).topics[topic].partitions.values()}) == 3
    consumer = Consumer({"bootstrap.servers": bootstrap(brokers), "group.id": f"spread-{protocol}",
                         "group.protocol": protocol, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got = _consume(consumer, 30)
    consumer.close()
    assert sorted(got) == sorted(f"{p}-{i}".encode() for p in range(3) for i in range(10))


def test_explicit_replica_assignments_are_kept(cluster):
    from kafka.admin import KafkaAdminClient
    from kafka.admin import NewTopic as KNewTopic
    from kafka.errors import InvalidReplicationAssignmentError
    brokers, _ = cluster
    kadmin = KafkaAdminClient(bootstrap_servers=bootstrap(brokers, non_controller(brokers)))
    try:
        kadmin.create_topics([KNewTopic("manual", -1, -1, replica_assignments={0: [3, 1], 1: [2, 3], 2: [1, 2]})])
        with pytest.raises(InvalidReplicationAssignmentError):
            kadmin.create_topics([KNewTopic("bad-manual", -1, -1, replica_assignments={0: [1, 9]})])
    finally:
        kadmin.close()
    admin = AdminClient({"bootstrap.servers": bootstrap(brokers)})
    parts = admin.list_topics("manual", timeout=5).topics["manual"].partitions
    assert {p: tuple(m.replicas) for p, m in parts.items()} == {0: (3, 1), 1: (2, 3), 2: (1, 2)}
    assert {p: m.leader for p, m in parts.items()} == {0: 3, 1: 2, 2: 1}
