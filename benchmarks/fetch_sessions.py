"""Fetch sessions (KIP-227): full against incremental fetches of 1,000 partitions, same run.

One ``kavka serve`` child; one consumer-like raw-protocol fetcher (Fetch v12, max_wait 0)
loops over every partition of one topic.  Before each fetch one record is produced to one
partition (round robin), so each answer has news for one partition.  Full mode sends every
partition each time without a session (epoch -1); incremental mode opens a session
(epoch 0) and then names only the partition whose position moved, as the Java client does.
Prints request and response bytes per fetch and the broker's CPU seconds per 1,000 fetches
(utime + stime from /proc, over the loop: each fetch's one-record produce is counted too) for
both, with the ratio.

    python benchmarks/fetch_sessions.py [--partitions 1000] [--fetches 2000]
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import tempfile

from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from _common import free_port, launch_kavka, stop_process
from kavka.client import Client
from kavka.protocol import messages
from kavka.protocol.framing import parse_response_header
from kavka.protocol.record_codec import encode_batch

TOPIC = "sessions"


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def exchange(client: Client, request) -> tuple[object, int, int]:
    """(decoded response, request frame bytes, response frame bytes)."""
    client._correlation += 1
    frame = messages.encode_request_frame(request, client._correlation, client.client_id)
    client.sock.sendall(frame)
    answer = client.recv_frame()
    _cid, header = parse_response_header(answer, messages.response_header_flexible(1, 12))
    return messages.decode_response(1, 12, answer, header), len(frame), len(answer) + 4


def fetch(session_id: int, epoch: int, positions: dict) -> FetchRequest:
    return FetchRequest(
        replica_id=-1, max_wait=datetime.timedelta(0), min_bytes=1, max_bytes=50 << 20, isolation_level=0,
        session_id=session_id, session_epoch=epoch, rack_id="", cluster_id=None, forgotten_topics_data=(),
        topics=(FetchTopic(topic=TOPIC, partitions=tuple(FetchPartition(
            partition=p, current_leader_epoch=-1, fetch_offset=o, last_fetched_epoch=-1, log_start_offset=-1,
            partition_max_bytes=1 << 20) for p, o in positions.items())),) if positions else ())


def produce(client: Client, partition: int, batch: bytes) -> None:
    client.request(ProduceRequest(transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=10),
                                  topic_data=(TopicProduceData(name=TOPIC, partition_data=(
                                      PartitionProduceData(index=partition, records=batch),)),)))


def run(bootstrap: str, pid: int, partitions: int, fetches: int, incremental: bool, offsets: dict) -> dict:
    batch = encode_batch([(None, b"x" * 100, 1_700_000_000_000, ())])
    sent = received = 0
    with Client(bootstrap) as consumer, Client(bootstrap) as producer:
        session_id, epoch = 0, (0 if incremental else -1)
        response, _q, _r = exchange(consumer, fetch(0, epoch, offsets))  # the first, full fetch
        if incremental:
            session_id, epoch = response.session_id, 1
            assert session_id != 0, "no session created"
        moved: dict = {}
        start = cpu_seconds(pid)
        for i in range(fetches):
            partition = i % partitions
            produce(producer, partition, batch)
            # full: every partition; incremental: only the one whose position moved (as Java does)
            response, q, r = exchange(consumer, fetch(session_id, epoch, moved if incremental else offsets))
            sent, received = sent + q, received + r
            if incremental:
                epoch += 1
            got = {p.partition_index: p.high_watermark for t in response.responses for p in t.partitions
                   if p.records}
            assert set(got) == {partition}, got
            offsets[partition] = got[partition]
            moved = {partition: got[partition]}
        cpu = cpu_seconds(pid) - start
    return {"request_bytes": sent / fetches, "response_bytes": received / fetches,
            "cpu_per_1000": cpu / fetches * 1000}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--fetches", type=int, default=2000)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="kavka-bench-sessions-")
    port = free_port()
    proc, bootstrap = launch_kavka(["-m", "kavka", "serve", "--data-dir", data_dir, "--listen", f"127.0.0.1:{port}",
                                    "--log-level", "WARNING", "--override", f"num.partitions={args.partitions}"],
                                   port)
    try:
        with Client(bootstrap) as client:
            client.request(MetadataRequest(topics=(MetadataRequestTopic(name=TOPIC, topic_id=None),),
                                           allow_auto_topic_creation=True,
                                           include_topic_authorized_operations=False))
        offsets = {p: 0 for p in range(args.partitions)}
        results = {mode: run(bootstrap, proc.pid, args.partitions, args.fetches, mode == "incremental", offsets)
                   for mode in ("full", "incremental")}
    finally:
        stop_process(proc)
        shutil.rmtree(data_dir, ignore_errors=True)
    full, inc = results["full"], results["incremental"]
    print(f"{args.partitions} partitions, {args.fetches} fetches per mode, one new record per fetch")
    print(f"{'figure':<34}{'full':>12}{'incremental':>14}{'full/incr':>11}")
    for key, label in (("request_bytes", "request bytes per fetch"), ("response_bytes", "response bytes per fetch"),
                       ("cpu_per_1000", "broker CPU s per 1,000 fetches")):
        print(f"{label:<34}{full[key]:>12.3f}{inc[key]:>14.3f}{full[key] / max(inc[key], 1e-9):>10.1f}x")


if __name__ == "__main__":
    main()
