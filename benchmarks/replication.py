#!/usr/bin/env python3
"""Replication cost and failover time of a 3-broker kavka cluster (issue 5).

Starts, as child processes of this script, one etcd and three brokers in cluster mode
(``kavka.cli.cluster.LocalCluster``: what ``kavka cluster up 3`` runs) on free loopback
ports in a temporary directory, then measures in the same run:

* produce throughput (records/s, MB/s) of 100 B records, one confluent-kafka producer
  (the settings of produce_consume.py), RF=1 ``acks=1`` against RF=3 ``acks=all``
  (``min.insync.replicas=2``);
* produce latency at a fixed rate for both (send -> delivery report p50/p99/p99.9, and
  end-to-end send -> consumer p99), with produce_consume.py's latency workload;
* failover: the leader of an RF=3 partition is SIGKILLed; the figure is the time from the
  kill to the first successful ``acks=all`` write (delivery report) on the new leader, and,
  alongside, until Metadata names a new leader.  The killed broker is restarted and the
  next round waits until it is back in the ISR.  Repeated ``--failovers`` times; median
  and max are reported.

Every wait is bounded; ``--max-minutes`` skips what is left (the cluster is still stopped).

    python benchmarks/replication.py --quick
    python benchmarks/replication.py --records 500000 --failovers 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import REPO_SRC, WorkloadError  # noqa: E402
from _report import machine_info, print_machine_info  # noqa: E402

sys.path.insert(0, str(REPO_SRC))
os.environ["PYTHONPATH"] = str(REPO_SRC) + (os.pathsep + os.environ["PYTHONPATH"]
                                            if os.environ.get("PYTHONPATH") else "")

from kavka.cluster.etcd_server import free_port_range  # noqa: E402

SIZE = 100
BROKERS = 3


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)




# -- topics and metadata ------------------------------------------------------------------

def create_topic(bootstrap: str, topic: str, rf: int, config: dict | None = None, timeout: float = 30.0) -> bool:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic
    import _kafka_bench as kb
    admin = AdminClient(kb._client_base(bootstrap) | {"log_level": 5})
    fut = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=rf, config=config or {})],
                              operation_timeout=timeout, request_timeout=timeout)[topic]
    try:
        fut.result(timeout=timeout)
    except KafkaException as e:
        raise WorkloadError(f"create_topics({topic}) failed: {e}") from e
    wait_partition(bootstrap, topic, lambda p: p.leader_id >= 0 and len(p.isr_nodes) == rf, timeout,
                   f"{topic} with a leader and {rf} in-sync replicas")
    return True


def partition_state(bootstrap: str, topic: str):
    """Partition 0 of ``topic`` as the first answering broker reports it (Metadata v12), or None."""
    from kio.schema.metadata.v12 import request as q

    from kavka.api.responses import make
    from kavka.client import Client
    for address in bootstrap.split(","):
        try:
            with Client(address, timeout=2.0) as client:
                r = client.request(make(q.MetadataRequest, topics=(make(q.MetadataRequestTopic, name=topic,
                                                                        topic_id=None),),
                                        allow_auto_topic_creation=False, include_topic_authorized_operations=False))
        except Exception:
            continue
        for t in r.topics:
            for p in t.partitions:
                if p.partition_index == 0:
                    return p
    return None


def wait_partition(bootstrap: str, topic: str, predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = partition_state(bootstrap, topic)
        if p is not None and predicate(p):
            return p
        time.sleep(0.05)
    raise WorkloadError(f"{what}: not reached within {timeout:.0f}s")


# -- failover -------------------------------------------------------------------------------

def raw_produce(address: str, topic: str, timeout_ms: int = 2000) -> int:
    """One Produce v9 (acks=all) of one 100 B record to partition 0: its error code (-1: no answer)."""
    import datetime

    from kio.schema.produce.v9 import request as q

    from kavka.api.responses import make
    from kavka.client import Client
    from kavka.protocol.record_codec import encode_batch
    batch = encode_batch([(None, b"r" * SIZE, int(time.time() * 1000), ())])
    body = make(q.ProduceRequest, transactional_id=None, acks=-1, timeout=datetime.timedelta(milliseconds=timeout_ms),
                topic_data=(make(q.TopicProduceData, name=topic, partition_data=(
                    make(q.PartitionProduceData, index=0, records=batch),)),))
    try:
        with Client(address, timeout=timeout_ms / 1000 + 2) as client:
            return int(client.request(body).responses[0].partition_responses[0].error_code)
    except Exception:
        return -1


def failover_round(cluster, bootstrap: str, topic: str, timeout: float) -> dict:
    """Kill the partition's leader; time the first acks=all write that succeeds afterwards."""
    from confluent_kafka import Producer
    import _kafka_bench as kb

    p = wait_partition(bootstrap, topic, lambda p: p.leader_id >= 0 and len(p.isr_nodes) == BROKERS, timeout,
                       "all replicas in sync before the kill")
    old = p.leader_id
    was_controller = cluster.registered()[1] == old
    delivered: list = []
    errors: list = []

    def on_delivery(err, msg):
        (errors if err is not None else delivered).append((time.perf_counter(), err))

    producer = Producer(kb._client_base(bootstrap) | {
        "acks": "all", "linger.ms": 0, "message.timeout.ms": int(timeout * 1000), "on_delivery": on_delivery})
    try:
        producer.produce(topic, b"w" * SIZE)  # connected to the current leader, metadata known
        if producer.flush(timeout) or not delivered:
            raise WorkloadError(f"warm-up write before the kill failed: {errors[:1]}")
        delivered.clear()
        survivors = ",".join(b.address for i, b in cluster.brokers.items() if i != old)
        seen = {}

        def watch_metadata():
            """When does a survivor name a new leader, and when does that leader first accept
            a raw acks=all Produce (no client backoff: one attempt every 10 ms)?"""
            deadline = time.perf_counter() + timeout
            while time.perf_counter() < deadline and "t" not in seen:
                q = partition_state(survivors, topic)
                if q is not None and q.leader_id >= 0 and q.leader_id != old:
                    seen["t"], seen["leader"] = time.perf_counter(), q.leader_id
                    break
                time.sleep(0.01)
            if "t" not in seen:
                return
            address = cluster.brokers[seen["leader"]].address
            while time.perf_counter() < deadline:
                if raw_produce(address, topic) == 0:
                    seen["raw"] = time.perf_counter()
                    return
                time.sleep(0.01)

        watcher = threading.Thread(target=watch_metadata, daemon=True)
        t0 = time.perf_counter()
        cluster.kill(old, signal.SIGKILL)
        watcher.start()
        producer.produce(topic, b"f" * SIZE)
        deadline = t0 + timeout
        while not delivered and time.perf_counter() < deadline:
            producer.poll(0.005)
            if errors:  # e.g. NOT_ENOUGH_REPLICAS while the ISR shrinks: write again
                errors.clear()
                producer.produce(topic, b"f" * SIZE)
        watcher.join(max(0.0, deadline - time.perf_counter()))
        if not delivered:
            raise WorkloadError(f"no successful acks=all write within {timeout:.0f}s of killing broker {old}")
        first_write = delivered[0][0] - t0
        new = wait_partition(survivors, topic, lambda p: p.leader_id >= 0, 5, "new leader").leader_id
    finally:
        producer.purge()
        producer.flush(0)
    cluster.start_broker(old)  # the same port and data: it truncates, catches up, rejoins the ISR
    t1 = time.perf_counter()
    wait_partition(bootstrap, topic, lambda p: len(p.isr_nodes) == BROKERS, timeout,
                   f"restarted broker {old} back in the ISR")
    return {"killed": old, "was_controller": was_controller, "new_leader": new,
            "first_write_s": first_write, "metadata_s": (seen["t"] - t0) if "t" in seen else None,
            "raw_write_s": (seen["raw"] - t0) if "raw" in seen else None,
            "rejoin_s": time.perf_counter() - t1}


