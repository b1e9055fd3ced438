"""__consumer_offsets records: Kafka's byte layout, Java's String.hashCode partitioning."""

from __future__ import annotations

import pytest

from kavka.group.log_format import (
    GroupKey,
    GroupValue,
    MemberValue,
    OffsetKey,
    OffsetValue,
    UnknownRecord,
    decode_key,
    decode_value,
    encode_key,
    encode_value,
    partition_for,
)
from kavka.internal_topics import java_string_hash


@pytest.mark.parametrize("text, expected", [
    ("", 0), ("a", 97), ("abc", 96354), ("Aa", 2112), ("BB", 2112), ("hello", 99162322),
    ("hello world", 1794106052),       # past 2^31 on the way: wraps like Java's int
    ("polygenelubricants", -2**31),    # the one whose abs() overflows in Java
])
def test_java_string_hash(text, expected):
    assert java_string_hash(text) == expected


def test_non_ascii_hash_uses_utf16_units():
    # "€" is U+20AC (one unit); "𝄞" is a surrogate pair (two units: D834 DD1E).
    assert java_string_hash("€") == 0x20AC
    assert java_string_hash("𝄞") == 0xD834 * 31 + 0xDD1E


def test_partition_for_is_stable_and_handles_min_value():
    assert partition_for("polygenelubricants", 50) == 0
    assert partition_for("hello", 50) == 99162322 % 50
    assert partition_for("my-group", 50) == abs(java_string_hash("my-group")) % 50


def test_offset_record_layout():
    key = OffsetKey("g", "t", 3)
    assert encode_key(key) == b"\x00\x01" + b"\x00\x01g" + b"\x00\x01t" + b"\x00\x00\x00\x03"
    value = OffsetValue(42, 7, "meta", 1_700_000_000_000)
    raw = encode_value(value)
    assert raw[:2] == b"\x00\x03" and len(raw) == 2 + 8 + 4 + 2 + 4 + 8
    assert decode_key(encode_key(key)) == key and decode_value(key, raw) == value


def test_group_record_round_trip():
    key = GroupKey("group-é")
    value = GroupValue("consumer", 5, "range", "m-1", 123, (
        MemberValue("m-1", None, "client", "/127.0.0.1", 30000, 10000, b"sub", b"asg"),
        MemberValue("i-2", "i", "client", "/::1", 1, 2, b"", b"")))
    assert decode_key(encode_key(key)) == key
    assert decode_value(key, encode_value(value)) == value
    empty = GroupValue("consumer", 6, None, None, 124, ())
    assert decode_value(key, encode_value(empty)) == empty
    assert encode_value(None) is None and decode_value(key, None) is None


def test_unknown_versions_are_reported():
    with pytest.raises(UnknownRecord):
        decode_key(b"\x00\x09")
    with pytest.raises(UnknownRecord):
        decode_value(OffsetKey("g", "t", 0), b"\x00\x01" + bytes(20))


def test_partition_for_is_cached(monkeypatch):
    # asked ~20 times per transaction by the coordinators; the Java hash is a Python loop (4 us)
    import kavka.internal_topics as topics
    key = "bench-" + "x" * 40
    assert partition_for(key, 50) == abs(java_string_hash(key)) % 50
    hashed = []
    monkeypatch.setattr(topics, "java_string_hash", lambda text: hashed.append(text) or java_string_hash(text))
    for _ in range(1000):
        assert partition_for(key, 50) == abs(java_string_hash(key)) % 50
    assert hashed == []   # every answer came from the cache
