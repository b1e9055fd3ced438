"""The sans-I/O parts: key layout, value encoding, lease arithmetic, the metadata view."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kavka.cluster.etcd_client import parse_endpoints
from kavka.cluster.keys import KeyLayout, KeyRef, prefix_end
from kavka.cluster.liveness import LeaseLiveness
from kavka.cluster.model import (BrokerInfo, ControllerInfo, DecodeError, PartitionState,
                                 TopicAssignment, decode_epoch, encode_epoch)
from kavka.cluster.session import lease_ttl_seconds
from kavka.cluster.watch import Change, ClusterView, Snapshot, decode_change

LAYOUT = KeyLayout("c1")
topic_names = st.from_regex(r"[A-Za-z0-9._-]{1,40}", fullmatch=True).filter(
    lambda n: n not in (".", ".."))
ids = st.integers(0, 2**31 - 1)


def test_key_layout_shapes():
    assert LAYOUT.broker(3) == b"/kavka/c1/brokers/3"
    assert LAYOUT.controller() == b"/kavka/c1/controller"
    assert LAYOUT.controller_epoch() == b"/kavka/c1/controller_epoch"
    assert LAYOUT.topic("orders") == b"/kavka/c1/topics/orders"
    assert LAYOUT.partition("orders", 7) == b"/kavka/c1/partitions/orders/7"
    assert LAYOUT.partitions_prefix("orders") == b"/kavka/c1/partitions/orders/"


@given(topic_names, st.integers(0, 10**6), ids)
def test_keys_parse_back(topic, partition, broker_id):
    assert LAYOUT.parse(LAYOUT.partition(topic, partition)) == KeyRef(
        "partition", topic=topic, partition=partition)
    assert LAYOUT.parse(LAYOUT.topic(topic)) == KeyRef("topic", topic=topic)
    assert LAYOUT.parse(LAYOUT.broker(broker_id)) == KeyRef("broker", broker_id=broker_id)


def test_foreign_and_malformed_keys_are_ignored():
    assert LAYOUT.parse(b"/kavka/c2/brokers/1") is None  # another cluster
    assert LAYOUT.parse(b"/kavka/c1/brokers/x") is None
    assert LAYOUT.parse(b"/kavka/c1/partitions/t") is None
    assert LAYOUT.parse(b"/kavka/c1/unknown") is None
    with pytest.raises(ValueError):
        LAYOUT.topic("a/b")
    with pytest.raises(ValueError):
        KeyLayout("has space")


def test_prefixes_do_not_overlap():
    # brokers/1 must not be a prefix of brokers/10: prefixes end in "/"
    assert not LAYOUT.broker(10).startswith(LAYOUT.broker(1) + b"/")
    assert prefix_end(b"/a/") == b"/a0"
    assert prefix_end(b"a\xff") == b"b"


@given(st.builds(PartitionState, st.integers(-1, 100), st.integers(0, 10**9),
                 st.lists(ids, max_size=5).map(tuple), st.integers(0, 10**6)))
def test_partition_state_round_trip(state):
    assert PartitionState.decode(state.encode()) == state


def test_values_round_trip_and_are_deterministic():
    values = [BrokerInfo(1, "127.0.0.1", 9092, "r1"), ControllerInfo(2, 7),
              TopicAssignment("t", "id", {1: (2, 3), 0: (1, 2)})]
    for v in values:
        assert type(v).decode(v.encode()) == v
    assert TopicAssignment("t", "id", {1: (2,), 0: (1,)}).encode() == \
        TopicAssignment("t", "id", {0: (1,), 1: (2,)}).encode()
    assert decode_epoch(encode_epoch(42)) == 42 and decode_epoch(None) == 0


def test_broker_info_offline_log_dir_round_trip_and_old_encoding_unchanged():
    offline = BrokerInfo(1, "h", 1, None, log_dir_offline=True)
    assert BrokerInfo.decode(offline.encode()) == offline
    assert b"log_dir_offline" not in BrokerInfo(1, "h", 1).encode()  # older brokers' values stay equal
    assert not BrokerInfo.decode(b'{"v":1,"broker_id":1,"host":"h","port":1}').log_dir_offline


def test_decoders_tolerate_new_fields_and_reject_garbage():
    assert ControllerInfo.decode(b'{"v":2,"broker_id":1,"epoch":3,"new":true}') == \
        ControllerInfo(1, 3)
    for raw in (b"not json", b"[]", b'{"leader":1}', b'{"leader":1,"leader_epoch":0,'
                b'"isr":["x"],"controller_epoch":1}'):
        with pytest.raises(DecodeError):
            PartitionState.decode(raw)


def test_liveness_deadline_counts_from_send_time():
    lease = LeaseLiveness(ttl=2.0, granted_at=10.0)
    assert not lease.is_lost(11.9) and lease.is_lost(12.0)
    lease.acknowledged(sent_at=11.0, remaining_ttl=2.0)  # answered late: still from 11.0
    assert lease.time_left(12.5) == pytest.approx(0.5)
    lease.acknowledged(sent_at=10.5, remaining_ttl=2.0)  # an older answer never shortens
    assert lease.deadline == 13.0
    lease.acknowledged(sent_at=12.9, remaining_ttl=0)  # etcd: no such lease
    assert lease.is_lost(12.9) and lease.time_left(12.9) == 0.0


def test_lease_ttl_from_session_timeout():
    assert lease_ttl_seconds(9000) == 9
    assert lease_ttl_seconds(9001) == 10
    assert lease_ttl_seconds(500) == 2


def test_parse_endpoints():
    assert parse_endpoints("etcd://a:1,b:2") == [("a", 1), ("b", 2)]
    assert parse_endpoints("127.0.0.1:2379") == [("127.0.0.1", 2379)]
    for bad in ("etcd://", "etcd://host", "h:port"):
        with pytest.raises(ValueError):
            parse_endpoints(bad)


def _put(key, value, rev):
    raw = value if isinstance(value, bytes) else value.encode()
    return decode_change(LAYOUT, key, raw, rev, rev)


def test_view_applies_changes_and_snapshot_replaces():
    view = ClusterView()
    view.apply(_put(LAYOUT.broker(1), BrokerInfo(1, "h", 1), 5))
    view.apply(_put(LAYOUT.controller_epoch(), b"3", 6))
    view.apply(_put(LAYOUT.partition("t", 0), PartitionState(1, 2, (1,), 3), 7))
    assert list(view.brokers) == [1] and view.controller_epoch == 3
    assert view.partitions[("t", 0)].mod_revision == 7
    view.apply(decode_change(LAYOUT, LAYOUT.broker(1), None, 8))
    assert view.brokers == {} and view.revision == 8
    snap = Snapshot(20, (_put(LAYOUT.topic("u"), TopicAssignment("u", "i", {}), 19),))
    view.apply(snap)
    assert list(view.topics) == ["u"] and view.partitions == {} and view.revision == 20
    assert isinstance(snap.entries[0], Change)
    assert decode_change(LAYOUT, LAYOUT.topic("x"), b"garbage", 1) is None


def test_capacity_counts_replicas_per_target_broker():
    from collections import Counter

    from kavka.cluster.decisions import OverCapacity, check_capacity, replicas_per_broker
    held = replicas_per_broker([{0: (1, 2), 1: (2, 3)}, {0: (2,)}])
    assert held == Counter({2: 3, 1: 1, 3: 1})
    check_capacity(held, {0: (1, 3)}, 3)                  # 2 and 2: fits
    with pytest.raises(OverCapacity, match="broker 2 holds 3 partitions; 1 more"):
        check_capacity(held, {0: (2, 1)}, 3)
