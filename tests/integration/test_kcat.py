"""The kcat command-line client (librdkafka 2.0 inside) against a real kavka broker.

Produce (-P) keyed records with headers into chosen partitions with every codec,
consume (-C) them back as JSON, list metadata (-L) and query offsets by time (-Q).
Each kcat run is a subprocess with a timeout.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from kafka_helpers import BASE_TS, stored_batches

pytestmark = [pytest.mark.kcat,
              pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed")]

KCAT_TIMEOUT = 30
CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def kcat(broker, *args: str, input: bytes | None = None) -> str:
    result = subprocess.run(["kcat", "-b", broker.bootstrap_servers, "-X", "socket.timeout.ms=10000",
                             *args], input=input, capture_output=True, timeout=KCAT_TIMEOUT)
    assert result.returncode == 0, (args, result.stderr.decode(errors="replace"))
    return result.stdout.decode()


def kcat_produce(broker, topic: str, partition: int, lines: list[bytes], headers: list[str] = (),
                 codec: str = "none", *extra: str) -> None:
    """One kcat -P run: ``key:value`` lines into one partition, the same headers on each."""
    header_args = [arg for h in headers for arg in ("-H", h)]
    kcat(broker, "-P", "-t", topic, "-p", str(partition), "-K:", "-z", codec, *header_args, *extra,
         input=b"".join(line + b"\n" for line in lines))


def kcat_consume(broker, topic: str, *extra: str) -> list[dict]:
    """Every record of the topic, as kcat's JSON envelopes (one per line)."""
    out = kcat(broker, "-C", "-t", topic, "-e", "-o", "beginning", "-J", "-q", *extra)
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def create_topic(broker, name: str, partitions: int = 3) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic(name, partitions, 1)], operation_timeout=10)[name].result(timeout=15)


def flat_headers(pairs) -> list:
    return [x for k, v in pairs for x in (k, v)]


@pytest.mark.parametrize("codec", list(CODECS))
def test_produce_and_consume_keyed_records_with_headers(broker, codec):
    topic = f"kcat-{codec}"
    create_topic(broker, topic)
    sent: dict[int, list] = {}
    before = int(time.time() * 1000)
    for partition in range(3):
        lines = [(f"key-{partition}-{i}", f"value-{partition}-{i}-" * (1 + i % 5)) for i in range(20)]
        headers = [("h1", f"hv{partition}"), ("h2", ""), ("codec", codec)]
        kcat_produce(broker, topic, partition, [f"{k}:{v}".encode() for k, v in lines],
                     [f"{k}={v}" for k, v in headers], codec)
        sent[partition] = [(k, v, flat_headers(headers)) for k, v in lines]
    after = int(time.time() * 1000)

    records = kcat_consume(broker, topic)
    assert len(records) == 60
    for partition in range(3):
        got = [r for r in records if r["partition"] == partition]
        assert [r["offset"] for r in got] == list(range(20)), "offsets dense and in order"
        assert [(r["key"], r["payload"], r["headers"]) for r in got] == sent[partition]
        assert all(r["topic"] == topic and r["tstype"] == "create" for r in got)
        assert all(before - 1000 <= r["ts"] <= after + 1000 for r in got)
        assert sum(b["count"] for b in stored_batches(broker, topic, partition)) == 20
    stored_codecs = {b["codec"] for p in range(3) for b in stored_batches(broker, topic, p)}
    if codec == "lz4" and stored_codecs == {0}:
        # librdkafka's LZ4 "feature" is keyed on the broker listing FindCoordinator v0 in
        # ApiVersions; without it librdkafka silently sends LZ4 batches uncompressed
        pytest.xfail("librdkafka sends LZ4 uncompressed until FindCoordinator v0 is advertised")
    # stored as the producer compressed them; librdkafka sends a batch uncompressed when
    # compressing does not make it smaller (a short batch, if timing splits the records)
    assert CODECS[codec] in stored_codecs and stored_codecs <= {0, CODECS[codec]}, stored_codecs


