"""Decompression bombs (issue #9 item 1) against a real ``kavka serve`` process.

A bomb is a record batch of a few KB whose records section inflates to MBs or
GBs.  The broker decompresses records only where it must read them: the
compacted-topic key check at produce and the cleaner.  There it stops at
``max.uncompressed.message.bytes`` (kavka's setting, default 64 MiB) and
answers INVALID_RECORD.  Apache Kafka has no such bound: its LogValidator
decompresses every record of a compressed batch (to assign offsets, and for
the key check on compacted topics) with no output limit, so the same batch
costs a Kafka broker as much heap as it inflates to.  kavka is stricter.

Before the fix (294148f) the key check decompressed the whole section, then
failed to parse the zeros as records: the answer was CORRUPT_MESSAGE (2), not
INVALID_RECORD (87), and the 1 GiB case took the broker's RSS past 1 GiB.
"""

from __future__ import annotations

import datetime
import hashlib
import struct
import threading
import time
from pathlib import Path

import psutil
import pytest
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

import cramjam
from broker_process import create_topic, read_all
from kavka.client import Client
from kavka.protocol import record_codec as rc

MiB = 1 << 20
SMALL_LIMIT = MiB  # the topic-level max.uncompressed.message.bytes of the cheap cases
TS = 1_700_000_000_000


def zeros_compressed(codec: int, size: int) -> bytes:
    """``size`` zero bytes compressed with ``codec``, streamed 1 MiB at a time (cheap in RAM)."""
    if codec == rc.SNAPPY:  # raw snappy has no streaming form; its ratio is ~21:1 at best
        return bytes(cramjam.snappy.compress_raw(bytes(size)))
    module = {rc.GZIP: cramjam.gzip, rc.LZ4: cramjam.lz4, rc.ZSTD: cramjam.zstd}[codec]
    compressor, chunk = module.Compressor(), bytes(MiB)
    for _ in range(size // MiB):
        compressor.compress(chunk)
    return bytes(compressor.finish())


def bomb_batch(codec: int, inflated: int, count: int = 1) -> bytes:
    """A v2 batch with a valid CRC declaring ``count`` records whose section inflates to ``inflated`` bytes."""
    tail = struct.pack(">hiqqqhii", codec, count - 1, TS, TS, -1, -1, -1, count) + zeros_compressed(codec, inflated)
    return rc._finish_batch(0, -1, tail)


def produce(bootstrap: str, topic: str, batch: bytes) -> int:
    request = ProduceRequest(transactional_id=None, acks=1, timeout=datetime.timedelta(seconds=10), topic_data=(
        TopicProduceData(name=topic, partition_data=(PartitionProduceData(index=0, records=batch),)),))
    with Client(bootstrap) as client:
        response = client.request(request)
    return response.responses[0].partition_responses[0].error_code


def snapshot(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir()) if p.is_file()}


