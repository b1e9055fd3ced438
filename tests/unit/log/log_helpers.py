"""Helpers for the storage tests: batches and configs (imported as ``log_helpers``)."""

from __future__ import annotations

from kavka.config import BrokerConfig, TopicConfig
from kavka.protocol.record_codec import encode_batch

T0 = 1_700_000_000_000


def topic_config(**overrides) -> TopicConfig:
    """A topic config; keyword names use '_' for '.' (segment_bytes=...)."""
    return BrokerConfig().topic_config({k.replace("_", "."): v for k, v in overrides.items()})


def make_batch(count: int = 1, timestamp: int = T0, value_size: int = 10, *, timestamps=None,
               base_offset: int = 0, leader_epoch: int = -1, codec: int = 0) -> bytearray:
    """A valid v2 batch of ``count`` records (timestamps default to ``timestamp + i``)."""
    stamps = timestamps if timestamps is not None else [timestamp + i for i in range(count)]
    records = [(b"k%d" % i, bytes([i % 251]) * value_size, ts, ()) for i, ts in enumerate(stamps)]
    return bytearray(encode_batch(records, base_offset=base_offset, partition_leader_epoch=leader_epoch,
                                  codec=codec))


def all_batches(plog, max_offset=None) -> list[bytes]:
    """Every stored batch of a partition log (up to ``max_offset``), as bytes."""
    from kavka.protocol.records import iter_batches
    data = b"".join(s.read() for s in plog.read(plog.log_start_offset, 10**7, max_offset=max_offset).slices)
    return [data[p : p + h.size] for p, h in iter_batches(data)]
