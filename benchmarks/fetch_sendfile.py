"""Fetch path: sendfile from the page cache against reading log bytes into Python.

Starts the broker twice on the same data (once as shipped, once with sendfile
switched off so every response is read with ``pread`` and written through the
transport), and drives it with a raw Fetch loop that reads the whole partition
sequentially, so the figure is the broker's fetch path, not a client's record
parsing.  Also times how long an embedded ``kavka.broker.Broker`` takes to start.

    python benchmarks/fetch_sendfile.py [--mib 1024] [--fetch-mib 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic

from _common import free_port, launch_kavka
from kavka.client import Client
from kavka.protocol import messages, records
from kavka.protocol.record_codec import encode_batch

SERVE = ("import sys, kavka.server.connection as c\n"
         "if sys.argv[1] == 'copy': c.SENDFILE_MIN_BYTES = 1 << 62\n"
         "from kavka.cli.main import main\n"
         "sys.exit(main(['serve', '--data-dir', sys.argv[2], '--listen', '127.0.0.1:' + sys.argv[3],"
         " '--log-level', 'WARNING', '--override', 'log.segment.bytes=268435456']))")


def start(mode: str, data_dir: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    return launch_kavka(["-c", SERVE, mode, data_dir, str(port)], port)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(30)


def fill(bootstrap: str, total_bytes: int) -> int:
    """Write ~total_bytes of 1 MiB batches (1 KiB records) with our own client; returns offsets."""
    from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData
    batch = encode_batch([(None, os.urandom(1024), 1_700_000_000_000, ()) for _ in range(1000)])
    from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
    written = 0
    with Client(bootstrap) as client:
        client.request(MetadataRequest(topics=(MetadataRequestTopic(name="fetchbench", topic_id=None),),
                                       allow_auto_topic_creation=True, include_topic_authorized_operations=False))
        while written < total_bytes:
            response = client.request(ProduceRequest(
                transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=30),
                topic_data=(TopicProduceData(name="fetchbench", partition_data=(
                    PartitionProduceData(index=0, records=batch),)),)))
            error = response.responses[0].partition_responses[0].error_code
            if error:
                raise SystemExit(f"produce failed: {error!r}")
            written += len(batch)
    return written // len(batch) * 1000


def read_all(bootstrap: str, end_offset: int, fetch_bytes: int) -> tuple[float, int]:
    """Fetch offsets [0, end) sequentially; returns (seconds, bytes received).

    Responses are received into one reused buffer and parsed just enough to find
    the next offset, so the client costs little next to the broker.
    """
    from kavka.protocol.framing import read_uvarint
    offset, received = 0, 0
    buffer = bytearray(fetch_bytes + (1 << 20))
    view = memoryview(buffer)
    with Client(bootstrap) as client:
        t0 = time.perf_counter()
        while offset < end_offset:
            request = FetchRequest(
                replica_id=-1, max_wait=datetime.timedelta(0), min_bytes=1, max_bytes=fetch_bytes,
                isolation_level=0, session_id=0, session_epoch=-1, forgotten_topics_data=(), rack_id="",
                topics=(FetchTopic(topic="fetchbench", partitions=(FetchPartition(
                    partition=0, current_leader_epoch=-1, fetch_offset=offset, last_fetched_epoch=-1,
                    log_start_offset=-1, partition_max_bytes=fetch_bytes),)),))
            client._correlation += 1
            client.send_raw(messages.encode_request_frame(request, client._correlation, "bench"))
            size = _recv_into(client.sock, view[:4])
            size = int.from_bytes(buffer[:4], "big")
            _recv_into(client.sock, view[:size])
            # v12 body after the 5-byte header: throttle, error, session, 1 topic, 1 partition
            pos = 5 + 4 + 2 + 4 + 1
            name_len, pos = read_uvarint(buffer, pos)
            pos += name_len - 1 + 1 + 4 + 2 + 8 + 8 + 8 + 1 + 4
            records_len, pos = read_uvarint(buffer, pos)
            records_len -= 1
            received += records_len
            last = None
            for _pos, header in records.iter_batches(view[pos:pos + records_len]):
                last = header
            if last is None:
                raise SystemExit(f"no progress at offset {offset}")
            offset = last.next_offset
        return time.perf_counter() - t0, received


def _recv_into(sock: socket.socket, view: memoryview) -> int:
    got = 0
    while got < len(view):
        n = sock.recv_into(view[got:])
        if n == 0:
            raise SystemExit("broker closed the connection")
        got += n
    return got


def peak_rss_mb(pid: int) -> float:
    """VmHWM: the most memory the broker process ever had resident."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def embedded_start_ms(rounds: int = 5) -> float:
    from kavka.broker import Broker
    best = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        broker = Broker().start()
        best.append((time.perf_counter() - t0) * 1000)
        broker.stop()
    return sorted(best)[len(best) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=1024, help="log size to read back (MiB)")
    parser.add_argument("--fetch-mib", type=int, default=8, help="max bytes per fetch (MiB)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per mode")
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="kavka-fetchbench-")
    try:
        proc, bootstrap = start("sendfile", data_dir)
        try:
            end = fill(bootstrap, args.mib << 20)
        finally:
            stop(proc)
        results: dict[str, list[float]] = {"sendfile": [], "copy": []}
        cpu: dict[str, list[float]] = {"sendfile": [], "copy": []}
        peak: dict[str, list[float]] = {"sendfile": [], "copy": []}
        for _ in range(args.rounds):  # interleave: the disk and cache change phases
            for mode in results:
                proc, bootstrap = start(mode, data_dir)
                try:
                    read_all(bootstrap, min(end, 20_000), args.fetch_mib << 20)  # warm up
                    cpu0 = cpu_seconds(proc.pid)
                    seconds, received = read_all(bootstrap, end, args.fetch_mib << 20)
                    cpu[mode].append((cpu_seconds(proc.pid) - cpu0) / (received / 1e9))
                    peak[mode].append(peak_rss_mb(proc.pid))
                finally:
                    stop(proc)
                results[mode].append(received / seconds / 1e6)
        print(f"log {args.mib} MiB of 1 KiB records, fetches of {args.fetch_mib} MiB, {args.rounds} rounds")
        medians = {mode: sorted(v)[len(v) // 2] for mode, v in results.items()}
        for mode, values in results.items():
            print(f"  {mode:9s} median {medians[mode]:6.0f} MB/s, broker CPU "
                  f"{sorted(cpu[mode])[len(values) // 2]:.2f} s per GB, peak RSS "
                  f"{max(peak[mode]):.0f} MB   runs: "
                  + ", ".join(f"{v:.0f}" for v in values))
        print(f"  sendfile / copy = {medians['sendfile'] / medians['copy']:.2f}x")
        print(f"embedded Broker().start(): median {embedded_start_ms():.0f} ms")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
