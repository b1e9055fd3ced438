"""Transactions (issue 12): what a transaction costs a producer, and what read_committed costs a consumer.

Starts ``kavka serve`` and Apache Kafka (``--targets``, default both; Kafka is left out, with a line
saying why, when it cannot be assembled: see _targets.KafkaTarget) as child processes, both running
for the whole run, and measures on each, with confluent-kafka (librdkafka), in the same run and in
interleaved rounds (targets take turns, and their order and that of the two kinds of run alternate
from round to round):

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

Medians of the rounds are printed per target as each workload ends, and at the end one table per
workload with a column per target and the ratio kavka/kafka.  Clients and brokers share the
machine's cores (2 on the development VM): run it on an idle machine and compare figures of one
run only.

    PYTHONPATH=src python3 benchmarks/transactions.py [--targets kavka,kafka] [--records 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time
import uuid

from confluent_kafka import Producer

from _common import IDLE_SETTLE_S, WorkloadError, percentile, rate_result
from _kafka_bench import PRODUCER_CONF, _client_base, consume, create_topic, delete_topic, partitions_of
from _report import MB, fmt, print_table, ratio
from _targets import TARGETS, KavkaTarget, RssSampler, TargetError

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


def warm_up(bootstrap: str, n: int, partition_counts: list[int]) -> None:
    """Both kinds of producer once per partition count, not measured: the broker's first requests, the
    coordinator's partition (and the JVM's JIT compiler for Kafka)."""
    for partitions in partition_counts:
        topic = fresh_topic(bootstrap, "warmup", partitions)
        produce_idempotent(bootstrap, topic, n, partitions)
        produce_transactional(bootstrap, topic, n, partitions, 1000)
        delete_topic(bootstrap, topic)


def fresh_topic(bootstrap: str, name: str, partitions: int) -> str:
    topic = f"{name}-{uuid.uuid4().hex[:6]}"
    create_topic(bootstrap, topic, partitions)
    return topic


def p50_p99(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    return percentile(ordered, 0.50), percentile(ordered, 0.99)


def target_orders(names: list[str], rounds: int):
    """(round, target name) in run order: the targets take turns, and their order alternates per round."""
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            yield r, name


def bench_produce(targets: dict, res: dict, n: int, partition_counts: list[int], txn_sizes: list[int],
                  rounds: int) -> None:
    print(f"== produce {n:,} x {SIZE} B, acks=all, medians of {rounds} rounds")
    print(f"{'target':>6} {'partitions':>10} {'per txn':>8} {'idempotent rec/s':>17} {'txn rec/s':>10}"
          f" {'txn/idem time':>14} {'ms/txn extra':>13} {'commit p50 ms':>14} {'commit p99 ms':>14}")
    for partitions in partition_counts:
        for per_txn in txn_sizes:
            runs = {name: {"idem": [], "txn": [], "commits": []} for name in targets}
            for r, name in target_orders(list(targets), rounds):
                bootstrap = targets[name].bootstrap
                for transactional in ((False, True) if r % 2 == 0 else (True, False)):
                    topic = fresh_topic(bootstrap, "txn" if transactional else "idem", partitions)
                    if transactional:
                        out = produce_transactional(bootstrap, topic, n, partitions, per_txn)
                        runs[name]["txn"].append(out["seconds"])
                        runs[name]["commits"] += out["commits_ms"]
                    else:
                        runs[name]["idem"].append(produce_idempotent(bootstrap, topic, n, partitions)["seconds"])
                    delete_topic(bootstrap, topic)
            for name, run in runs.items():
                t_idem, t_txn = statistics.median(run["idem"]), statistics.median(run["txn"])
                p50, p99 = p50_p99(run["commits"])
                figures = {"idempotent rec/s": n / t_idem, "txn rec/s": n / t_txn, "txn/idem time": t_txn / t_idem,
                           "ms/txn extra": (t_txn - t_idem) * 1000 / -(-n // per_txn),
                           "commit p50 ms": p50, "commit p99 ms": p99}
                res[name][f"produce, {partitions} partition(s), {per_txn} per txn"] = figures
                print(f"{name:>6} {partitions:>10} {per_txn:>8} {figures['idempotent rec/s']:>17,.0f}"
                      f" {figures['txn rec/s']:>10,.0f} {figures['txn/idem time']:>13.2f}x"
                      f" {figures['ms/txn extra']:>13.2f} {p50:>14.2f} {p99:>14.2f}", flush=True)
    print()


def bench_commit_alone(targets: dict, res: dict, partition_counts: list[int], commits: int) -> None:
    print(f"== commit_transaction() alone: {commits} transactions of one record per partition, delivered first")
    print(f"{'target':>6} {'partitions':>10} {'p50 ms':>8} {'p99 ms':>8} {'commits/s':>10}")
    for i, partitions in enumerate(partition_counts):
        for name in (list(targets) if i % 2 == 0 else list(targets)[::-1]):
            bootstrap = targets[name].bootstrap
            topic = fresh_topic(bootstrap, "commit", partitions)
            times = commit_alone(bootstrap, topic, partitions, commits)
            delete_topic(bootstrap, topic)
            p50, p99 = p50_p99(times)
            figures = {"p50 ms": p50, "p99 ms": p99, "commits/s": 1000 * len(times) / sum(times)}
            res[name][f"commit alone, {partitions} partition(s)"] = figures
            print(f"{name:>6} {partitions:>10} {p50:>8.2f} {p99:>8.2f} {figures['commits/s']:>10,.0f}", flush=True)
    print()


def bench_consume(targets: dict, res: dict, n: int, partition_counts: list[int], rounds: int) -> None:
    print(f"== consume {n:,} x {SIZE} B written in transactions of 1000, medians of {rounds} rounds")
    print(f"{'target':>6} {'partitions':>10} {'read_uncommitted rec/s':>23} {'read_committed rec/s':>21}"
          f" {'committed/uncommitted':>22}")
    for partitions in partition_counts:
        topics = {name: fresh_topic(t.bootstrap, "consume", partitions) for name, t in targets.items()}
        for name, topic in topics.items():
            produce_transactional(targets[name].bootstrap, topic, n, partitions, 1000)
        rates = {name: {"read_uncommitted": [], "read_committed": []} for name in targets}
        for r, name in target_orders(list(targets), rounds):
            for isolation in (("read_committed", "read_uncommitted") if r % 2 == 0
                              else ("read_uncommitted", "read_committed")):
                out = consume(targets[name].bootstrap, topics[name], n, SIZE, TIMEOUT_S,
                              extra_conf={"isolation.level": isolation})
                rates[name][isolation].append(out["records_per_s"])
        for name, topic in topics.items():
            delete_topic(targets[name].bootstrap, topic)
            ru = statistics.median(rates[name]["read_uncommitted"])
            rc = statistics.median(rates[name]["read_committed"])
            res[name][f"consume, {partitions} partition(s)"] = {
                "read_uncommitted rec/s": ru, "read_committed rec/s": rc, "committed/uncommitted": rc / ru}
            print(f"{name:>6} {partitions:>10} {ru:>23,.0f} {rc:>21,.0f} {rc / ru:>21.2f}x", flush=True)
    print()


def print_summary(res: dict, names: list[str]) -> None:
    """Every figure of the run, one row each: a column per target and the first target / each other one."""
    others = names[1:]
    header = ["figure"] + names + [f"{names[0]}/{o}" for o in others]
    groups = list(dict.fromkeys(group for name in names for group in res[name]))
    for group in groups:
        labels = list(dict.fromkeys(label for name in names for label in res[name].get(group, {})))
        body = []
        for label in labels:
            vals = [res[name].get(group, {}).get(label) for name in names]
            body.append([label] + [fmt(v) for v in vals] + [ratio(vals[0], v) for v in vals[1:]])
        print_table(group, header, body)


def start_targets(names: list[str], explicit: bool, targets: dict) -> None:
    """Construct and start every target into ``targets``; a default target that cannot be had is left out,
    with a line saying why."""
    for name in names:
        try:
            target = TARGETS[name]()
        except TargetError as e:
            if explicit:
                raise SystemExit(f"{name}: {e}") from e
            print(f"{name}: left out: {e}")
            continue
        target.start(timeout=120)
        targets[name] = target
        print(f"{name}: {target.version}; accepting on {target.bootstrap} after {target.startup_s * 1000:,.0f} ms"
              f" (pid {target.pid})", flush=True)


def run_workloads(targets: dict, res: dict, args, partition_counts: list[int], skip: set) -> None:
    for name, target in targets.items():
        warm_up(target.bootstrap, args.warmup, partition_counts)
    print(f"targets run side by side, taking turns round by round: {', '.join(targets)}\n", flush=True)
    if "produce" not in skip:
        bench_produce(targets, res, args.records, partition_counts,
                      [int(x) for x in args.txn_sizes.split(",")], args.rounds)
    if "commit" not in skip:
        bench_commit_alone(targets, res, partition_counts, args.commits)
    if "consume" not in skip:
        bench_consume(targets, res, args.records, partition_counts, args.rounds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default=None,
                    help="comma-separated from kavka,kafka (default both; kafka left out if it cannot be assembled)")
    ap.add_argument("--records", type=int, default=200_000, help="records per produce and consume run")
    ap.add_argument("--partitions", default="1,8", help="partition counts")
    ap.add_argument("--txn-sizes", default="100,1000", help="records per transaction")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=50_000, help="records of each kind sent first, not measured")
    ap.add_argument("--commits", type=int, default=200, help="transactions of the commit-alone runs")
    ap.add_argument("--skip", default="", help="comma-separated: produce, commit, consume")
    args = ap.parse_args()
    names = [n.strip() for n in (args.targets or "kavka,kafka").split(",") if n.strip()]
    bad = [n for n in names if n not in ("kavka", "kafka")]
    if bad or not names:
        ap.error(f"unknown target(s) {bad}; choose from kavka, kafka")
    partition_counts = [int(x) for x in args.partitions.split(",")]
    skip = set(filter(None, args.skip.split(",")))
    KavkaTarget.extra_args = ["--log-level", "WARNING"]
    started = time.monotonic()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    targets: dict = {}
    try:
        start_targets(names, args.targets is not None, targets)
        names = list(targets)
        res: dict = {name: {} for name in names}
        time.sleep(IDLE_SETTLE_S)
        with contextlib.ExitStack() as sampling:
            samplers = {}
            for name, target in targets.items():
                res[name]["broker"] = {"startup ms": target.startup_s * 1000,
                                       "RSS MB after start": target.rss_bytes() / MB}
                samplers[name] = sampling.enter_context(RssSampler(target, interval=0.5))
            run_workloads(targets, res, args, partition_counts, skip)
        for name, sampler in samplers.items():
            res[name]["broker"]["RSS MB peak (sampled)"] = sampler.peak / MB
        print_summary(res, names)
    finally:
        for target in targets.values():
            target.stop()
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
