#!/usr/bin/env python3
"""What TLS and SASL cost: produce and consume throughput and latency (end to end, and produce to acknowledgement, p99) over
PLAINTEXT, SSL and SASL_SSL (PLAIN) listeners of one kavka broker, in one run, with the
ratios to PLAINTEXT.

One ``python -m kavka serve`` with three listeners; certificates are generated for the run
(tests/integration/tls_certs.py, ``cryptography``).  The same confluent-kafka settings as
benchmarks/produce_consume.py (linger.ms=5, batch.size=1 MiB, acks=1; the latency run at a fixed rate with linger.ms=1).  Over TLS a fetch
cannot use sendfile: kavka reads each log region with pread and writes it through the SSL
transport in 256 KiB chunks, so the consume figures show the cost of that copy plus the
encryption.

    python benchmarks/security.py --quick
    python benchmarks/security.py --records 200000 --size 1024 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))

from _common import free_port, launch_kavka, stop_process  # noqa: E402
from _kafka_bench import _client_base, consume, create_topic, latency, produce  # noqa: E402

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_SSL")
JAAS = 'org.apache.kafka.common.security.plain.PlainLoginModule required user_bench="bench-secret";'


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def start_broker(directory: Path):
    from tls_certs import make_pki
    pki = make_pki(directory / "pki")
    ports = {p: free_port() for p in PROTOCOLS}
    listeners = ",".join(f"{p}://127.0.0.1:{port}" for p, port in ports.items())
    overrides = {"listeners": listeners, "ssl.keystore.location": str(pki.server),
                 "sasl.enabled.mechanisms": "PLAIN", "listener.name.sasl_ssl.plain.sasl.jaas.config": JAAS}
    argv = ["-m", "kavka", "serve", "--data-dir", str(directory / "data"), "--log-level", "WARNING"]
    for name, value in overrides.items():
        argv += ["--override", f"{name}={value}"]
    proc, _ = launch_kavka(argv, ports["SASL_SSL"])
    security = {
        "PLAINTEXT": {},
        "SSL": {"security.protocol": "SSL", "ssl.ca.location": str(pki.ca)},
        "SASL_SSL": {"security.protocol": "SASL_SSL", "ssl.ca.location": str(pki.ca), "sasl.mechanism": "PLAIN",
                     "sasl.username": "bench", "sasl.password": "bench-secret"},
    }
    return proc, ports, security


def with_security(security: dict):
    """Make _kafka_bench's clients use ``security`` (its workloads build every config from _client_base)."""
    import _kafka_bench as kb
    kb._client_base = lambda bootstrap: _client_base(bootstrap) | security


def one_round(args, port: int, security: dict, name: str) -> dict:
    bootstrap, topic = f"127.0.0.1:{port}", f"bench-{name}"
    with_security(security)
    produced = produce(bootstrap, topic, args.records, args.size, "1", args.timeout)
    consumed = consume(bootstrap, topic, args.records, args.size, args.timeout)
    create_topic(bootstrap, f"{topic}-lat", 1)
    timed = latency(bootstrap, f"{topic}-lat", args.rate, args.seconds, args.size, "1", 1, args.timeout,
                    consumer_overrides=security)
    log(f"{name}: produce {produced['mb_per_s']:.1f} MB/s, consume {consumed['mb_per_s']:.1f} MB/s, "
        f"end-to-end p99 {timed['p99_ms']:.2f} ms, ack p99 {timed['ack_p99_ms']:.2f} ms")
    return {"produce_mb_s": produced["mb_per_s"], "consume_mb_s": consumed["mb_per_s"],
            "e2e_p99_ms": timed["p99_ms"], "ack_p99_ms": timed["ack_p99_ms"]}


def run(args) -> dict:
    """Each figure: the median over the rounds."""
    rounds: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="kavka-secbench-") as tmp:
        proc, ports, security = start_broker(Path(tmp))
        try:
            with_security({})   # warm-up: first connections, imports, page cache; no figure
            produce(f"127.0.0.1:{ports['PLAINTEXT']}", "bench-warmup", args.records // 4, args.size, "1", args.timeout)
            consume(f"127.0.0.1:{ports['PLAINTEXT']}", "bench-warmup", args.records // 4, args.size, args.timeout)
            for round_no in range(args.rounds):   # interleaved, so load from elsewhere hits all alike
                for protocol in PROTOCOLS:
                    rounds.setdefault(protocol, []).append(one_round(args, ports[protocol], security[protocol],
                                                                     f"{protocol.lower().replace('_', '-')}-{round_no}"))
        finally:
            stop_process(proc)
    return {protocol: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            for protocol, runs in rounds.items()}


COLUMNS = (("produce_mb_s", "produce MB/s"), ("consume_mb_s", "consume MB/s"),
           ("e2e_p99_ms", "e2e p99 ms"), ("ack_p99_ms", "ack p99 ms"))


def print_table(results: dict, args) -> None:
    base = results["PLAINTEXT"]
    print(f"\n{args.records:,} records of {args.size} B, acks=1; latency at {args.rate} rec/s for "
          f"{args.seconds:.0f} s; medians of {args.rounds} interleaved rounds; ratio = listener / PLAINTEXT")
    print(f"{'listener':<10}" + "".join(f" {title:>13} {'ratio':>6}" for _key, title in COLUMNS))
    for protocol, r in results.items():
        print(f"{protocol:<10}" + "".join(f" {r[key]:>13.2f} {r[key] / base[key]:>6.2f}" for key, _t in COLUMNS))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--rate", type=int, default=2000, help="records/s of the latency run")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the latency run")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the medians are reported")
    parser.add_argument("--quick", action="store_true", help="50,000 records, a 3 s latency run, one round")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.records, args.seconds, args.rounds = 50_000, 3.0, 1
    results = run(args)
    print_table(results, args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
