"""Connection limits (issue #9, item 5): idle connections are closed
(connections.max.idle.ms), connections per address are capped
(max.connections.per.ip and its overrides), a frame must finish arriving
(socket.request.receive.timeout.ms); clients within the limits keep working."""

from __future__ import annotations

import logging
import socket
import struct
import time

import pytest
import datetime

from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic

from kavka.client import Client

API_VERSIONS = ApiVersionsRequest(client_software_name="t", client_software_version="1")


def fetch_request(topic: str, offset: int, max_wait_s: float) -> FetchRequest:
    return FetchRequest(
        replica_id=-1, max_wait=datetime.timedelta(seconds=max_wait_s), min_bytes=1,
        max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1, forgotten_topics_data=(),
        rack_id="", topics=(FetchTopic(topic=topic, partitions=(FetchPartition(
            partition=0, current_leader_epoch=-1, fetch_offset=offset, last_fetched_epoch=-1,
            log_start_offset=-1, partition_max_bytes=1 << 20),)),))


def create(client: Client, topic: str) -> None:
    client.request(MetadataRequest(topics=(MetadataRequestTopic(name=topic, topic_id=None),),
                                   allow_auto_topic_creation=True, include_topic_authorized_operations=False))


def raw(broker) -> socket.socket:
    host, _, port = broker.bootstrap_servers.rpartition(":")
    return socket.create_connection((host, int(port)), timeout=5)


def closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def refused(sock: socket.socket) -> bool:
    return closed_within(sock, 5)


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_idle_connections_are_closed_and_active_ones_kept(kavka_broker_factory, caplog):
    caplog.set_level(logging.INFO, logger="kavka.server")
    broker = kavka_broker_factory({"connections.max.idle.ms": 300})
    idle = [raw(broker) for _ in range(20)]
    active = Client(broker.bootstrap_servers)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:   # one request every 100 ms: never idle for 300 ms
        assert active.request(API_VERSIONS).error_code == 0
        time.sleep(0.1)
    assert all(closed_within(s, 3) for s in idle)
    assert active.request(API_VERSIONS).error_code == 0
    assert any("connections.max.idle.ms" in r.getMessage() for r in caplog.records)
    active.close()
    for s in idle:
        s.close()


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_a_parked_fetch_is_not_idle(kavka_broker_factory):
    broker = kavka_broker_factory({"connections.max.idle.ms": 200})
    with Client(broker.bootstrap_servers) as client:
        create(client, "parked")
        started = time.monotonic()
        response = client.request(fetch_request("parked", 0, max_wait_s=1.0))   # 5x the idle limit
        assert time.monotonic() - started >= 0.9
        assert response.responses[0].partitions[0].error_code == 0


def test_connections_per_ip_are_capped(kavka_broker_factory, caplog):
    caplog.set_level(logging.WARNING, logger="kavka.server")
    broker = kavka_broker_factory({"max.connections.per.ip": 2})
    first, second = Client(broker.bootstrap_servers), Client(broker.bootstrap_servers)
    third = raw(broker)
    assert refused(third)
    assert any("max.connections.per.ip=2" in r.getMessage() for r in caplog.records)
    assert first.request(API_VERSIONS).error_code == 0
    second.close()
    time.sleep(0.2)   # the broker notices the close
    replacement = Client(broker.bootstrap_servers)   # the slot came back
    assert replacement.request(API_VERSIONS).error_code == 0
    for conn in (first, replacement):
        conn.close()
    third.close()


def test_per_ip_override_raises_the_cap_for_that_address(kavka_broker_factory):
    broker = kavka_broker_factory({"max.connections.per.ip": 1, "max.connections.per.ip.overrides": "127.0.0.1:3"})
    clients = [Client(broker.bootstrap_servers) for _ in range(3)]
    fourth = raw(broker)
    assert refused(fourth)
    assert all(c.request(API_VERSIONS).error_code == 0 for c in clients)
    for c in clients:
        c.close()
    fourth.close()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("declared", [100, 1_000_000], ids=["small-frame", "big-frame"])
def test_a_frame_that_never_finishes_arriving_closes_the_connection(kavka_broker_factory, caplog, declared):
    caplog.set_level(logging.INFO, logger="kavka.server")
    broker = kavka_broker_factory({"socket.request.receive.timeout.ms": 300})
    slow = raw(broker)
    slow.sendall(struct.pack(">i", declared) + b"\x00\x12\x00\x03")
    started = time.monotonic()
    while time.monotonic() - started < 1.0:   # trickling keeps it active, but the frame is late
        try:
            slow.send(b"\x00")
        except OSError:
            break
        time.sleep(0.05)
    assert closed_within(slow, 3)
    assert any("socket.request.receive.timeout.ms" in r.getMessage() for r in caplog.records)
    with Client(broker.bootstrap_servers) as client:
        assert client.request(API_VERSIONS).error_code == 0
    slow.close()
