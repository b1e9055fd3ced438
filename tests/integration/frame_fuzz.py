"""Seeds and mutations for the protocol fuzz test (issue 9, "How it is checked").

Seeds are well-formed request frames (no size prefix) for every API key and
version the broker advertises (``REGISTRY``): a sample request with every field
set, one with every nullable field null (tests/unit/protocol/protocol_samples.py),
the null-in-a-non-nullable-field bodies of tests/integration/null_fields.py, and
the frames captured from real clients (client_frames.py).  Produce v0-2, which
kio does not model, get the v3 body without its transactional id.

Also drawn: well-formed requests whose fields take edge values (0, -1, max,
empty, null, internal topic names, duplicates), the ones that reach handlers.

Mutations are what a hostile or broken client sends: bit flips, truncation,
junk appended, an int16 / int32 / varint overwritten with -1, -2, 0, 0x7fff,
0x7fffffff or a huge varint (where counts and lengths live), another API
version in the header, a bad client-id length.  Everything comes from a
``random.Random(seed)``, so a failure is replayed from its seed.
"""

from __future__ import annotations

import datetime
import random
import struct
import sys
import uuid
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Iterator

from kio.schema.errors import ErrorCode
from kio.serial._introspect import EntityField, EntityTupleField, PrimitiveTupleField, classify_field, is_optional
from kio.serial.readers import tz_aware_from_i64

from kavka.api import registry
from kavka.protocol import messages, record_codec, records
from kavka.protocol.errors import UnsupportedVersion
from kavka.protocol.framing import encode_request_header

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "protocol"))
from client_frames import FRAMES  # noqa: E402
from null_fields import null_bodies  # noqa: E402
from protocol_samples import sample  # noqa: E402

CLIENT_ID = "fuzz"

# Values a count or length is set to: null, below null, empty, int16 max, int32 max.
_INT16 = (-1, -2, 0, 0x7FFF, -0x8000)
_INT32 = (-1, -2, 0, 0x7FFF, 0x7FFFFFFF, -0x80000000)
_VARINTS = (b"\x00", b"\x01", b"\xff\xff\xff\xff\x0f", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
            b"\xfe\xff\xff\xff\x07", b"\x80\x80\x80\x80\x80\x80")


def advertised() -> list[tuple[int, int]]:
    """(api key, version) for everything ApiVersions advertises."""
    import kavka.api  # noqa: F401 - registers the handlers

    return [(spec.key, v) for spec in sorted(registry.REGISTRY.values(), key=lambda s: s.key)
            for v in range(spec.min_version, spec.max_version + 1)]


def header(api_key: int, version: int, correlation_id: int = 1) -> bytes:
    return encode_request_header(api_key, version, correlation_id, CLIENT_ID,
                                 messages.request_header_flexible(api_key, version))


def seeds() -> dict[tuple[int, int], list[bytes]]:
    """Well-formed frames (size prefix stripped) for every advertised (key, version)."""
    out: dict[tuple[int, int], list[bytes]] = {}
    for api_key, version in advertised():
        bodies = _bodies(api_key, version)
        out[(api_key, version)] = [header(api_key, version) + body for body in bodies]
    for frame in (bytes.fromhex(h) for h in FRAMES.values()):
        key = struct.unpack_from(">hh", frame)
        if key in out:
            out[key].append(frame)
    return out


def _bodies(api_key: int, version: int) -> list[bytes]:
    try:
        cls = messages.request_class(api_key, version)
    except UnsupportedVersion:  # Produce v0-2: the v3 body without its (null) transactional id
        return [messages.encode_request(sample(messages.request_class(api_key, 3), with_nulls=True))[2:]]
    bodies = [messages.encode_request(sample(cls)), messages.encode_request(sample(cls, with_nulls=True))]
    bodies += [body for _path, body in null_bodies(api_key, version)][:6]
    return bodies


