"""``kavka dump-log``: a segment written by a real producer, printed batch by batch and
record by record in kafka-dump-log's wording; a flipped byte shows as isvalid: false."""

from __future__ import annotations

import re
import subprocess
import sys

from confluent_kafka import Producer

from kavka.protocol.records import HEADER_SIZE


def kavka(*args: str):
    return subprocess.run([sys.executable, "-m", "kavka", *args], capture_output=True, text=True, timeout=60)


def write_records(broker, topic: str, codec: str) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "compression.type": codec,
                         "linger.ms": 20, "enable.idempotence": True})
    for i in range(5):
        producer.produce(topic, key=b"k%d" % i, value=b"value-%d" % i, partition=0, timestamp=1_700_000_000_000 + i,
                         headers=[("trace", b"t%d" % i)])
    producer.flush(10)
    producer.produce(topic, key=None, value=b"last", partition=0, timestamp=1_700_000_000_100)
    assert producer.flush(10) == 0


def segment_files(broker, topic: str):
    directory = broker.data_dir / f"{topic}-0"
    return directory / "00000000000000000000.log", directory / "00000000000000000000.timeindex"


def test_batches_and_records_are_printed(kavka_broker_factory):
    broker = kavka_broker_factory({"num.partitions": 1})
    write_records(broker, "dumped", "zstd")
    log, timeindex = segment_files(broker, "dumped")
    result = kavka("dump-log", str(log), "--print-data-log")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == [f"Dumping {log}", "Log starting offset: 0"]
    batches = [line for line in lines if line.startswith("baseOffset:")]
    assert len(batches) == 2
    assert re.match(r"baseOffset: 0 lastOffset: 4 count: 5 baseSequence: 0 lastSequence: 4 producerId: \d+ "
                    r"producerEpoch: 0 partitionLeaderEpoch: 0 isTransactional: false isControl: false "
                    r"position: 0 CreateTime: 1700000000004 size: \d+ magic: 2 compresscodec: zstd crc: \d+ "
                    r"isvalid: true$", batches[0]), batches[0]
    assert batches[1].startswith("baseOffset: 5 lastOffset: 5 count: 1 baseSequence: 5")
    records = [line for line in lines if line.startswith("| ")]
    assert records[0] == ("| offset: 0 CreateTime: 1700000000000 keySize: 2 valueSize: 7 sequence: 0 "
                          "headerKeys: [trace] key: k0 payload: value-0")
    assert records[5] == ("| offset: 5 CreateTime: 1700000000100 keySize: -1 valueSize: 4 sequence: 5 "
                          "headerKeys: [] key: null payload: last")
    assert kavka("dump-log", str(timeindex)).returncode == 0


def test_a_flipped_byte_is_reported_and_fails(kavka_broker_factory, tmp_path):
    broker = kavka_broker_factory({"num.partitions": 1})
    write_records(broker, "damaged", "none")
    log, _ = segment_files(broker, "damaged")
    copy = tmp_path / log.name
    data = bytearray(log.read_bytes())
    data[HEADER_SIZE + 3] ^= 0xFF         # inside the first batch's records
    copy.write_bytes(bytes(data) + b"\x00\x00\x00")   # and a torn tail
    result = kavka("dump-log", str(copy), "--print-data-log")
    assert result.returncode == 1
    batches = [line for line in result.stdout.splitlines() if line.startswith("baseOffset:")]
    assert batches[0].endswith("isvalid: false") and batches[1].endswith("isvalid: true")
    assert result.stdout.splitlines()[-1].startswith("Found 3 trailing bytes at position")


def test_bad_arguments_are_one_line_errors(tmp_path):
    result = kavka("dump-log", str(tmp_path / "missing.log"))
    assert (result.returncode, result.stderr.strip()) == (1, f"kavka dump-log: {tmp_path / 'missing.log'}: no such file")
    odd = tmp_path / "notes.txt"
    odd.write_text("x")
    assert kavka("dump-log", str(odd)).stderr.strip().endswith("the file name is not a base offset "
                                                               "(like 00000000000000000000.log)")