def peak_rss(pid: int) -> int:
    """The process's high-water RSS in bytes (VmHWM: catches a spike a poll would miss)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


class SteadyTraffic:
    """A confluent-kafka producer sending numbered records to ``topic`` until stopped
    (bounded: at most ``limit`` records); ``acked`` are the values the broker acknowledged."""

    def __init__(self, bootstrap: str, topic: str, limit: int = 400) -> None:
        from confluent_kafka import Producer
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
        self.topic, self.limit = topic, limit
        self.acked: list[bytes] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _delivered(self, err, msg) -> None:
        (self.errors.append(str(err)) if err else self.acked.append(msg.value()))

    def _run(self) -> None:
        for i in range(self.limit):
            if self.stop.is_set():
                break
            self.producer.produce(self.topic, value=b"v%d" % i, callback=self._delivered)
            self.producer.poll(0.01)
        self.producer.flush(15)

    def __enter__(self) -> "SteadyTraffic":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        time.sleep(0.2)  # some records after the attack too
        self.stop.set()
        self.thread.join(30)

    def check_read_back(self, bootstrap: str) -> None:
        assert not self.errors, self.errors[:3]
        assert self.acked, "the steady producer got no acknowledgement"
        values = [v for _o, _k, v in read_all(bootstrap, self.topic, 1)[0]]
        assert values == sorted(self.acked, key=lambda v: int(v[1:]))


@pytest.fixture
def bomb_broker(broker_process_factory):
    broker = broker_process_factory()
    create_topic(broker.bootstrap_servers, "steady", 1)
    return broker


def _attack(broker, topic: str, batch: bytes) -> tuple[int, int]:
    """(error code, broker peak-RSS growth) of producing ``batch`` while steady traffic runs."""
    partition_dir = broker.data_dir / f"{topic}-0"
    before = snapshot(partition_dir)
    base = peak_rss(broker.pid)
    with SteadyTraffic(broker.bootstrap_servers, "steady") as steady:
        time.sleep(0.2)
        code = produce(broker.bootstrap_servers, topic, batch)
    growth = peak_rss(broker.pid) - base
    assert snapshot(partition_dir) == before, "a refused batch left the data dir unchanged"
    steady.check_read_back(broker.bootstrap_servers)
    assert broker.running and psutil.Process(broker.pid).is_running()
    return code, growth


@pytest.mark.parametrize("codec,inflated", [
    pytest.param(rc.GZIP, 16 * MiB, id="gzip"),
    pytest.param(rc.SNAPPY, 8 * MiB, id="snappy"),
    pytest.param(rc.LZ4, 16 * MiB, id="lz4"),
    pytest.param(rc.ZSTD, 64 * MiB, id="zstd"),
])
def test_bomb_to_compacted_topic_is_invalid_record_with_bounded_memory(bomb_broker, codec, inflated):
    create_topic(bomb_broker.bootstrap_servers, "bomb", 1,
                 {"cleanup.policy": "compact", "max.uncompressed.message.bytes": str(SMALL_LIMIT)})
    batch = bomb_batch(codec, inflated)
    assert len(batch) < inflated // 15  # a small request
    code, growth = _attack(bomb_broker, "bomb", batch)
    assert code == 87  # INVALID_RECORD
    # Bound: the 1 MiB limit (+1) buffers and a few copies (measured <3 MiB; unbounded: 8.7-128 MiB).
    assert growth < 6 * MiB, f"broker peak RSS grew {growth / MiB:.1f} MiB"


def test_bomb_checked_off_the_event_loop_is_invalid_record_too(bomb_broker):
    """Declaring more than validator.OFFLOAD_RECORDS records sends the key check to a worker thread."""
    from kavka.log.validator import OFFLOAD_RECORDS
    create_topic(bomb_broker.bootstrap_servers, "bomb", 1,
                 {"cleanup.policy": "compact", "max.uncompressed.message.bytes": str(SMALL_LIMIT)})
    code, growth = _attack(bomb_broker, "bomb", bomb_batch(rc.ZSTD, 64 * MiB, OFFLOAD_RECORDS + 10_000))
    assert code == 87  # INVALID_RECORD
    assert growth < 6 * MiB, f"broker peak RSS grew {growth / MiB:.1f} MiB"


def test_gigabyte_zstd_bomb_at_the_default_limit(bomb_broker):
    create_topic(bomb_broker.bootstrap_servers, "bomb", 1, {"cleanup.policy": "compact"})
    batch = bomb_batch(rc.ZSTD, 1024 * MiB)  # ~32 KB on the wire
    assert len(batch) < 64 * 1024
    code, growth = _attack(bomb_broker, "bomb", batch)
    assert code == 87  # INVALID_RECORD
    # Bound: 64 MiB + 1 output buffer, its predecessor and the copy of the result: well under 1 GiB.
    assert growth < 256 * MiB, f"broker peak RSS grew {growth / MiB:.1f} MiB"


# -- a bomb stored on a delete-policy topic ------------------------------------------------------
# Produce to a topic that is not compacted reads no record (like Kafka with the
# same codec), so the bomb is accepted and stored as sent; it is the readers'
# problem.  The broker serves its bytes undecoded; kavka's own tools decode with
# a bound (64 MiB by default, ``kavka consume --max-uncompressed-bytes``).

def _good(value: bytes) -> bytes:
    return rc.encode_batch([(b"k", value, TS, ())])


@pytest.fixture
def stored_bomb(bomb_broker):
    """Topic 'plain' (delete policy): a good record, a 1 GiB zstd bomb, a good record (offsets 0, 1, 2)."""
    bootstrap = bomb_broker.bootstrap_servers
    create_topic(bootstrap, "plain", 1)
    for batch in (_good(b"before"), bomb_batch(rc.ZSTD, 1024 * MiB), _good(b"after")):
        assert produce(bootstrap, "plain", batch) == 0
    return bomb_broker


@pytest.mark.slow  # stored_bomb: a broker process and a stored bomb
def test_stored_bomb_is_served_to_confluent_consumer_with_bounded_broker_memory(stored_bomb):
    from confluent_kafka import Consumer, TopicPartition
    bootstrap = stored_bomb.bootstrap_servers
    base = peak_rss(stored_bomb.pid)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bomb-reader", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest"})
    got, errors = [], []
    with SteadyTraffic(bootstrap, "steady") as steady:
        consumer.assign([TopicPartition("plain", 0, 0)])
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline and len(got) < 2:  # librdkafka's own handling of the bomb is its own
            for msg in consumer.consume(num_messages=100, timeout=0.2):
                (errors.append(msg.error()) if msg.error() else got.append(msg.value()))
        consumer.close()
    growth = peak_rss(stored_bomb.pid) - base
    assert stored_bomb.running
    assert got[:1] == [b"before"], (got, errors)
    assert growth < 32 * MiB, f"broker peak RSS grew {growth / MiB:.1f} MiB serving a stored bomb"
    steady.check_read_back(bootstrap)


# The CLI decodes into a buffer grown towards the 64 MiB limit, with the allocator's own slack on
# top: 114-284 MiB measured on a 2-core VM, against 2,088 MiB with unbounded decompression.
CLI_PEAK_BOUND = 512 * MiB

# `python -m kavka ARGS` that reports its own peak RSS (KiB) as a last stderr line at exit.
_PEAK_RSS_WRAPPER = ("import atexit, resource, runpy, sys\n"
                     "atexit.register(lambda: print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
                     " file=sys.stderr))\n"
                     "sys.argv = ['kavka', *sys.argv[1:]]\n"
                     "runpy.run_module('kavka', run_name='__main__')\n")


def _cli(*args: str, timeout: float = 60) -> tuple[int, bytes, list[str], int]:
    """(exit status, stdout, stderr lines without the peak-RSS one, peak RSS in bytes)."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", _PEAK_RSS_WRAPPER, *args], capture_output=True, timeout=timeout)
    lines = done.stderr.decode(errors="replace").splitlines()
    peak = [int(line.split()[1]) * 1024 for line in lines if line.startswith("MAXRSS ")]
    assert peak, lines[-5:]
    return done.returncode, done.stdout, [line for line in lines if not line.startswith("MAXRSS ")], peak[-1]