def test_null_and_empty_keys_and_values(broker):
    topic = "kcat-nulls"
    create_topic(broker, topic, partitions=1)
    # with -Z an empty key or value is sent as null; a line without the delimiter has no key
    kcat_produce(broker, topic, 0, [b"a:b", b":", b"no-delimiter", b"k:"], [], "none", "-Z")
    kcat_produce(broker, topic, 0, [b":", b"k:"], ["empty="])  # without -Z: empty, not null
    got = [(r["offset"], r["key"], r["payload"], r.get("headers")) for r in kcat_consume(broker, topic)]
    assert got == [(0, "a", "b", None), (1, None, None, None), (2, None, "no-delimiter", None),
                   (3, "k", None, None), (4, "", "", ["empty", ""]), (5, "k", "", ["empty", ""])]


def test_consume_from_offsets(broker):
    topic = "kcat-offsets"
    create_topic(broker, topic, partitions=1)
    kcat_produce(broker, topic, 0, [f"k{i}:v{i}".encode() for i in range(10)])
    # -o N, -o -N (relative to the end), -c count
    out = kcat(broker, "-C", "-t", topic, "-p", "0", "-o", "7", "-e", "-J", "-q")
    assert [json.loads(line)["payload"] for line in out.splitlines()] == ["v7", "v8", "v9"]
    out = kcat(broker, "-C", "-t", topic, "-p", "0", "-o", "-2", "-e", "-J", "-q")
    assert [json.loads(line)["offset"] for line in out.splitlines()] == [8, 9]
    out = kcat(broker, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-c", "4", "-f", "%o:%k=%s\\n", "-q")
    assert out.splitlines() == ["0:k0=v0", "1:k1=v1", "2:k2=v2", "3:k3=v3"]


def test_metadata_listing(broker):
    create_topic(broker, "kcat-meta-a", partitions=3)
    create_topic(broker, "kcat-meta-b", partitions=1)
    listing = json.loads(kcat(broker, "-L", "-J"))
    port = broker.bootstrap_servers.rsplit(":", 1)[1]
    assert listing["controllerid"] == 0
    assert [(b["id"], b["name"].rsplit(":", 1)[1]) for b in listing["brokers"]] == [(0, port)]
    topics = {t["topic"]: t for t in listing["topics"]}
    assert {"kcat-meta-a", "kcat-meta-b"} <= set(topics)
    for name, count in (("kcat-meta-a", 3), ("kcat-meta-b", 1)):
        assert "error" not in topics[name]
        partitions = sorted(topics[name]["partitions"], key=lambda p: p["partition"])
        assert [p["partition"] for p in partitions] == list(range(count))
        for p in partitions:
            assert p["leader"] == 0
            assert p["replicas"] == [{"id": 0}] and p["isrs"] == [{"id": 0}]

    one = json.loads(kcat(broker, "-L", "-J", "-t", "kcat-meta-b"))
    assert [t["topic"] for t in one["topics"]] == ["kcat-meta-b"]


def test_query_offsets_by_timestamp(broker):
    from confluent_kafka import Producer

    topic = "kcat-times"
    create_topic(broker, topic, partitions=2)
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "linger.ms": 5})
    for i in range(50):
        producer.produce(topic, key=b"k", value=f"v{i}".encode(), partition=0, timestamp=BASE_TS + i * 10)
        if i % 6 == 5:
            producer.flush(10)  # several batches
    assert producer.flush(30) == 0

    def query(partition: int, ts: int) -> int:
        answer = json.loads(kcat(broker, "-Q", "-J", "-t", f"{topic}:{partition}:{ts}"))
        entry = answer[topic][str(partition)]
        assert "error" not in entry, entry
        return entry["offset"]

    cases = {BASE_TS: 0, BASE_TS + 1: 1, BASE_TS + 250: 25, BASE_TS + 255: 26, 1: 0,
             BASE_TS + 490: 49, BASE_TS + 491: -1, -1: 50, -2: 0}
    assert {ts: query(0, ts) for ts in cases} == cases
    assert (query(1, BASE_TS), query(1, -1), query(1, -2)) == (-1, 0, 0)
    # the plain-text form names the offset too
    assert kcat(broker, "-Q", "-t", f"{topic}:0:{BASE_TS + 250}").split() == [topic, "[0]", "offset", "25"]

    # records kcat itself produced carry their creation time: query by it
    kcat_produce(broker, topic, 1, [b"a:1", b"b:2"])
    time.sleep(0.01)
    kcat_produce(broker, topic, 1, [b"c:3"])
    first, _, third = kcat_consume(broker, topic, "-p", "1")
    assert (query(1, first["ts"]), query(1, third["ts"]), query(1, third["ts"] + 1)) == (0, 2, -1)
