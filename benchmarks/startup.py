"""Startup of ``kavka serve`` on a big data dir: 10 GB in 10,000 segments by default.

The data dir is built in this process through kavka's own storage (LogManager,
Partition.append_internal: real batches, offset and time indexes, checkpoints, producer
snapshots and the clean-shutdown marker, exactly as a broker leaves them), not by
producing through a client (hours for 10 GB on 2 cores): ``--partitions`` partitions
of one topic with ``segment.bytes`` = ``--segment-mib`` MiB, filled with batches of
``--batch-kib`` KiB (100 records each, CRC-32C valid) until each partition has
``--segments`` segments.  Then for each round and each kind of start:

* ``clean``: after the previous broker's SIGTERM (it writes ``.kafka_cleanshutdown``);
* ``kill9``: after a SIGKILL of a broker that had started (no marker: recovery);

it times, from the ``exec`` of ``kavka serve``: the port answering ApiVersions,
Metadata of every topic, and one Fetch (max_wait 0) of the last batch of every
partition answered with records for all of them (the "ready" point); and prints
the broker's RSS after that.  ``--cold`` first drops the data dir's own pages from
the page cache (posix_fadvise DONTNEED on each of its files: no other process's
cache is touched), so the figures include the disk reads a start makes.

    python benchmarks/startup.py [--partitions 100 --segments 100 --segment-mib 1] [--rounds 2] [--cold]

Checks free disk first, deletes the data dir at the end (``--keep DIR`` keeps it
and reuses it in a later run).
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO_SRC, free_port  # noqa: E402

from kavka.client import Client, ClientError  # noqa: E402
from kavka.clock import SYSTEM_CLOCK  # noqa: E402
from kavka.config import BrokerConfig  # noqa: E402
from kavka.log.checkpoint import deferred_sync  # noqa: E402
from kavka.log.log_manager import LogManager  # noqa: E402
from kavka.protocol.record_codec import encode_batch  # noqa: E402

TOPIC = "startup"


def build(data_dir: Path, partitions: int, segments: int, segment_mib: int, batch_kib: int) -> dict[int, int]:
    """Fill ``data_dir`` (see the module doc); returns each partition's log end offset."""
    value = b"v" * max(1, batch_kib * 1024 // 100 - 20)
    now = int(time.time() * 1000)
    template = bytes(encode_batch([(b"k%04d" % i, value, now, ()) for i in range(100)]))
    config = BrokerConfig.from_strings({"log.dirs": str(data_dir)})
    logs = LogManager(data_dir, config, SYSTEM_CLOCK)
    logs.load()
    ends = {}
    try:
        logs.create_topic(TOPIC, partitions, {"segment.bytes": str(segment_mib << 20)})
        per_segment = max(1, (segment_mib << 20) // len(template))
        with deferred_sync():  # the producer snapshots written at each roll: one syncfs at close
            for p in range(partitions):
                partition = logs.partition(TOPIC, p)
                for _ in range(per_segment * segments - 1):
                    partition.append_internal(bytearray(template), now)
                ends[p] = partition.log.log_end_offset
                assert len(partition.log.segments) == segments, (len(partition.log.segments), segments)
    finally:
        logs.close()  # flushes, writes the producer snapshots and the clean-shutdown marker
    return ends


def drop_cache(data_dir: Path) -> None:
    """Evict this data dir's files from the page cache (only them)."""
    os.sync()
    for root, _dirs, files in os.walk(data_dir):
        for name in files:
            try:
                fd = os.open(os.path.join(root, name), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tail_fetch(ends: dict[int, int]) -> FetchRequest:
    return FetchRequest(
        replica_id=-1, max_wait=datetime.timedelta(0), min_bytes=1, max_bytes=64 << 20, isolation_level=0,
        session_id=0, session_epoch=-1, rack_id="", cluster_id=None, forgotten_topics_data=(),
        topics=(FetchTopic(topic=TOPIC, partitions=tuple(FetchPartition(
            partition=p, current_leader_epoch=-1, fetch_offset=end - 1, last_fetched_epoch=-1, log_start_offset=-1,
            partition_max_bytes=1 << 20) for p, end in ends.items())),))


def start(data_dir: Path, ends: dict[int, int], timeout: float = 600) -> tuple[subprocess.Popen, dict]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO_SRC))
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "kavka", "serve", "--data-dir", str(data_dir),
                             "--listen", f"127.0.0.1:{port}", "--log-level", "WARNING"], env=env,
                            stdout=subprocess.DEVNULL)
    figures = {}
    while True:
        if proc.poll() is not None or time.monotonic() - t0 > timeout:
            proc.kill()
            raise SystemExit(f"kavka serve did not start (exit {proc.returncode})")
        try:
            client = Client(f"127.0.0.1:{port}", timeout=timeout)
        except ClientError:
            time.sleep(0.005)
            continue
        break
    with client:
        client.request(ApiVersionsRequest(client_software_name="bench", client_software_version="1"))
        figures["api_versions_s"] = time.monotonic() - t0
        meta = client.request(MetadataRequest(topics=(MetadataRequestTopic(name=TOPIC, topic_id=None),),
                                              allow_auto_topic_creation=False,
                                              include_topic_authorized_operations=False))
        assert len(meta.topics[0].partitions) == len(ends), meta
        figures["metadata_s"] = time.monotonic() - t0
        answer = client.request(tail_fetch(ends))
        served = {p.partition_index for t in answer.responses for p in t.partitions
                  if p.error_code == 0 and p.records and p.high_watermark == ends[p.partition_index]}
        assert served == set(ends), f"tails served for {len(served)} of {len(ends)} partitions"
        figures["ready_s"] = time.monotonic() - t0
    figures["rss_mb"] = rss_mb(proc.pid)
    return proc, figures


