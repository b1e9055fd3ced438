"""kavka.api.slicing: sliced encoding is byte-identical to kio's, and steps really yield."""

from __future__ import annotations

import uuid

import pytest

from kavka.api.responses import Builder
from kavka.api.slicing import encode_steps, map_steps, run_steps, unique
from kavka.protocol import messages
from kavka.protocol.errors import ErrorCode


@pytest.mark.parametrize("version", [0, 4, 9, 12, 13])
@pytest.mark.parametrize("count", [0, 1, 7, 130])
def test_sliced_metadata_encoding_matches_kio(version, count):
    r = Builder(3, version)
    topics = tuple(r.MetadataResponseTopic(
        error_code=ErrorCode.none, name=f"t{i}", topic_id=uuid.UUID(int=i), is_internal=False,
        partitions=(r.MetadataResponsePartition(
            error_code=ErrorCode.none, partition_index=0, leader_id=1, leader_epoch=0, replica_nodes=(1,),
            isr_nodes=(1,), offline_replicas=()),), topic_authorized_operations=-2**31) for i in range(count))
    response = r.MetadataResponse(error_code=ErrorCode.none, brokers=(), cluster_id="c", controller_id=1,
                                  topics=topics, cluster_authorized_operations=-2**31)
    raw = run_steps(encode_steps(response, "topics", every=3))
    assert b"".join(raw.parts) == messages.encode_response(response)
    assert raw.size == len(messages.encode_response(response))


def _drive(steps) -> tuple[list, int]:
    """(value, number of yields) of a stepping generator."""
    yields = 0
    while True:
        try:
            next(steps)
            yields += 1
        except StopIteration as done:
            return done.value, yields


def test_steps_yield_once_per_slice():
    value, yields = _drive(map_steps(lambda x: x * 2, list(range(10)), every=4))
    assert value == [x * 2 for x in range(10)]
    assert yields == 2


def test_weighted_steps_yield_after_each_heavy_item():
    # a creation weighs a whole slice: the loop is given back after it, before the next item
    value, yields = _drive(map_steps(lambda x: -x, [1, 2, 3, 4, 5], every=4,
                                     weight=lambda x: 4 if x in (2, 3) else 1))
    assert value == [-1, -2, -3, -4, -5]
    assert yields == 2  # after 1+2 (weight 5) and after 3 (weight 4); 4+5 weigh 2


def test_unique_keeps_first_position_and_last_value():
    assert unique([("a", 1), ("b", 2), ("a", 3)], key=lambda x: x[0]) == [("a", 3), ("b", 2)]
