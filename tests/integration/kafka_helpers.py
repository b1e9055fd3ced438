"""Helpers for tests that drive real Kafka clients over loopback."""

from __future__ import annotations

import time

# keyed records with headers and explicit timestamps, spread over 3 partitions
BASE_TS = 1_700_000_000_000


def sample_records(count: int = 30, partitions: int = 3):
    """(partition, key, value, headers, timestamp_ms) with distinct content per record."""
    return [
        (i % partitions, f"key-{i}".encode(), f"value-{i}-".encode() * (1 + i % 7),
         [("h1", f"hv{i}".encode()), ("h2", b"")], BASE_TS + i * 1000)
        for i in range(count)
    ]


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")




def stored_batches(broker, topic: str, partition: int) -> list[dict]:
    """Headers of the record batches a broker holds on disk, in Kafka's segment layout."""
    from kavka.protocol.records import iter_batches

    batches = []
    for path in sorted((broker.data_dir / f"{topic}-{partition}").glob("*.log")):
        for _pos, h in iter_batches(path.read_bytes()):
            batches.append({"base_offset": h.base_offset, "magic": h.magic, "codec": h.compression,
                            "producer_id": h.producer_id, "producer_epoch": h.producer_epoch,
                            "base_sequence": h.base_sequence, "count": h.records_count})
    return batches
