"""One huge request must not stall everyone (issue 9, item 4).

A Metadata request naming 3M topics used to hold the event loop 68 s, and one
naming a topic 99,000 times 1.6 s; a Fetch naming one partition 50,000 times
0.7 s (and it answered that partition's records 50,000 times, 54 MB).  Now the
decoder refuses more than 100,000 array elements (the connection is closed, as
Kafka closes one whose request it cannot parse), repeats are answered once, and
long handlers give the loop back every 512 items.  Meanwhile a confluent-kafka
producer keeps producing, no single delivery waits more than a few seconds
(a liveness bound, not a speed test), and a consumer reads back every record
that was acknowledged.
"""

from __future__ import annotations

import socket
import struct
import threading
import time

import pytest
from confluent_kafka import Consumer, Producer

from kavka.protocol import messages
from kavka.protocol.framing import parse_response_header

STEADY = "steady"
LIVENESS_S = 5.0


def frame(api_key: int, version: int, body: bytes) -> bytes:
    header = struct.pack(">hhi", api_key, version, 7) + struct.pack(">h", 6) + b"attack"
    return struct.pack(">i", len(header) + len(body)) + header + body


def metadata_v4(names: list[bytes]) -> bytes:
    return frame(3, 4, struct.pack(">i", len(names)) + b"".join(struct.pack(">h", len(n)) + n for n in names)
                 + b"\x00")  # allow_auto_topic_creation = false


def fetch_v11(topic: bytes, copies: int) -> bytes:
    partition = struct.pack(">iiqqi", 0, -1, 0, -1, 1 << 20)
    return frame(1, 11, struct.pack(">iiiibii", -1, 0, 1, 50 << 20, 0, 0, -1) + struct.pack(">i", 1)
                 + struct.pack(">h", len(topic)) + topic + struct.pack(">i", copies) + partition * copies
                 + struct.pack(">ih", 0, 0))


def exchange(bootstrap: str, payload: bytes, api_key: int, version: int):
    """Send one request; its decoded answer, or None if the broker closed the connection."""
    host, _, port = bootstrap.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(payload)
        chunks, want = [], None
        received = b""
        while want is None or len(received) < want:
            chunk = sock.recv(1 << 20)
            if not chunk:
                return None
            chunks.append(chunk)
            received = b"".join(chunks)
            if want is None and len(received) >= 4:
                want = 4 + struct.unpack_from(">i", received)[0]
        correlation_id, header_size = parse_response_header(received[4:], flexible=False)
        assert correlation_id == 7
        return messages.decode_response(api_key, version, received[4:], header_size)


class SteadyProducer(threading.Thread):
    """Produces one record at a time until stopped, timing each delivery."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(daemon=True)
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
        self.stop = threading.Event()
        self.acked: list[bytes] = []
        self.worst = 0.0
        self.failures: list[str] = []

    def run(self) -> None:
        for i in range(100_000):  # bounded; stopped long before
            if self.stop.is_set():
                return
            value = b"v%d" % i
            start = time.monotonic()
            errors = []
            self.producer.produce(STEADY, value, on_delivery=lambda err, _msg: errors.append(err))
            self.producer.flush(30)
            self.worst = max(self.worst, time.monotonic() - start)
            if errors and errors[0] is None:
                self.acked.append(value)
            else:
                self.failures.append(str(errors))
            time.sleep(0.005)


def read_back(bootstrap: str, expected: int) -> list[bytes]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "stall-check", "auto.offset.reset": "earliest"})
    consumer.subscribe([STEADY])
    got: list[bytes] = []
    deadline = time.monotonic() + 20
    while len(got) < expected and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got.append(msg.value())
    consumer.close()
    return got


@pytest.mark.slow  # huge requests against a steady client (~5 s)
def test_huge_requests_leave_a_steady_client_working(kavka_broker):
    bootstrap = kavka_broker.bootstrap_servers
    steady = SteadyProducer(bootstrap)
    steady.producer.produce("t", b"x" * 100)  # creates t with data to fetch
    steady.producer.flush(10)
    steady.start()
    try:
        time.sleep(0.3)
        dup = exchange(bootstrap, metadata_v4([b"t"] * 99_000), 3, 4)
        assert [(t.name, t.error_code.value) for t in dup.topics] == [("t", 0)], "answered once"
        distinct = exchange(bootstrap, metadata_v4([b"u%05d" % i for i in range(20_000)]), 3, 4)
        assert len(distinct.topics) == 20_000 and {t.error_code.value for t in distinct.topics} == {3}
        assert exchange(bootstrap, metadata_v4([b""] * 3_000_000), 3, 4) is None, "over the element cap"
        fetch = exchange(bootstrap, fetch_v11(b"t", 50_000), 1, 11)
        [topic] = fetch.responses
        [partition] = topic.partitions
        assert (topic.topic, partition.partition_index, partition.error_code.value) == ("t", 0, 0)
        assert partition.records, "the partition's records, once"
        time.sleep(0.3)
    finally:
        steady.stop.set()
        steady.join(30)
    assert not steady.failures and len(steady.acked) >= 5
    assert steady.worst < LIVENESS_S, f"a delivery waited {steady.worst:.1f} s"
    got = read_back(bootstrap, len(steady.acked))
    assert got[:len(steady.acked)] == steady.acked