def stop(proc: subprocess.Popen, sig: int) -> float:
    t0 = time.monotonic()
    proc.send_signal(sig)
    proc.wait(600)
    return time.monotonic() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=100)
    parser.add_argument("--segments", type=int, default=100, help="segments per partition")
    parser.add_argument("--segment-mib", type=int, default=1)
    parser.add_argument("--batch-kib", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--cold", action="store_true", help="evict the data dir from the page cache before each start")
    parser.add_argument("--keep", help="build in (or reuse) this directory and keep it")
    args = parser.parse_args()
    need = args.partitions * args.segments * (args.segment_mib << 20) * 1.1
    parent = Path(args.keep).parent if args.keep else Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(parent).free
    data_dir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="kavka-startup-"))
    reuse = args.keep and (data_dir / "meta.properties").exists()
    if not reuse and free < need + (5 << 30):
        raise SystemExit(f"need {need / 2**30:.1f} GiB plus 5 GiB to spare in {parent}, {free / 2**30:.1f} GiB free")
    try:
        t0 = time.monotonic()
        if reuse:
            ends = _read_ends(data_dir, args.partitions)
        else:
            ends = build(data_dir, args.partitions, args.segments, args.segment_mib, args.batch_kib)
        total = sum(f.stat().st_size for f in data_dir.rglob("*.log"))
        logs = sum(1 for _ in data_dir.rglob("*.log"))
        print(f"data dir {data_dir}: {total / 1e9:.2f} GB in {logs} segments of {args.partitions} partitions "
              f"({'reused' if reuse else f'built in {time.monotonic() - t0:.0f} s'}); "
              f"page cache: {'cold (fadvise DONTNEED)' if args.cold else 'warm'}", flush=True)
        columns = ("round", "start", "api_versions_s", "metadata_s", "ready_s", "rss_mb", "stop_s")
        print(" ".join(f"{c:>14}" for c in columns), flush=True)
        for rnd in range(1, args.rounds + 1):
            for kind in ("clean", "kill9"):
                if kind == "kill9":  # a broker that started, killed: no marker at the next start
                    proc, _f = start(data_dir, ends)
                    stop(proc, signal.SIGKILL)
                if args.cold:
                    drop_cache(data_dir)
                proc, figures = start(data_dir, ends)
                figures["stop_s"] = stop(proc, signal.SIGTERM)  # clean: the next start has the marker
                row = {"round": rnd, "start": kind, **figures}
                print(" ".join(f"{row[c]:>14.3f}" if isinstance(row[c], float) else f"{row[c]:>14}"
                               for c in columns), flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


def _read_ends(data_dir: Path, partitions: int) -> dict[int, int]:
    """Each partition's log end offset, read through kavka's storage (a reused data dir)."""
    config = BrokerConfig.from_strings({"log.dirs": str(data_dir)})
    logs = LogManager(data_dir, config, SYSTEM_CLOCK)
    logs.load()
    try:
        return {p: logs.partition(TOPIC, p).log.log_end_offset for p in range(partitions)}
    finally:
        logs.close()


if __name__ == "__main__":
    main()
