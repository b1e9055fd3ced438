"""The cleaner meets batches it cannot decode (issue #9 item 1): a decompression
bomb stored before the produce check existed (or while the topic was not
compacted) and corrupt compressed data.  It keeps them as they are, logs once
per cleaning, compacts the rest and does not fail again on the next pass.

Before the fix (294148f) ``compact`` decoded every batch with no bound and no
handler: the InvalidBatch escaped, the cleaning was abandoned, and the same
segment was chosen again each pass, so the partition never compacted.
Kafka's cleaner decompresses every batch fully (no output bound); an exception
there marks the partition uncleanable (KIP-346, Kafka 2.1; before it the
cleaner thread died), so it stops compacting.  kavka copies the batch through
instead and keeps compacting the rest.
"""

from __future__ import annotations

import asyncio
import logging
import struct

import cramjam
import pytest

from kavka.protocol import record_codec as rc
from kavka.protocol import records
from cleaner_helpers import T0, Env, latest

MiB = 1 << 20


def bomb(inflated: int) -> bytes:
    """A batch with a valid CRC declaring one record whose zstd section inflates to ``inflated`` zero bytes."""
    compressor = cramjam.zstd.Compressor()
    for _ in range(inflated // MiB):
        compressor.compress(bytes(MiB))
    tail = struct.pack(">hiqqqhii", rc.ZSTD, 0, T0, T0, -1, -1, -1, 1) + bytes(compressor.finish())
    return rc._finish_batch(0, -1, tail)


def garbage() -> bytes:
    """A batch with a valid CRC whose zstd section is not zstd."""
    tail = struct.pack(">hiqqqhii", rc.ZSTD, 0, T0, T0, -1, -1, -1, 1) + b"\x28\xb5\x2f\xfd not zstd at all"
    return rc._finish_batch(0, -1, tail)


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path / "data", {"max.uncompressed.message.bytes": str(MiB)})
    yield e
    e.close()


def fill(env, rounds: int, keys: int = 4) -> None:
    for r in range(rounds):
        env.write(*[(b"k%d" % k, b"%d:" % r + bytes(20)) for k in range(keys)])


def stored(env) -> tuple[list, dict[int, bytes]]:
    """((offset, key, value) of the decodable records, {base offset: bytes} of the undecodable batches)."""
    plog = env.log
    data = b"".join(s.read() for s in plog.read(plog.log_start_offset, 1 << 30).slices)
    good, bad = [], {}
    for pos, header in records.iter_batches(data):
        try:
            good.extend((r.offset, r.key, r.value) for r in rc.decode_records(data, pos, MiB))
        except records.InvalidBatch:
            bad[header.base_offset] = data[pos:pos + header.size]
    return good, bad


def poison(env) -> dict[int, bytes]:
    """Closed segments with keyed updates around a 4 MiB bomb and a garbage batch, written past the
    produce check (straight to the log); returns {base offset: batch} of the two."""
    fill(env, 6)
    planted = {}
    for batch in (bomb(4 * MiB), garbage()):
        info = env.log.append(bytearray(batch))
        planted[info.base_offset] = batch
    fill(env, 6)
    return planted


def same_but_offsets(stored_batch: bytes, planted: bytes) -> bool:
    """Equal apart from the base offset and leader epoch the log stamped on (outside the CRC)."""
    return stored_batch[records.CRC_START:] == planted[records.CRC_START:]


def test_cleaner_copies_undecodable_batches_through_and_compacts_the_rest(env, caplog):
    caplog.set_level(logging.WARNING, logger="kavka.log")
    planted = poison(env)
    before, bad_before = stored(env)
    assert set(bad_before) == set(planted)
    result = env.cleaner.clean_once()
    assert result is not None
    assert result.undecodable == 2
    assert "inflate past" in result.undecodable_reason
    assert result.records_kept < result.records_read  # the rest compacted
    after, bad_after = stored(env)
    assert set(bad_after) == set(planted)
    assert all(same_but_offsets(bad_after[o], planted[o]) for o in planted)
    assert latest(after) == latest(before)
    assert len(after) < len(before)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if "do not decode" in w]) == 1, warnings
    # No abort loop: the next passes find nothing new to clean, or clean without failing.
    for _ in range(3):
        env.cleaner.clean_once()
    assert stored(env)[1].keys() == planted.keys()


def test_cleaner_process_survives_a_stored_bomb(env):
    env.cleaner.use_process = True
    planted = poison(env)
    before, _ = stored(env)

    async def main():
        result = await env.cleaner.run_once()
        await env.cleaner.close()
        return result

    result = asyncio.run(main())
    assert result is not None and result.undecodable == 2
    after, bad_after = stored(env)
    assert bad_after.keys() == planted.keys()
    assert latest(after) == latest(before) and len(after) < len(before)