def _batch_seeds() -> list[bytes]:
    """Valid v2 batches of every codec and kind: plain, idempotent, transactional, control."""
    recs = [(b"k%d" % i if i % 3 else None, b"v" * i, 1_700_000_000_000 + i, [("h", b"x")] if i % 2 else [])
            for i in range(5)]
    out = [record_codec.encode_batch(recs, codec=codec) for codec in (0, 1, 2, 3, 4)]
    out.append(record_codec.encode_batch(recs, producer_id=7, producer_epoch=0, base_sequence=0))
    out.append(record_codec.encode_batch(recs, producer_id=7, producer_epoch=0, base_sequence=0,
                                         transactional=True))
    out.append(record_codec.encode_batch([(None, b"\x00\x00\x00\x00\x00\x00", 1_700_000_000_000, [])],
                                         producer_id=7, producer_epoch=0, transactional=True, control=True))
    out.append(record_codec.encode_batch(recs, log_append_time=1_700_000_000_000))
    return out


BATCHES = _batch_seeds()


def fix_crc(buf: bytearray) -> None:
    """Rewrite the CRC of the batch at 0 so the mutated bytes behind it get parsed."""
    if len(buf) >= records.HEADER_SIZE:
        size = struct.unpack_from(">i", buf, 8)[0] + records.LOG_OVERHEAD
        if records.HEADER_SIZE <= size <= len(buf):
            struct.pack_into(">I", buf, 17, records.compute_crc(buf, 0, size))


def mutated_batch(rng: random.Random) -> bytes:
    """A seed batch with one to three mutations after its base offset; CRC fixed half the time."""
    original = rng.choice(BATCHES)
    buf = bytearray(mutate(rng, original, (0, 0)))
    buf[:8] = original[:8]  # mutate() spares the first 8 bytes (a frame's header), so do we
    if rng.random() < 0.5:
        fix_crc(buf)
    return bytes(buf)


# Field values at the edges, for requests that decode but carry what a handler may not expect.
_EDGES = {
    "bool": (False, True),
    "int8": (0, 1, -1, 127, -128),
    "int16": (0, 1, -1, -2, 0x7FFF, -0x8000),
    "int32": (0, 1, 3, -1, -2, 0x7FFFFFFF, -0x80000000),
    "int64": (0, 1, -1, -2, 2**63 - 1, -2**63),
    "uint16": (0, 1, 0xFFFF),
    "float64": (0.0, -1.0, float("nan"), float("inf")),
    "string": ("", "t", "fuzz-topic", "__consumer_offsets", "g", ".", "..", "x" * 300, "name-\u00e4",
               "retention.ms", "segment.bytes", "cleanup.policy", "-1", "compact"),
    "bytes": (b"", b"\x00", b"\xff" * 40),
    "records": (b"", b"\x00" * 61, b"\x01\x02records", *BATCHES),
    "uuid": (uuid.UUID(int=0), uuid.UUID(int=1), uuid.UUID(int=2**128 - 1)),
    "error_code": (ErrorCode.none, ErrorCode.unknown_server_error),
    "timedelta_i32": tuple(datetime.timedelta(milliseconds=m) for m in (0, -1, 2**31 - 1)),
    "timedelta_i64": tuple(datetime.timedelta(milliseconds=m) for m in (0, -1, 2**40)),
    "datetime_i64": tuple(tz_aware_from_i64(m) for m in (0, 1_700_000_000_000, 2**45)),
}


def edge_sample(rng: random.Random, cls: type, depth: int = 0) -> Any:
    """A request whose every field is drawn from _EDGES (nullable ones sometimes null,
    arrays of 0-3 elements, duplicates included)."""
    return cls(**{f.name: _edge_value(rng, f, depth) for f in fields(cls)})


def _edge_value(rng: random.Random, f, depth: int) -> Any:
    if is_optional(f) and rng.random() < 0.2:
        return None
    kind = classify_field(f)
    if isinstance(kind, EntityField):
        return edge_sample(rng, kind.type_, depth + 1)
    n = rng.choice((0, 1, 1, 2, 3)) if depth < 3 else rng.choice((0, 1))
    if isinstance(kind, EntityTupleField):
        first = edge_sample(rng, kind.type_, depth + 1)
        return tuple(first if rng.random() < 0.3 else edge_sample(rng, kind.type_, depth + 1) for _ in range(n))
    choices = _EDGES[f.metadata["kafka_type"]]
    if isinstance(kind, PrimitiveTupleField):
        return tuple(rng.choice(choices) for _ in range(n))
    return rng.choice(choices)


