"""Several listeners on one broker: each client is told the endpoints of the listener it
connected through (Metadata, DescribeCluster, FindCoordinator), and ``kavka serve`` opens every
listener of ``listeners``."""

from __future__ import annotations


from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from test_cli_serve import free_port, serve, stop, wait_listening

from kavka.client import Client

LISTENERS = "PLAINTEXT://127.0.0.1:0,CLIENTS://127.0.0.1:0,REPLICATION://127.0.0.1:0"
PROTOCOLS = "PLAINTEXT:PLAINTEXT,CLIENTS:PLAINTEXT,REPLICATION:PLAINTEXT"


def _brokers_seen(bootstrap: str) -> dict[int, str]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    md = admin.list_topics(timeout=10)
    return {b.id: f"{b.host}:{b.port}" for b in md.brokers.values()}


def test_each_listener_advertises_its_own_endpoint(kavka_broker_factory):
    broker = kavka_broker_factory({"listener.security.protocol.map": PROTOCOLS,
                                   "inter.broker.listener.name": "REPLICATION"}, listeners=LISTENERS)
    for name in ("PLAINTEXT", "CLIENTS", "REPLICATION"):
        bootstrap = broker.bootstrap(name)
        assert _brokers_seen(bootstrap) == {0: bootstrap}
    assert len({broker.bootstrap(n) for n in ("PLAINTEXT", "CLIENTS", "REPLICATION")}) == 3
    # What a cluster registers: the inter-broker listener's address, and every listener.
    ctx = broker.context
    assert f"{ctx.host}:{ctx.port}" == broker.bootstrap("REPLICATION")
    assert [name for name, _h, _p in ctx.listeners] == ["PLAINTEXT", "CLIENTS", "REPLICATION"]


def _answered(bootstrap: str) -> tuple[list, list]:
    """(Metadata brokers, FindCoordinator's coordinator) as one listener answers them."""
    from kio.schema.find_coordinator.v3.request import FindCoordinatorRequest
    from kio.schema.metadata.v4.request import MetadataRequest
    with Client(bootstrap) as c:
        md = c.request(MetadataRequest(topics=None, allow_auto_topic_creation=False))
        found = c.request(FindCoordinatorRequest(key="g", key_type=0))
    return [(b.host, b.port) for b in md.brokers], [(found.host, found.port)]


def test_advertised_listeners_by_name_and_the_coordinator_on_the_same_listener(kavka_broker_factory):
    port = free_port()   # CLIENTS advertises localhost and PLAINTEXT's port (as behind a proxy)
    broker = kavka_broker_factory({"listener.security.protocol.map": PROTOCOLS},
                                  listeners=f"PLAINTEXT://127.0.0.1:{port},CLIENTS://127.0.0.1:0",
                                  advertised=f"CLIENTS://localhost:{port}")
    assert _answered(broker.bootstrap("PLAINTEXT")) == ([("127.0.0.1", port)], [("127.0.0.1", port)])
    assert _answered(broker.bootstrap("CLIENTS")) == ([("localhost", port)], [("localhost", port)])
    bootstrap = broker.bootstrap("PLAINTEXT")
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce("multi", b"v")
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "g", "auto.offset.reset": "earliest"})
    consumer.subscribe(["multi"])
    try:
        msg = None
        for _ in range(40):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                break
        assert msg is not None and msg.value() == b"v"
    finally:
        consumer.close()


def test_serve_opens_every_listener(tmp_path):
    first, second = free_port(), free_port()
    proc = serve("--data-dir", str(tmp_path), "--override",
                 f"listeners=PLAINTEXT://127.0.0.1:{first},CLIENTS://127.0.0.1:{second}",
                 "--override", f"listener.security.protocol.map={PROTOCOLS}")
    try:
        wait_listening(first, proc)
        wait_listening(second, proc)
        assert _brokers_seen(f"127.0.0.1:{second}") == {0: f"127.0.0.1:{second}"}
        assert _brokers_seen(f"127.0.0.1:{first}") == {0: f"127.0.0.1:{first}"}
    finally:
        stop(proc)