# -- the run -------------------------------------------------------------------------------

def run(args, res: dict) -> None:
    import _kafka_bench as kb

    from kavka.cli.cluster import LocalCluster

    root = Path(tempfile.mkdtemp(prefix="kavka-bench-repl-"))
    res["dir"] = str(root)
    base = free_port_range(BROKERS)
    cluster = LocalCluster(root, BROKERS, base_port=base, session_timeout_ms=args.session_timeout_ms,
                           log_level="WARNING", say=lambda text: log(f"cluster: {text}"))
    t_start = time.monotonic()
    deadline = t_start + args.max_minutes * 60
    try:
        controller = cluster.start(timeout=args.startup_timeout)
        res["startup_s"] = time.monotonic() - t_start
        bs = cluster.bootstrap
        log(f"cluster up in {res['startup_s']:.1f} s, controller broker {controller}, bootstrap {bs}")

        def phase(key: str, fn, *a):
            if time.monotonic() > deadline:
                log(f"{key}: skipped (--max-minutes reached)")
                res.setdefault("errors", {})[key] = "skipped: time budget used up"
                return None
            t0 = time.perf_counter()
            try:
                out = fn(*a)
            except Exception as e:
                res.setdefault("errors", {})[key] = f"{type(e).__name__}: {e}"
                log(f"{key}: FAILED: {type(e).__name__}: {e}")
                return None
            log(f"{key}: {_summary(out)} ({time.perf_counter() - t0:.1f}s)")
            return out

        if args.warmup:
            if phase("create bench-warmup", create_topic, bs, "bench-warmup", 1) is not None:
                phase("warm-up produce", kb.produce, bs, "bench-warmup", args.warmup, SIZE, "1", args.phase_timeout)
        setups = (("rf1", 1, "1", {}), ("rf3", 3, "all", {"min.insync.replicas": "2"}))
        for key, rf, acks, config in setups:
            topic = f"bench-{key}"
            if phase(f"create {topic} (RF={rf})", create_topic, bs, topic, rf, config) is None:
                continue
            out = phase(f"produce {SIZE}B RF={rf} acks={acks}", kb.produce, bs, topic, args.records, SIZE, acks,
                        args.phase_timeout)
            if out is not None:
                res.setdefault("produce", {})[key] = out
            topic = f"bench-lat-{key}"
            if phase(f"create {topic} (RF={rf})", create_topic, bs, topic, rf, config) is None:
                continue
            out = phase(f"latency RF={rf} acks={acks}", kb.latency, bs, topic, args.latency_rate,
                        args.latency_seconds, SIZE, acks, 1.0, 30.0, {"fetch.wait.max.ms": 10})
            if out is not None:
                res.setdefault("latency", {})[key] = out
        topic = "bench-failover"
        if phase(f"create {topic} (RF=3)", create_topic, bs, topic, 3, {"min.insync.replicas": "2"}) is not None:
            rounds = res.setdefault("failover", [])
            for i in range(args.failovers):
                out = phase(f"failover {i + 1}/{args.failovers}", failover_round, cluster, bs, topic,
                            args.failover_timeout)
                if out is None:
                    break
                rounds.append(out)
    finally:
        log("stopping the cluster")
        cluster.stop(grace=10.0)
        if os.environ.get("KAVKA_BENCH_KEEP_TMP"):
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


