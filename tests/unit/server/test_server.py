"""The server shell: ordered pipelined responses, connection cap, long-poll wake-up, shutdown."""

from __future__ import annotations

import datetime
import socket
import struct
import threading

import pytest
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from kavka.client import Client
from kavka.protocol import messages
from kavka.protocol.framing import parse_response_header
from kavka.protocol.record_codec import encode_batch


def fetch_request(topic: str, offset: int, max_wait_s: float, min_bytes: int = 1) -> FetchRequest:
    return FetchRequest(
        replica_id=-1, max_wait=datetime.timedelta(seconds=max_wait_s), min_bytes=min_bytes,
        max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1, forgotten_topics_data=(),
        rack_id="", topics=(FetchTopic(topic=topic, partitions=(FetchPartition(
            partition=0, current_leader_epoch=-1, fetch_offset=offset, last_fetched_epoch=-1,
            log_start_offset=-1, partition_max_bytes=1 << 20),)),))


def produce_one(client: Client, topic: str, value: bytes) -> int:
    batch = encode_batch([(None, value, 1_700_000_000_000, ())])
    response = client.request(ProduceRequest(
        transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=5),
        topic_data=(TopicProduceData(name=topic, partition_data=(PartitionProduceData(index=0, records=batch),)),)))
    return response.responses[0].partition_responses[0].base_offset


def create(client: Client, topic: str) -> None:
    client.request(MetadataRequest(topics=(MetadataRequestTopic(name=topic, topic_id=None),),
                                   allow_auto_topic_creation=True, include_topic_authorized_operations=False))


def test_pipelined_requests_are_answered_in_order(kavka_broker):
    frames = []
    for correlation_id in range(1, 201):
        request = (ApiVersionsRequest(client_software_name="t", client_software_version="1") if correlation_id % 2
                   else MetadataRequest(topics=None, allow_auto_topic_creation=False,
                                        include_topic_authorized_operations=False))
        frames.append(messages.encode_request_frame(request, correlation_id, "pipeline"))
    with Client(kavka_broker.bootstrap_servers) as client:
        client.send_raw(b"".join(frames))  # all at once, before reading anything
        seen = []
        for correlation_id in range(1, 201):
            frame = client.recv_frame()
            flexible = correlation_id % 2 == 0  # ApiVersions answers with header v0
            seen.append(parse_response_header(frame, flexible)[0])
    assert seen == list(range(1, 201))


def test_connection_cap(kavka_broker_factory):
    broker = kavka_broker_factory({"max.connections": 2})
    host, port = broker.bootstrap_servers.split(":")
    first, second = Client(broker.bootstrap_servers), Client(broker.bootstrap_servers)
    third = socket.create_connection((host, int(port)), timeout=5)
    assert third.recv(1) == b""  # refused by closing
    assert first.request(ApiVersionsRequest(client_software_name="t", client_software_version="1")).error_code == 0
    for conn in (first, second):
        conn.close()
    third.close()


@pytest.mark.timeout(20)
def test_long_poll_is_woken_by_an_append(kavka_broker):
    with Client(kavka_broker.bootstrap_servers) as producer, Client(kavka_broker.bootstrap_servers) as fetcher:
        create(producer, "wake")
        result = {}

        def fetch():
            response = fetcher.request(fetch_request("wake", 0, max_wait_s=60))
            result["records"] = response.responses[0].partitions[0].records

        waiter = threading.Thread(target=fetch)
        waiter.start()
        waiter.join(0.3)
        assert waiter.is_alive(), "the fetch must park while there is no data"
        produce_one(producer, "wake", b"hello")
        waiter.join(10)  # far less than the 60 s max wait
        assert not waiter.is_alive()
        assert b"hello" in result["records"]


def test_fetch_without_data_waits_at_most_max_wait(kavka_broker):
    with Client(kavka_broker.bootstrap_servers) as client:
        create(client, "quiet")
        response = client.request(fetch_request("quiet", 0, max_wait_s=0.2))
    partition = response.responses[0].partitions[0]
    assert partition.error_code == 0 and not partition.records


@pytest.mark.slow
@pytest.mark.timeout(30)
def test_stop_with_a_parked_fetch_finishes(kavka_broker_factory):
    broker = kavka_broker_factory()
    client = Client(broker.bootstrap_servers)
    create(client, "parked")
    client.send_raw(messages.encode_request_frame(fetch_request("parked", 0, max_wait_s=600), 99, "t"))
    broker.stop(timeout=1.0)  # must not wait for the 600 s long poll
    client.sock.settimeout(5)
    try:
        data = client.sock.recv(1 << 16)
    except ConnectionError:
        data = b""
    if data:  # answered (empty) before closing: a valid frame for correlation id 99
        assert struct.unpack(">ii", data[:8])[1] == 99
    client.close()
