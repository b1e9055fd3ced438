"""SCRAM credentials in etcd (kavka.cluster.keys, kavka.cluster.view): one key per (user,
mechanism) holding the salted credential, never a password, folded into the view's
ScramCredentialSet by puts, deletes and snapshots; and the lone broker's file form."""

from __future__ import annotations

import json

import pytest

from kavka.cluster.keys import KeyLayout
from kavka.cluster.view import ClusterView, Snapshot, decode_change
from kavka.security.credentials import ScramCredentialSet, decode_credential, encode_credential
from kavka.security.sasl.scram import new_credential

LAYOUT = KeyLayout("scram-view")
SHA256, SHA512 = "SCRAM-SHA-256", "SCRAM-SHA-512"
ALICE_256 = new_credential(SHA256, "alice-secret", 4096, salt=b"salt-a")
ALICE_512 = new_credential(SHA512, "alice-secret", 8192, salt=b"salt-b")
BOB_256 = new_credential(SHA256, "bob-secret", 4096, salt=b"salt-c")


def change(user, mechanism, credential, revision):
    raw = None if credential is None else encode_credential(mechanism, credential)
    return decode_change(LAYOUT, LAYOUT.scram_credential(user, mechanism), raw, revision)


def test_a_credential_key_names_the_user_and_mechanism():
    for user in ("alice", "ünïcode/with slash", "User:x"):
        key = LAYOUT.scram_credential(user, SHA512)
        assert key.startswith(LAYOUT.scram_credentials_prefix())
        ref = LAYOUT.parse(key)
        assert (ref.kind, ref.user, ref.mechanism) == ("scram_credential", user, SHA512)
    assert LAYOUT.parse(LAYOUT.scram_credentials_prefix() + b"616c696365/not a mechanism") is None
    with pytest.raises(ValueError):
        LAYOUT.scram_credential("alice", "../x")


def test_the_stored_value_holds_the_salted_credential_and_no_password():
    raw = encode_credential(SHA256, ALICE_256)
    assert b"alice-secret" not in raw
    assert set(json.loads(raw)) == {"mechanism", "salt", "stored_key", "server_key", "iterations"}
    assert decode_credential(raw, SHA256) == ALICE_256


def test_puts_deletes_and_snapshots_fold_into_the_credentials():
    view = ClusterView()
    view.apply(Snapshot(1, ()))
    view.apply(change("alice", SHA256, ALICE_256, 2))
    view.apply(change("alice", SHA512, ALICE_512, 2))
    view.apply(change("bob", SHA256, BOB_256, 3))
    creds = view.scram_credentials
    assert creds.get("alice", SHA256) == ALICE_256 and creds.get("alice", SHA512) == ALICE_512
    assert creds.users() == {"alice": {SHA256: ALICE_256, SHA512: ALICE_512}, "bob": {SHA256: BOB_256}}
    view.apply(change("alice", SHA512, None, 4))
    assert view.scram_credentials.get("alice", SHA512) is None
    assert view.scram_credentials.users()["alice"] == {SHA256: ALICE_256}
    replaced = new_credential(SHA256, "new", 4096, salt=b"salt-d")
    view.apply(change("bob", SHA256, replaced, 5))
    assert view.scram_credentials.get("bob", SHA256) == replaced
    view.apply(Snapshot(9, (change("carol", SHA256, BOB_256, 9),)))
    assert view.scram_credentials.users() == {"carol": {SHA256: BOB_256}}


def test_unreadable_or_mislabelled_values_are_ignored():
    key = LAYOUT.scram_credential("alice", SHA256)
    assert decode_change(LAYOUT, key, b"{not json", 5) is None
    assert decode_change(LAYOUT, key, b'{"salt": "!!", "stored_key": "", "server_key": "", "iterations": 1}', 5) is None
    assert decode_change(LAYOUT, key, encode_credential(SHA512, ALICE_512), 5) is None


def test_before_the_first_snapshot_no_credential_is_loaded():
    view = ClusterView()
    assert not view.scram_credentials.loaded
    view.apply(Snapshot(3, ()))
    assert view.scram_credentials.loaded and view.scram_credentials.users() == {}


def test_the_lone_broker_file_form_round_trips_and_keeps_the_old_layout():
    creds = ScramCredentialSet().altered([("alice", SHA256, ALICE_256), ("alice", SHA512, ALICE_512),
                                          ("bob", SHA256, BOB_256)], ())
    text = creds.encode()
    obj = json.loads(text)
    assert obj["v"] == 1 and set(obj["users"]["alice"]) == {SHA256, SHA512}
    assert set(obj["users"]["bob"][SHA256]) == {"salt", "stored_key", "server_key", "iterations"}
    assert ScramCredentialSet.decode(text) == creds
    fewer = creds.altered([], [("alice", SHA512), ("bob", SHA256)])
    assert fewer.users() == {"alice": {SHA256: ALICE_256}}
    assert creds.get("bob", SHA256) == BOB_256   # altered() leaves the original alone
