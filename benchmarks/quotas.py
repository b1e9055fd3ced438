"""Client quotas (issue 13, item 5): a producer whose client id has producer_byte_rate=1 MB/s
against an unlimited producer on the same broker, a consumer with consumer_byte_rate=1 MB/s,
and what a quota costs a producer that has none, in the same run.

For each ``quota.window.num`` (Kafka's default 11, and 2), on a fresh broker:

1. the unlimited producer alone, no quota set, for ``--seconds``;
2. the quota is set (AlterClientQuotas), then both producers run together: the limited one
   from the start, both measured over ``--seconds`` after a warm-up of ``quota.window.num``
   seconds (the time a new client's burst takes to leave the window);
3. the unlimited producer alone again (the log has grown: the mean of 1 and 3 is its baseline);
4. a consumer whose client id has consumer_byte_rate=1 MB/s reads the topic from its start
   (gigabytes by then) for the same warm-up and ``--seconds``.

Rates count the bytes of records acknowledged (produced) or handed to the application
(consumed) in the measured interval.  Printed: the limited rates and their error against the
quota (the issue asks within 10% over 10 s), the lowest and highest of every 10 s window from
the client's start (the first includes its first burst), and the unlimited producer's rate
beside the limited one, alone before and after, and their ratio.

Then ``--cost-rounds`` rounds on one broker, alternating (ABBA) between no quota at all and a
quota set for another client id, measure the unlimited producer for ``--cost-seconds`` each:
with a quota stored, every request looks up its client's quota (KafkaApis records every
client's rate once any quota exists; kavka, finding none for this client, records nothing).
Printed: each round, the ratio of the means, the broker's CPU time per MB produced (steadier than
throughput when other work shares the machine) and, in process, the microseconds the quota
code of one request takes with and without a stored quota.  Both producers send 10 kB records as fast as
they can (batch.size 64 KiB); each client runs in its own process.

Measured against Kafka 4.1.2 with the same librdkafka producer and Kafka's defaults, a new
greedy producer passes ten seconds' worth at once, then almost nothing until that sample
leaves the window about 11.5 s later, then ten seconds' worth again: 10 s windows read 1.03 to
1.19 MB/s or 0.05 to 0.2 MB/s.  kavka measures a new client's rate over at least one sample
instead of ten (Kafka's SimpleRate; kavka.security.quota_manager), which keeps every 10 s
within a few percent of the quota.

    PYTHONPATH=src python3 benchmarks/quotas.py [--seconds 10] [--rate 1000000] [--only producer|consumer|cost]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
import timeit

from _common import free_port, launch_kavka, stop_process
from confluent_kafka import Consumer, Producer, TopicPartition
from kio.schema.alter_client_quotas.v1 import request as alter

from kavka.api.responses import make
from kavka.client import Client
from kavka.security.quota import CLIENT_ID, PRODUCER_BYTE_RATE, REQUEST_PERCENTAGE, ClientQuotas, entity_of
from kavka.security.quota_manager import ClientQuotaManager

TOPIC = "bench-quota"
VALUE = b"q" * 10_000
WINDOW_NUMS = (11, 2)   # quota.window.num: Kafka's default, and short windows
BUCKET_S = 0.1          # clients report bytes per 100 ms


def _bucket(buckets: dict, origin: float, n: int) -> None:
    key = int((time.monotonic() - origin) / BUCKET_S)
    buckets[key] = buckets.get(key, 0) + n


def produce_until(bootstrap: str, client_id: str, origin: float, stop: float, out) -> None:
    """In its own process (no GIL shared with the other clients): send as fast as possible until
    ``stop`` (time.monotonic), then put the bytes acknowledged in each 100 ms since ``origin``."""
    buckets: dict[int, int] = {}
    producer = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "linger.ms": 5,
                         "batch.size": 65536, "queue.buffering.max.messages": 2000,
                         "message.timeout.ms": 60_000})

    def delivered(err, msg) -> None:
        if err is None:
            _bucket(buckets, origin, len(msg.value()))
    while time.monotonic() < stop:
        try:
            producer.produce(TOPIC, VALUE, on_delivery=delivered)
        except BufferError:
            producer.poll(0.01)
        producer.poll(0)
    producer.purge()
    producer.flush(5)
    out.put(buckets)


def consume_until(bootstrap: str, client_id: str, origin: float, stop: float, out) -> None:
    """As :func:`produce_until`, reading the topic from its start: the bytes handed to the application."""
    buckets: dict[int, int] = {}
    consumer = Consumer({"bootstrap.servers": bootstrap, "client.id": client_id, "group.id": client_id,
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(TOPIC, 0, 0)])
    while time.monotonic() < stop:
        for message in consumer.consume(500, 0.1):
            if message.error() is None:
                _bucket(buckets, origin, len(message.value()))
    consumer.close()
    out.put(buckets)


def rate(buckets: dict, start: float, end: float) -> float:
    """Bytes per second from ``start`` to ``end`` seconds after the client's origin."""
    first, last = round(start / BUCKET_S), round(end / BUCKET_S)
    return sum(n for k, n in buckets.items() if first <= k < last) / (end - start)