def edge_frame(rng: random.Random, api_key: int, version: int) -> bytes | None:
    """A well-formed frame with edge values, or None when kio will not encode the draw."""
    try:
        cls = messages.request_class(api_key, version)
    except UnsupportedVersion:
        return None
    try:
        return header(api_key, version, rng.randrange(2**31)) + messages.encode_request(edge_sample(rng, cls))
    except Exception:  # noqa: BLE001 - e.g. a value out of range for this kio field
        return None


FUZZ_TOPIC = "fuzz-topic"


def produce_request(version: int, batch: bytes) -> Any:
    base = sample(messages.request_class(0, version), with_nulls=True)
    topic = base.topic_data[0]
    partition = replace(topic.partition_data[0], index=0, records=batch)
    extra = {"name": FUZZ_TOPIC} if hasattr(topic, "name") else {}
    return replace(base, acks=-1, timeout=datetime.timedelta(seconds=5),
                   topic_data=(replace(topic, partition_data=(partition,), **extra),))


def mutate(rng: random.Random, frame: bytes, versions: tuple[int, int]) -> bytes:
    """One to three mutations of ``frame``; the 8-byte key/version/correlation prefix is
    kept unless the mutation is about the header."""
    buf = bytearray(frame)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        _MUTATIONS[rng.randrange(len(_MUTATIONS))](rng, buf, versions)
    return bytes(buf)


def _body_pos(rng: random.Random, buf: bytearray) -> int:
    return rng.randrange(8, len(buf)) if len(buf) > 8 else len(buf)


def _flip(rng, buf, _versions):
    for _ in range(rng.choice((1, 1, 2, 4, 8))):
        if len(buf) > 8:
            buf[_body_pos(rng, buf)] ^= 1 << rng.randrange(8)


def _truncate(rng, buf, _versions):
    del buf[rng.randrange(8, len(buf) + 1) if len(buf) > 8 else len(buf):]


def _extend(rng, buf, _versions):
    buf += rng.randbytes(rng.choice((1, 3, 16, 200)))


def _int16(rng, buf, _versions):
    pos = _body_pos(rng, buf)
    buf[pos:pos + 2] = struct.pack(">h", rng.choice(_INT16))


def _int32(rng, buf, _versions):
    pos = _body_pos(rng, buf)
    buf[pos:pos + 4] = struct.pack(">i", rng.choice(_INT32))


def _varint(rng, buf, _versions):
    pos = _body_pos(rng, buf)
    value = rng.choice(_VARINTS)
    buf[pos:pos + (1 if rng.random() < 0.5 else len(value))] = value


def _version(rng, buf, versions):
    low, high = versions
    buf[2:4] = struct.pack(">h", rng.choice((low, high, rng.randint(low, high), high + 1, -1)))


def _client_id_length(rng, buf, _versions):
    buf[8:10] = struct.pack(">h", rng.choice((-1, -2, 0, 1, 0x7FFF, len(buf))))


_MUTATIONS = (_flip, _flip, _truncate, _extend, _int16, _int32, _int32, _varint, _varint, _version,
              _client_id_length)


def cases(seed: int, count: int) -> Iterator[tuple[tuple[int, int], bytes]]:
    """``count`` mutated frames, every (key, version) in turn, from ``random.Random(seed)``."""
    rng = random.Random(seed)
    table = seeds()
    keys = sorted(table)
    ranges = {k: (registry.REGISTRY[k[0]].min_version, registry.REGISTRY[k[0]].max_version) for k in keys}
    for i in range(count):
        key = keys[i % len(keys)]
        if key[0] == 0 and key[1] >= 3 and rng.random() < 0.5:  # a mutated batch to a real topic
            yield key, header(*key) + messages.encode_request(produce_request(key[1], mutated_batch(rng)))
            continue
        if rng.random() < 0.4:  # well formed with edge values: these reach the handlers
            frame = edge_frame(rng, *key)
            if frame is not None:
                yield key, (mutate(rng, frame, ranges[key]) if rng.random() < 0.2 else frame)
                continue
        yield key, mutate(rng, rng.choice(table[key]), ranges[key])
