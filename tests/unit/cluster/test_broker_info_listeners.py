"""A broker registers every listener in etcd; brokers with one listener encode as before."""

from kavka.cluster.model import BrokerInfo
from kavka.metadata.model import BrokerEndpoint


def test_listeners_round_trip_and_are_absent_for_one_listener():
    info = BrokerInfo(1, "b1", 9093, listeners=(("CLIENTS", "c1", 9092), ("REPLICATION", "b1", 9093)))
    assert BrokerInfo.decode(info.encode()) == info
    plain = BrokerInfo(1, "b1", 9092)
    assert b"listeners" not in plain.encode() and BrokerInfo.decode(plain.encode()) == plain


def test_an_endpoint_answers_the_clients_listener_else_its_registered_address():
    b = BrokerEndpoint(1, "b1", 9093, None, (("CLIENTS", "c1", 9092), ("REPLICATION", "b1", 9093)))
    assert b.on("CLIENTS") == ("c1", 9092)
    assert b.on("OTHER") == ("b1", 9093)