def ten_second_range(buckets: dict, end: float) -> tuple[float, float]:
    """The lowest and highest rate of every 10 s window from the start, in steps of 1 s."""
    rates = [rate(buckets, s, s + 10) for s in range(int(end) - 9)]
    return min(rates), max(rates)


def measure(bootstrap: str, clients: list[tuple], warmup: float, seconds: float) -> list[dict]:
    """Run each (function, client id) in its own process from now until ``warmup + seconds``;
    the bytes per 100 ms since now of each (CLOCK_MONOTONIC: the same in every process)."""
    origin = time.monotonic()
    runs = []
    for target, client_id in clients:
        out = multiprocessing.Queue()
        proc = multiprocessing.Process(target=target, args=(bootstrap, client_id, origin,
                                                            origin + warmup + seconds, out))
        proc.start()
        runs.append((proc, out))
    results = [out.get(timeout=warmup + seconds + 60) for _proc, out in runs]
    for proc, _out in runs:
        proc.join(10)
    return results


def set_quota(bootstrap: str, entity: str, key: str, value: float | None) -> None:
    """Set (value None: remove) ``key`` of the client id ``entity``."""
    entry = make(alter.EntryData, entity=(make(alter.EntityData, entity_type="client-id", entity_name=entity),),
                 ops=(make(alter.OpData, key=key, value=float(value or 0), remove=value is None),))
    with Client(bootstrap) as client:
        answer = client.request(make(alter.AlterClientQuotasRequest, entries=(entry,), validate_only=False))
    if answer.entries[0].error_code != 0:
        raise SystemExit(f"AlterClientQuotas: {answer.entries[0].error_code}")


def broker(tmp: str, window_num: int):
    port = free_port()
    return launch_kavka(["-m", "kavka", "serve", "--data-dir", f"{tmp}/data", "--listen", f"127.0.0.1:{port}",
                         "--log-level", "WARNING", "--override", f"quota.window.num={window_num}"], port)


def limited_line(what: str, key: str, buckets: dict, warmup: float, args) -> str:
    mb = 1e6
    got = rate(buckets, warmup, warmup + args.seconds)
    low, high = ten_second_range(buckets, warmup + args.seconds)
    return (f"  limited {what} ({key}={args.rate / mb:.2f} MB/s): {got / mb:.3f} MB/s over {args.seconds:.0f} s "
            f"after {warmup:.0f} s, {100 * (got - args.rate) / args.rate:+.1f}% from the quota; every 10 s "
            f"from its start {low / mb:.3f}..{high / mb:.3f} MB/s ({100 * (low - args.rate) / args.rate:+.1f}%.."
            f"{100 * (high - args.rate) / args.rate:+.1f}%)")