def _summary(out) -> str:
    if not isinstance(out, dict):
        return "done"
    if "first_write_s" in out:
        meta = out["metadata_s"]
        named = f"{meta * 1000:.0f} ms" if meta is not None else "-"
        raw = f"{out['raw_write_s'] * 1000:.0f} ms" if out["raw_write_s"] is not None else "-"
        return (f"killed leader {out['killed']}{' (the controller)' if out['was_controller'] else ''}:"
                f" first acks=all write after {out['first_write_s'] * 1000:.0f} ms on broker {out['new_leader']}"
                f" (Metadata named it after {named}, raw Produce accepted after {raw});"
                f" back in the ISR {out['rejoin_s']:.1f} s after restart")
    if "ack_p99_ms" in out:
        return (f"ack p50 {out['ack_p50_ms']:.2f} ms, p99 {out['ack_p99_ms']:.2f} ms; end-to-end p99"
                f" {out['p99_ms']:.2f} ms, {out['count']}/{out['expected']} records")
    return f"{out['records']:,} records, {out['records_per_s']:,.0f} rec/s, {out['mb_per_s']:.1f} MB/s"


def _ratio(a, b) -> str:
    if a is None or b is None or not b:
        return "-"
    return f"{a / b:.2f}x"


def _f(v, digits=1) -> str:
    if v is None:
        return "ERR"
    return f"{v:,.{digits}f}"


