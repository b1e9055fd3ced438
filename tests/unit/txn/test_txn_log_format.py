"""``__transaction_state`` records: Kafka's byte layout, both value versions, damaged input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kavka.txn.log_format import BadRecord, decode_key, decode_value, encode_key, encode_value
from kavka.txn.model import TxnMetadata, TxnState


def test_key_is_version_0_and_the_id():
    assert encode_key("t1") == b"\x00\x00\x00\x02t1"
    assert decode_key(b"\x00\x00\x00\x02t1") == "t1"
    with pytest.raises(BadRecord):
        decode_key(b"\x00\x01\x00\x02t1")


def test_a_value_without_tagged_fields_is_kafkas_version_0_layout():
    meta = TxnMetadata("t1", 42, 3, 60_000, TxnState.ONGOING, frozenset({("a", 1), ("a", 0)}), 111, 100)
    expected = (struct.pack(">hqhib", 0, 42, 3, 60_000, 1) + struct.pack(">i", 1)
                + struct.pack(">h", 1) + b"a" + struct.pack(">iii", 2, 0, 1) + struct.pack(">qq", 111, 100))
    assert encode_value(meta) == expected
    assert decode_value("t1", expected) == meta


def test_tagged_fields_make_a_flexible_version_1_value():
    meta = TxnMetadata("t1", 42, 0, 1000, TxnState.PREPARE_COMMIT, frozenset({("b", 2)}), 5, 4,
                       previous_producer_id=41, next_producer_id=43, client_txn_version=2)
    data = encode_value(meta)
    assert data[:2] == b"\x00\x01"
    assert decode_value("t1", data) == meta


def test_a_tombstone_is_none():
    assert encode_value(None) is None and decode_value("t1", None) is None


def test_an_unknown_state_or_version_is_a_bad_record():
    meta = TxnMetadata("t1", 1, 0, 1000, TxnState.EMPTY)
    data = bytearray(encode_value(meta))
    data[16] = 9   # the state: after version i16, producer id i64, epoch i16, timeout i32
    with pytest.raises(BadRecord):
        decode_value("t1", bytes(data))
    with pytest.raises(BadRecord):
        decode_value("t1", b"\x00\x07" + bytes(data[2:]))


metas = st.builds(
    TxnMetadata, st.just("t"), st.integers(0, 2**63 - 1), st.integers(0, 32767), st.integers(1, 2**31 - 1),
    st.sampled_from(list(TxnState)),
    st.frozensets(st.tuples(st.text(min_size=1, max_size=5), st.integers(0, 100)), max_size=5),
    st.integers(-1, 2**40), st.integers(-1, 2**40),
    previous_producer_id=st.integers(-1, 2**40), next_producer_id=st.integers(-1, 2**40),
    client_txn_version=st.integers(0, 2))


@given(metas)
def test_every_value_round_trips(meta):
    assert decode_value("t", encode_value(meta)) == meta


@given(metas, st.data())
def test_truncated_or_padded_values_are_bad_records_never_other_errors(meta, data):
    raw = encode_value(meta)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(BadRecord):
        decode_value("t", raw[:cut])
    with pytest.raises(BadRecord):
        decode_value("t", raw + b"\x00")
