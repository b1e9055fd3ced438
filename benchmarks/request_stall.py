"""How long one huge request stalls everybody else (issue 9, item 4).

A ``kavka serve`` process gets a steady client (a Metadata request for one
topic, back to back, over its own connection) while an attacker connection
sends one huge request at a time; the steady client's round-trip times are
summarised for a quiet phase and for each attack, in the same run:

* ``metadata-dup``: Metadata v4 naming one existing topic N times;
* ``metadata-distinct``: Metadata v4 naming N distinct unknown topics (no auto-create);
* ``fetch-dup``: Fetch v11 naming partition 0 of a topic with data 50,000 times;
* ``metadata-create``: Metadata v4 auto-creating ``--creates`` new topics.

    PYTHONPATH=src python3 benchmarks/request_stall.py [--names 99000] [--src DIR]

``--src`` runs another checkout's broker (e.g. ``git worktree add /tmp/before HEAD~1``, then
``--src /tmp/before/src``) for a before/after.
"""

from __future__ import annotations

import argparse
import datetime
import socket
import struct
import tempfile
import threading
import time

import _common
from _common import free_port, latency_summary, launch_kavka, stop_process
from kio.schema.metadata.v4.request import MetadataRequest, MetadataRequestTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from kavka.client import Client
from kavka.protocol.record_codec import encode_batch


def frame(api_key: int, version: int, body: bytes, correlation_id: int = 1) -> bytes:
    header = struct.pack(">hhi", api_key, version, correlation_id) + struct.pack(">h", 6) + b"attack"
    return struct.pack(">i", len(header) + len(body)) + header + body


def metadata_v4(names: list[bytes], create: bool = False) -> bytes:
    parts = [struct.pack(">i", len(names))]
    parts += [struct.pack(">h", len(n)) + n for n in names]
    return frame(3, 4, b"".join(parts) + (b"\x01" if create else b"\x00"))  # allow_auto_topic_creation


def fetch_v11(topic: bytes, copies: int) -> bytes:
    partition = struct.pack(">iiqqi", 0, -1, 0, -1, 1 << 20)
    body = (struct.pack(">iiiibii", -1, 0, 1, 50 << 20, 0, 0, -1)
            + struct.pack(">i", 1) + struct.pack(">h", len(topic)) + topic + struct.pack(">i", copies)
            + partition * copies + struct.pack(">i", 0) + struct.pack(">h", 0))
    return frame(1, 11, body)


def attack_once(bootstrap: str, payload: bytes) -> tuple[float, str]:
    """Send one request; (seconds to its answer or close, what came back)."""
    host, _, port = bootstrap.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=120) as sock:
        start = time.perf_counter()
        sock.sendall(payload)
        head = sock.recv(4)
        if len(head) < 4:
            return time.perf_counter() - start, "closed"
        size, got = struct.unpack(">i", head)[0], 0
        while got < size:
            chunk = sock.recv(min(size - got, 1 << 20))
            if not chunk:
                return time.perf_counter() - start, "closed mid-answer"
            got += len(chunk)
        return time.perf_counter() - start, f"answer of {size} bytes"


def steady(bootstrap: str, stop: threading.Event, out: list[int]) -> None:
    request = MetadataRequest(topics=(MetadataRequestTopic(name="t"),), allow_auto_topic_creation=False)
    with Client(bootstrap) as client:
        while not stop.is_set():
            start = time.perf_counter_ns()
            client.request(request)
            out.append(time.perf_counter_ns() - start)
            time.sleep(0.002)


def phase(bootstrap: str, name: str, payload: bytes | None, repeat: int, quiet_s: float) -> dict:
    lat: list[int] = []
    stop = threading.Event()
    thread = threading.Thread(target=steady, args=(bootstrap, stop, lat))
    thread.start()
    outcomes = []
    if payload is None:
        time.sleep(quiet_s)
    else:
        for _ in range(repeat):
            outcomes.append(attack_once(bootstrap, payload))
    stop.set()
    thread.join()
    summary = latency_summary(lat, len(lat))
    attack = (f"  attacker: {max(t for t, _ in outcomes):.2f} s, {outcomes[-1][1]}" if outcomes else "")
    print(f"{name:18} steady client: {summary['count']:5d} requests  p50 {summary['p50_ms']:7.2f} ms  "
          f"p99 {summary['p99_ms']:8.2f} ms  max {summary['max_ms']:8.2f} ms{attack}", flush=True)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=99_000, help="topics per Metadata attack")
    parser.add_argument("--copies", type=int, default=50_000, help="partition copies per Fetch attack")
    parser.add_argument("--creates", type=int, default=1000, help="new topics auto-created by one Metadata")
    parser.add_argument("--repeat", type=int, default=3, help="attack requests per phase")
    parser.add_argument("--src", help="src directory of the kavka to run (default: this checkout's)")
    args = parser.parse_args()
    if args.src:
        _common.REPO_SRC = args.src
    with tempfile.TemporaryDirectory() as data:
        port = free_port()
        proc, bootstrap = launch_kavka(["-m", "kavka", "serve", "--data-dir", data,
                                        "--listen", f"127.0.0.1:{port}"], port)
        try:
            with Client(bootstrap) as client:
                client.request(MetadataRequest(topics=(MetadataRequestTopic(name="t"),),
                                               allow_auto_topic_creation=True))
                batch = encode_batch([(b"k", b"v" * 100, 1_700_000_000_000, ())] * 10)
                client.request(ProduceRequest(transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=5),
                                              topic_data=(TopicProduceData(name="t", partition_data=(
                                                  PartitionProduceData(index=0, records=batch),)),)))
            phase(bootstrap, "quiet", None, 0, 2.0)
            phase(bootstrap, "metadata-dup", metadata_v4([b"t"] * args.names), args.repeat, 0)
            phase(bootstrap, "metadata-distinct",
                  metadata_v4([b"u%06d" % i for i in range(args.names)]), args.repeat, 0)
            phase(bootstrap, "fetch-dup", fetch_v11(b"t", args.copies), args.repeat, 0)
            phase(bootstrap, "metadata-create", metadata_v4([b"c%06d" % i for i in range(args.creates)], True), 1, 0)
        finally:
            stop_process(proc)


if __name__ == "__main__":
    main()