def run_window(window_num: int, args) -> None:
    mb, warmup, seconds = 1e6, float(window_num), args.seconds
    with tempfile.TemporaryDirectory(prefix="kavka-quota-bench-") as tmp:
        proc, bootstrap = broker(tmp, window_num)
        try:
            print(f"quota.window.num={window_num}, quota.window.size.seconds=1:")
            if args.only in (None, "producer"):
                (before,) = measure(bootstrap, [(produce_until, "unlimited")], 1.0, seconds)
                set_quota(bootstrap, "limited", "producer_byte_rate", args.rate)
                limited, beside = measure(bootstrap, [(produce_until, "limited"), (produce_until, "unlimited")],
                                          warmup, seconds)
                (after,) = measure(bootstrap, [(produce_until, "unlimited")], 1.0, seconds)
                print(limited_line("producer", "producer_byte_rate", limited, warmup, args))
                beside_rate = rate(beside, warmup, warmup + seconds)
                alone = [rate(before, 1.0, 1.0 + seconds), rate(after, 1.0, 1.0 + seconds)]
                print(f"  unlimited producer: {beside_rate / mb:.1f} MB/s beside it, alone {alone[0] / mb:.1f} "
                      f"before and {alone[1] / mb:.1f} MB/s after (ratio to their mean "
                      f"{beside_rate / statistics.mean(alone):.2f})")
            if args.only in (None, "consumer"):
                if args.only == "consumer":   # something to read: at least warmup + seconds at the quota, twice
                    measure(bootstrap, [(produce_until, "filler")], 0.0, 2.0)
                set_quota(bootstrap, "limited-reader", "consumer_byte_rate", args.rate)
                (reader,) = measure(bootstrap, [(consume_until, "limited-reader")], warmup, seconds)
                print(limited_line("consumer", "consumer_byte_rate", reader, warmup, args))
        finally:
            stop_process(proc)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def quota_path_cost_us(with_quota: bool) -> float:
    """In process: what the produce path's quota code costs one request of a client without a
    quota (its bytes and its handler time counted), in µs."""
    quotas = ClientQuotas()
    if with_quota:
        quotas = quotas.altered(entity_of([(CLIENT_ID, "someone-else")]), {PRODUCER_BYTE_RATE: 1e6})
    manager = ClientQuotaManager(lambda: quotas, 11, 1, time.monotonic)

    def one_request() -> None:
        manager.record(PRODUCER_BYTE_RATE, "ANONYMOUS", "unlimited", 65536)
        manager.record(REQUEST_PERCENTAGE, "ANONYMOUS", "unlimited", 0.01)
    return min(timeit.repeat(one_request, number=20_000, repeat=5)) / 20_000 * 1e6


def run_cost(args) -> None:
    """ABBA rounds: no quota stored, then a quota for another client id, on one broker.  Besides
    the throughput (which other work on the machine moves a lot) the broker's CPU time per MB."""
    mb = 1e6
    got: dict[bool, list[float]] = {False: [], True: []}
    cpu: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="kavka-quota-cost-") as tmp:
        proc, bootstrap = broker(tmp, 11)
        try:
            for i in range(args.cost_rounds):
                with_quota = i % 4 in (1, 2)
                set_quota(bootstrap, "someone-else", "producer_byte_rate", args.rate if with_quota else None)
                used = cpu_seconds(proc.pid)
                (buckets,) = measure(bootstrap, [(produce_until, "unlimited")], 1.0, args.cost_seconds)
                used = cpu_seconds(proc.pid) - used
                got[with_quota].append(rate(buckets, 1.0, 1.0 + args.cost_seconds))
                cpu[with_quota].append(used * 1e3 / (sum(buckets.values()) / mb))
        finally:
            stop_process(proc)
    # each B round against the A round next to it (ABBA: rounds 0-1, 3-2, 4-5, 7-6, ...: the k-th of
    # each): drift, such as the kernel's writeback once the log is gigabytes, moves both alike
    rate_ratio = statistics.median(b / a for a, b in zip(got[False], got[True]))
    cpu_ratio = statistics.median(b / a for a, b in zip(cpu[False], cpu[True]))
    print(f"cost of a stored quota to a producer without one ({args.cost_rounds} ABBA rounds of "
          f"{args.cost_seconds:.0f} s, the producer's own client id has no quota):")
    print(f"  throughput: no quota {' '.join(f'{r / mb:.1f}' for r in got[False])} MB/s, a quota for another "
          f"client id {' '.join(f'{r / mb:.1f}' for r in got[True])} MB/s; median ratio of neighbouring rounds "
          f"{rate_ratio:.3f}")
    print(f"  broker CPU per MB produced: no quota {' '.join(f'{c:.2f}' for c in cpu[False])} ms, a quota for "
          f"another {' '.join(f'{c:.2f}' for c in cpu[True])} ms; median ratio of neighbouring rounds "
          f"{cpu_ratio:.3f}")
    bare, looked_up = quota_path_cost_us(False), quota_path_cost_us(True)
    per_request_us = statistics.median(cpu[False]) * 1e3 * 65536 / mb   # a request: about one 64 KiB batch
    print(f"  in process, the quota code of one request: {bare:.2f} µs without a stored quota, {looked_up:.2f} µs "
          f"with one for another client ({100 * (looked_up - bare) / per_request_us:.2f}% of the broker's "
          f"{per_request_us:.0f} µs of CPU per 64 KiB request)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=1_000_000, help="byte rate of the limited clients")
    parser.add_argument("--only", choices=("producer", "consumer", "cost"))
    parser.add_argument("--cost-rounds", type=int, default=12)
    parser.add_argument("--cost-seconds", type=float, default=3.0)
    args = parser.parse_args()
    if args.only != "cost":
        for window_num in WINDOW_NUMS:
            run_window(window_num, args)
    if args.only in (None, "cost"):
        run_cost(args)


if __name__ == "__main__":
    main()
