"""Client quotas in etcd (kavka.cluster.keys, kavka.cluster.view): one key per entity, named by
the entity, its values folded into the view's ClientQuotas by puts, deletes and snapshots."""

from __future__ import annotations

import json

from kavka.cluster.keys import KeyLayout
from kavka.cluster.view import ClusterView, Snapshot, decode_change
from kavka.security.quota import CLIENT_ID, USER, entity_key, entity_of

LAYOUT = KeyLayout("quota-view")
ALICE_DEFAULT = entity_of([(USER, "alice"), (CLIENT_ID, None)])
APP = entity_of([(CLIENT_ID, "app")])


def change(entity, values, revision):
    key = LAYOUT.client_quota(entity_key(entity))
    return decode_change(LAYOUT, key, None if values is None else json.dumps(values).encode(), revision)


def test_an_entity_key_names_the_entity():
    ref = LAYOUT.parse(LAYOUT.client_quota(entity_key(ALICE_DEFAULT)))
    assert ref.kind == "client_quota" and entity_of(json.loads(ref.quota)) == ALICE_DEFAULT


def test_puts_deletes_and_snapshots_fold_into_the_quotas():
    view = ClusterView()
    view.apply(change(ALICE_DEFAULT, {"producer_byte_rate": 100}, 2))
    view.apply(change(APP, {"consumer_byte_rate": 5}, 3))
    assert view.client_quotas.resolve("producer_byte_rate", "alice", "x") == (100, ("alice", "x"))
    view.apply(change(ALICE_DEFAULT, None, 4))
    assert dict(view.client_quotas.entries) == {APP: {"consumer_byte_rate": 5.0}}
    view.apply(Snapshot(9, (change(ALICE_DEFAULT, {"producer_byte_rate": 7}, 9),)))
    assert dict(view.client_quotas.entries) == {ALICE_DEFAULT: {"producer_byte_rate": 7.0}}


def test_unreadable_values_are_ignored():
    assert decode_change(LAYOUT, LAYOUT.client_quota(entity_key(APP)), b"[1]", 2) is None