@pytest.mark.slow  # stored_bomb: a broker process and a stored bomb
def test_kavka_consume_skips_a_stored_bomb_with_one_line_and_exit_1(stored_bomb):
    # Before the fix: no handler, so a traceback on the zeros it inflated (or an allocation abort).
    code, out, lines, peak = _cli("consume", "-b", stored_bomb.bootstrap_servers, "plain", "--from-beginning",
                                  "--timeout", "2")
    assert code == 1, lines
    assert out.splitlines() == [b"before", b"after"]
    assert len([line for line in lines if "skipped the batch at offsets 1-1" in line]) == 1, lines
    assert not any("Traceback" in line for line in lines)
    assert "1 undecodable batch skipped" in lines[-1]
    assert peak < CLI_PEAK_BOUND, f"kavka consume peaked at {peak / MiB:.0f} MiB on a 1 GiB bomb"
    assert stored_bomb.running


@pytest.mark.slow  # stored_bomb: a broker process and a stored bomb
def test_kavka_export_stops_at_a_stored_bomb_with_one_line(stored_bomb, tmp_path):
    code, _out, lines, peak = _cli("export", "-b", stored_bomb.bootstrap_servers, "plain", "--format", "jsonl",
                                   "-o", str(tmp_path / "out.jsonl"))
    assert code != 0
    lines = [line for line in lines if line.strip()]
    assert len(lines) == 1 and "does not decode" in lines[0], lines
    assert peak < CLI_PEAK_BOUND, f"kavka export peaked at {peak / MiB:.0f} MiB on a 1 GiB bomb"
    assert stored_bomb.running
