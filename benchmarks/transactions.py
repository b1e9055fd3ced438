"""Transactions (issue 12): what a transaction costs a producer, and what read_committed costs a consumer.

Starts ``kavka serve`` in a child process and measures, with confluent-kafka (librdkafka), in the
same run and in interleaved rounds (the order of the two alternates from round to round):

1. **Produce**: N records of 100 B over 1 and over 8 partitions (record i to partition i mod P),
   by a transactional producer committing every 100 and every 1000 records, against an idempotent
   producer (``enable.idempotence=true``, no transactional.id) sending the same records without
   transactions.  Both use produce_consume.py's producer settings (linger.ms=5, batch.size 1 MiB) and
   acks=all; the clock runs from the first produce() to the last commit_transaction() / flush().
   Ratio = transactional time / idempotent time; the issue's target is < 2x for 1000 x 100 B.
   "ms/txn extra" is the difference of the two times divided by the number of transactions.
   Beside it, p50/p99 of commit_transaction() in those runs (which includes delivering the
   transaction's last records, as it flushes first).
2. **Commit alone**: transactions of one record per partition, flushed before the commit, so
   the time of commit_transaction() is EndTxn and its markers only; p50/p99 over 1 and 8 partitions.
3. **Consume**: a topic written by the transactional producer (1000 records per transaction, all
   committed) read from the beginning with ``isolation.level=read_committed`` against
   ``read_uncommitted`` (produce_consume.py's consumer settings); ratio = committed / uncommitted
   records/s.

Medians of the rounds are printed.  Client and broker share the machine's cores (2 on the
development VM): run it on an idle machine and compare figures of one run only.

    PYTHONPATH=src python3 benchmarks/transactions.py [--records 200000] [--rounds 3] [--commits 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import uuid

from confluent_kafka import Producer

from _common import WorkloadError, free_port, launch_kavka, percentile, rate_result, stop_process
from _kafka_bench import PRODUCER_CONF, _client_base, consume, create_topic, delete_topic, partitions_of

SIZE = 100
TIMEOUT_S = 120


def failed(err, _msg) -> None:
    """Delivery reports come for failures only (delivery.report.only.error): a failed run stops."""
    raise WorkloadError(f"delivery failed: {err}")


def producer(bootstrap: str, transactional: bool) -> Producer:
    """Idempotent either way, acks=all; ``transactional`` adds a fresh transactional.id."""
    conf = _client_base(bootstrap) | PRODUCER_CONF | {"enable.idempotence": True, "acks": "all",
                                                      "on_delivery": failed}
    if transactional:
        conf["transactional.id"] = f"bench-{uuid.uuid4().hex[:8]}"
    p = Producer(conf)
    if transactional:
        p.init_transactions(TIMEOUT_S)
    return p


def send(p: Producer, topic: str, first: int, count: int, partitions: int, payload: bytes) -> None:
    """Records first..first+count-1, record i to partition i mod ``partitions``."""
    prod, poll = p.produce, p.poll
    for i in range(first, first + count):
        while True:
            try:
                prod(topic, payload, partition=i % partitions)
                break
            except BufferError:
                poll(0.001)
        if not i & 0x3FFF:
            poll(0)


def produce_idempotent(bootstrap: str, topic: str, n: int, partitions: int) -> dict:
    """N records, the clock started once the producer has its producer id (as init_transactions does)."""
    p = producer(bootstrap, transactional=False)
    partitions_of(p, topic)
    payload = os.urandom(SIZE)
    send(p, topic, 0, partitions, partitions, payload)
    if p.flush(TIMEOUT_S):
        raise WorkloadError("idempotent produce: the first records unacknowledged")
    t0 = time.perf_counter()
    send(p, topic, 0, n, partitions, payload)
    if p.flush(TIMEOUT_S):
        raise WorkloadError("idempotent produce: records unacknowledged at flush timeout")
    return rate_result(n, n * SIZE, time.perf_counter() - t0)


def produce_transactional(bootstrap: str, topic: str, n: int, partitions: int, per_txn: int) -> dict:
    """N records in transactions of ``per_txn``; also the times of each commit_transaction()."""
    p = producer(bootstrap, transactional=True)
    partitions_of(p, topic)
    payload = os.urandom(SIZE)
    commits: list[float] = []
    t0 = time.perf_counter()
    for first in range(0, n, per_txn):
        p.begin_transaction()
        send(p, topic, first, min(per_txn, n - first), partitions, payload)
        began = time.perf_counter()
        p.commit_transaction(TIMEOUT_S)
        commits.append(time.perf_counter() - began)
    return rate_result(n, n * SIZE, time.perf_counter() - t0, commits_ms=[c * 1000 for c in commits])


def commit_alone(bootstrap: str, topic: str, partitions: int, commits: int) -> list[float]:
    """ms of commit_transaction() for transactions of one record per partition, delivered first."""
    p = producer(bootstrap, transactional=True)
    partitions_of(p, topic)
    payload = os.urandom(SIZE)
    times = []
    for _ in range(commits):
        p.begin_transaction()
        send(p, topic, 0, partitions, partitions, payload)
        if p.flush(TIMEOUT_S):
            raise WorkloadError("commit-alone: records unacknowledged at flush timeout")
        began = time.perf_counter()
        p.commit_transaction(TIMEOUT_S)
        times.append((time.perf_counter() - began) * 1000)
    return times


def warm_up(bootstrap: str, n: int) -> None:
    """Both kinds of producer once, not measured: the broker's first requests, the coordinator's partition."""
    topic = fresh_topic(bootstrap, "warmup", 1)
    produce_idempotent(bootstrap, topic, n, 1)
    produce_transactional(bootstrap, topic, n, 1, 1000)
    delete_topic(bootstrap, topic)


def fresh_topic(bootstrap: str, name: str, partitions: int) -> str:
    topic = f"{name}-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic, partitions)
    return topic


def p50_p99(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return percentile(ordered, 0.50), percentile(ordered, 0.99)


def bench_produce(bootstrap: str, n: int, partition_counts: list[int], txn_sizes: list[int], rounds: int) -> None:
    print(f"== produce {n:,} x {SIZE} B, acks=all, medians of {rounds} rounds")
    print(f"{'partitions':>10} {'per txn':>8} {'idempotent rec/s':>17} {'txn rec/s':>10} {'txn/idem time':>14}"
          f" {'ms/txn extra':>13} {'commit p50 ms':>14} {'commit p99 ms':>14}")
    for partitions in partition_counts:
        for per_txn in txn_sizes:
            idem, txn, commits = [], [], []
            for r in range(rounds):
                for transactional in ((False, True) if r % 2 == 0 else (True, False)):
                    topic = fresh_topic(bootstrap, "txn" if transactional else "idem", partitions)
                    if transactional:
                        res = produce_transactional(bootstrap, topic, n, partitions, per_txn)
                        txn.append(res["seconds"])
                        commits += res["commits_ms"]
                    else:
                        idem.append(produce_idempotent(bootstrap, topic, n, partitions)["seconds"])
                    delete_topic(bootstrap, topic)
            t_idem, t_txn = statistics.median(idem), statistics.median(txn)
            p50, p99 = p50_p99(commits)
            extra_ms = (t_txn - t_idem) * 1000 / -(-n // per_txn)
            print(f"{partitions:>10} {per_txn:>8} {n / t_idem:>17,.0f} {n / t_txn:>10,.0f} {t_txn / t_idem:>13.2f}x"
                  f" {extra_ms:>13.2f} {p50:>14.2f} {p99:>14.2f}", flush=True)
    print()


def bench_commit_alone(bootstrap: str, partition_counts: list[int], commits: int) -> None:
    print(f"== commit_transaction() alone: {commits} transactions of one record per partition, delivered first")
    print(f"{'partitions':>10} {'p50 ms':>8} {'p99 ms':>8} {'commits/s':>10}")
    for partitions in partition_counts:
        topic = fresh_topic(bootstrap, "commit", partitions)
        times = commit_alone(bootstrap, topic, partitions, commits)
        delete_topic(bootstrap, topic)
        p50, p99 = p50_p99(times)
        print(f"{partitions:>10} {p50:>8.2f} {p99:>8.2f} {1000 * len(times) / sum(times):>10,.0f}", flush=True)
    print()


def bench_consume(bootstrap: str, n: int, partition_counts: list[int], rounds: int) -> None:
    print(f"== consume {n:,} x {SIZE} B written in transactions of 1000, medians of {rounds} rounds")
    print(f"{'partitions':>10} {'read_uncommitted rec/s':>23} {'read_committed rec/s':>21} {'committed/uncommitted':>22}")
    for partitions in partition_counts:
        topic = fresh_topic(bootstrap, "consume", partitions)
        produce_transactional(bootstrap, topic, n, partitions, 1000)
        rates: dict[str, list[float]] = {"read_uncommitted": [], "read_committed": []}
        for r in range(rounds):
            for isolation in (sorted(rates) if r % 2 == 0 else sorted(rates, reverse=True)):
                res = consume(bootstrap, topic, n, SIZE, TIMEOUT_S, extra_conf={"isolation.level": isolation})
                rates[isolation].append(res["records_per_s"])
        delete_topic(bootstrap, topic)
        ru, rc = statistics.median(rates["read_uncommitted"]), statistics.median(rates["read_committed"])
        print(f"{partitions:>10} {ru:>23,.0f} {rc:>21,.0f} {rc / ru:>21.2f}x", flush=True)
    print()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=200_000, help="records per produce and consume run")
    ap.add_argument("--partitions", default="1,8", help="partition counts")
    ap.add_argument("--txn-sizes", default="100,1000", help="records per transaction")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=50_000, help="records of each kind sent first, not measured")
    ap.add_argument("--commits", type=int, default=200, help="transactions of the commit-alone runs")
    ap.add_argument("--skip", default="", help="comma-separated: produce, commit, consume")
    args = ap.parse_args()
    partition_counts = [int(x) for x in args.partitions.split(",")]
    skip = set(filter(None, args.skip.split(",")))
    data_dir = tempfile.mkdtemp(prefix="kavka-bench-txn-")
    port = free_port()
    proc, bootstrap = launch_kavka(["-m", "kavka", "serve", "--data-dir", data_dir, "--listen", f"127.0.0.1:{port}",
                                    "--log-level", "WARNING"], port)
    started = time.monotonic()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    try:
        warm_up(bootstrap, args.warmup)
        if "produce" not in skip:
            bench_produce(bootstrap, args.records, partition_counts, [int(x) for x in args.txn_sizes.split(",")],
                          args.rounds)
        if "commit" not in skip:
            bench_commit_alone(bootstrap, partition_counts, args.commits)
        if "consume" not in skip:
            bench_consume(bootstrap, args.records, partition_counts, args.rounds)
    finally:
        stop_process(proc)
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