def print_report(res: dict, args) -> None:
    prod, lat = res.get("produce", {}), res.get("latency", {})

    def get(d, key, field):
        return d.get(key, {}).get(field)

    rows = [
        ("produce records/s", get(prod, "rf1", "records_per_s"), get(prod, "rf3", "records_per_s"), 0),
        ("produce MB/s", get(prod, "rf1", "mb_per_s"), get(prod, "rf3", "mb_per_s"), 1),
        (f"ack latency p50 ms (@{args.latency_rate:,}/s)", get(lat, "rf1", "ack_p50_ms"),
         get(lat, "rf3", "ack_p50_ms"), 2),
        ("ack latency p99 ms", get(lat, "rf1", "ack_p99_ms"), get(lat, "rf3", "ack_p99_ms"), 2),
        ("ack latency p99.9 ms", get(lat, "rf1", "ack_p999_ms"), get(lat, "rf3", "ack_p999_ms"), 2),
        ("end-to-end p99 ms", get(lat, "rf1", "p99_ms"), get(lat, "rf3", "p99_ms"), 2),
    ]
    w = max(len(r[0]) for r in rows)
    print(f"\n{'figure':<{w}}  {'RF=1 acks=1':>14}  {'RF=3 acks=all':>14}  {'RF3/RF1':>8}")
    for name, a, b, digits in rows:
        print(f"{name:<{w}}  {_f(a, digits):>14}  {_f(b, digits):>14}  {_ratio(b, a):>8}")
    rounds = res.get("failover", [])
    writes = [r["first_write_s"] * 1000 for r in rounds]
    metas = [r["metadata_s"] * 1000 for r in rounds if r["metadata_s"] is not None]
    print(f"\nfailover (leader SIGKILLed, RF=3 acks=all, min.insync.replicas=2, "
          f"session timeout {args.session_timeout_ms} ms): {len(rounds)}/{args.failovers} rounds")
    if writes:
        print(f"  first acks=all write on the new leader: median {statistics.median(writes):,.0f} ms,"
              f" max {max(writes):,.0f} ms  (each: {', '.join(f'{x:,.0f}' for x in writes)})")
    if metas:
        print(f"  new leader named in Metadata:           median {statistics.median(metas):,.0f} ms,"
              f" max {max(metas):,.0f} ms")
    raws = [r["raw_write_s"] * 1000 for r in rounds if r.get("raw_write_s") is not None]
    if raws:
        print(f"  raw acks=all Produce (10 ms retries):   median {statistics.median(raws):,.0f} ms,"
              f" max {max(raws):,.0f} ms")
    if rounds:
        print(f"  killed broker was the controller in {sum(r['was_controller'] for r in rounds)} round(s);"
              f" restarted broker back in the ISR after median"
              f" {statistics.median(r['rejoin_s'] for r in rounds) * 1000:,.0f} ms")
    for key, err in res.get("errors", {}).items():
        print(f"  ERROR {key}: {err}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=None,
                    help="100 B records per produce run (default 1,000,000; 100,000 with --quick)")
    ap.add_argument("--quick", action="store_true", help="100,000 records, 2 s latency runs, 3 failovers")
    ap.add_argument("--warmup", type=int, default=50_000, help="acks=1 records to a throw-away topic first")
    ap.add_argument("--latency-rate", type=int, default=5_000, help="records/s of the fixed-rate latency runs")
    ap.add_argument("--latency-seconds", type=float, default=4.0, help="measured seconds per latency run")
    ap.add_argument("--failovers", type=int, default=None, help="leader kills (default 5; 3 with --quick)")
    ap.add_argument("--failover-timeout", type=float, default=40.0, help="limit per failover round, seconds")
    ap.add_argument("--session-timeout-ms", type=int, default=2000,
                    help="the brokers' --session-timeout-ms (etcd lease): how soon a dead leader is noticed")
    ap.add_argument("--phase-timeout", type=float, default=120.0, help="limit per produce run, seconds")
    ap.add_argument("--startup-timeout", type=float, default=60.0)
    ap.add_argument("--max-minutes", type=float, default=10.0, help="after this, what is left is skipped")
    ap.add_argument("--json", metavar="FILE", help="write every figure as JSON")
    args = ap.parse_args(argv)
    if args.records is None:
        args.records = 100_000 if args.quick else 1_000_000
    if args.failovers is None:
        args.failovers = 3 if args.quick else 5
    if args.quick:
        args.latency_seconds = min(args.latency_seconds, 2.0)

    info = machine_info()
    config = {
        "cluster": f"etcd + {BROKERS} kavka brokers (cluster mode, child processes, loopback),"
                   f" --session-timeout-ms {args.session_timeout_ms}",
        "produce": f"{args.records:,} x {SIZE} B, 1 partition, confluent-kafka linger.ms=5 batch.size=1MiB;"
                   " RF=1 acks=1 vs RF=3 acks=all min.insync.replicas=2",
        "latency": f"{args.latency_rate:,} rec/s for {args.latency_seconds:g} s, linger.ms=1,"
                   " consumer in another process",
        "failover": f"{args.failovers} x SIGKILL of the leader; time to the first delivered acks=all write",
    }
    print_machine_info(info, {}, config)

    def on_sigterm(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    res: dict = {}
    t0 = time.monotonic()
    try:
        run(args, res)
    except KeyboardInterrupt:
        log("interrupted: reporting what was measured")
    except Exception as e:
        res["error"] = f"{type(e).__name__}: {e}"
        traceback.print_exc()
    print_report(res, args)
    print(f"total run time: {time.monotonic() - t0:.0f} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"machine": info, "config": config, "args": vars(args), "results": res,
                       "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, f, indent=2, default=str)
        print(f"results written to {args.json}")
    return 1 if res.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
