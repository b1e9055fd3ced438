"""``kavka export`` throughput: a time window of a topic to parquet and to JSON lines.

Starts ``kavka serve`` in a child process, produces N records (key, 100 B value,
one header, timestamps 1 ms apart, lz4) over 3 partitions with confluent-kafka,
then exports in this process with :mod:`kavka.export`, as ``kavka export`` does:

1. the whole topic to parquet (snappy), row group by row group;
2. the middle half of the time range to parquet (ListOffsets, then Fetch of that range);
3. the whole topic to JSON lines (to /dev/null).

Prints records/s, MB/s of record data fetched (compressed, as on the wire) and of
key + value bytes, the output size, and this process's peak RSS (memory stays
bounded: it does not grow with the topic; the peak is reset before each run).

    python benchmarks/export.py [--records 1000000] [--value-size 100]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time

from _common import REPO_SRC, free_port, launch_kavka, stop_process

sys.path.insert(0, str(REPO_SRC))

from confluent_kafka import Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from kavka import export  # noqa: E402
from kavka.client_session import Session  # noqa: E402

BASE = 1_700_000_000_000
TOPIC = "export-bench"


def produce(bootstrap: str, records: int, value_size: int, partitions: int) -> float:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(TOPIC, partitions, 1)]).values():
        f.result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1 << 20,
                         "compression.type": "lz4", "queue.buffering.max.messages": 1_000_000})
    values = [os.urandom(value_size // 2 + 1).hex().encode()[:value_size] for _ in range(4096)]
    started = time.perf_counter()
    for i in range(records):
        while True:
            try:
                producer.produce(TOPIC, value=values[i % 4096], key=b"user-%d" % (i % 10_000), partition=i % partitions,
                                 timestamp=BASE + i, headers=[("seq", b"%d" % i)])
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120):
        raise SystemExit("produce did not finish")
    return time.perf_counter() - started


def peak_rss_mb(reset: bool = False) -> float:
    """This process's peak RSS (VmHWM); ``reset`` starts a new peak (Linux clear_refs 5)."""
    try:
        if reset:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(name: str, bootstrap: str, write, start=None, end=None) -> None:
    before = peak_rss_mb(reset=True)
    with Session(bootstrap) as s:
        reader = export.WindowReader(s, TOPIC, start, end)
        t0 = time.perf_counter()
        size = write(reader)
        seconds = time.perf_counter() - t0
    payload = reader.records * (len(b"user-1234") + ARGS.value_size)  # about: keys vary by a byte or two
    print(f"{name:<28} {reader.records:>10,} rec  {seconds:7.2f} s  {reader.records / seconds:>10,.0f} rec/s  "
          f"{reader.bytes / seconds / 1e6:7.1f} MB/s fetched  {payload / seconds / 1e6:7.1f} MB/s key+value  "
          f"output {size / 1e6:8.1f} MB  peak RSS {peak_rss_mb():4.0f} MB (at start {before:.0f})",
          flush=True)


def main() -> None:
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--value-size", type=int, default=100)
    parser.add_argument("--partitions", type=int, default=3)
    ARGS = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="kavka-export-bench-")
    port = free_port()
    proc, bootstrap = launch_kavka(["-m", "kavka", "serve", "--data-dir", f"{tmp}/data", "--listen",
                                    f"127.0.0.1:{port}", "--log-level", "WARNING"], port)
    try:
        print(f"load average {os.getloadavg()[0]:.2f}; producing {ARGS.records:,} records of "
              f"{ARGS.value_size} B over {ARGS.partitions} partitions ...", flush=True)
        seconds = produce(bootstrap, ARGS.records, ARGS.value_size, ARGS.partitions)
        print(f"produced in {seconds:.1f} s", flush=True)

        def parquet(path):
            def write(reader):
                export.write_parquet_from(reader, path)
                return os.path.getsize(path)
            return write

        def jsonl(reader):
            with open(os.devnull, "wb") as out:
                counted = _Counting(out)
                export.write_jsonl_from(reader, counted)
            return counted.size

        run("whole topic -> parquet", bootstrap, parquet(f"{tmp}/all.parquet"))
        quarter = ARGS.records // 4
        run("middle half -> parquet", bootstrap, parquet(f"{tmp}/half.parquet"), BASE + quarter, BASE + 3 * quarter)
        run("whole topic -> jsonl", bootstrap, jsonl)
        print(f"load average {os.getloadavg()[0]:.2f}")
    finally:
        stop_process(proc)
        shutil.rmtree(tmp, ignore_errors=True)


class _Counting:
    def __init__(self, stream) -> None:
        self.stream, self.size = stream, 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return self.stream.write(data)


if __name__ == "__main__":
    main()
