"""Leadership moves in a three-broker cluster, for the ElectLeaders tests here and the
kafka-leader-election test in tests/clients: broker 1 is stopped until the other brokers lead
the partitions it prefers, then started again, so that only an election gives them back."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient, NewTopic

from admin_targets import AdminTarget, start_cluster
from admin_targets import wait_until as wait


def start_without_rebalance(etcd_endpoint: str, directory) -> AdminTarget:
    """Three brokers with ``auto.leader.rebalance.enable`` off: only a requested election
    moves leadership back."""
    return start_cluster(etcd_endpoint, directory, extra={"auto.leader.rebalance.enable": "false"})


def admin_of(brokers, *ids):
    return AdminClient({"bootstrap.servers": ",".join(brokers[i].bootstrap_servers for i in ids or brokers)})


def partitions(admin, topic):
    return admin.list_topics(topic, timeout=5).topics[topic].partitions


def lose_broker_1s_leaderships(brokers, start, admin, topic, while_down=lambda others, mine: None):
    """Create ``topic`` (3 partitions, 3 replicas), stop broker 1 until others lead the
    partitions it prefers, call ``while_down``, start it again and wait until it is back in
    every ISR.  (preferred leader per partition, the partitions broker 1 prefers)."""
    admin.create_topics([NewTopic(topic, 3, 3)])[topic].result(10)
    preferred = {p: m.replicas[0] for p, m in partitions(admin, topic).items()}
    mine = sorted(p for p, b in preferred.items() if b == 1)
    assert mine and {m.leader for m in partitions(admin, topic).values()} == {1, 2, 3}
    brokers[1].stop()
    others = admin_of(brokers, 2, 3)
    wait(lambda: all(partitions(others, topic)[p].leader not in (-1, 1) for p in mine), 10,
         "broker 1's partitions led elsewhere")
    while_down(others, mine)
    start(1)
    wait(lambda: all(sorted(m.isrs) == [1, 2, 3] for m in partitions(admin, topic).values()), 20,
         "broker 1 back in every ISR")
    assert all(partitions(admin, topic)[p].leader != 1 for p in mine)   # nothing moved it back by itself
    return preferred, mine
