"""ACL bindings in etcd (kavka.cluster.keys, kavka.cluster.view): one key per binding, named
by the binding itself, folded into the view's AclSet by puts, deletes and snapshots."""

from __future__ import annotations

from kavka.cluster.keys import KeyLayout
from kavka.cluster.view import ClusterView, Snapshot, decode_change
from kavka.security.acl import AclBinding, AclOperation, AclPermission, PatternType, ResourceType

LAYOUT = KeyLayout("acl-view")
READ = AclBinding(ResourceType.TOPIC, "orders", PatternType.LITERAL, "User:alice", "*", AclOperation.READ,
                  AclPermission.ALLOW)
DENY = AclBinding(ResourceType.GROUP, "g", PatternType.PREFIXED, "User:*", "10.0.0.1", AclOperation.ALL,
                  AclPermission.DENY)


def change(binding: AclBinding, revision: int, deleted: bool = False):
    text = binding.to_json()
    return decode_change(LAYOUT, LAYOUT.acl(text), None if deleted else text.encode(), revision)


def test_a_binding_key_names_the_binding():
    key = LAYOUT.acl(READ.to_json())
    assert key.startswith(LAYOUT.acls_prefix())
    ref = LAYOUT.parse(key)
    assert ref.kind == "acl" and AclBinding.from_json(ref.acl) == READ


def test_puts_deletes_and_snapshots_fold_into_the_acl_set():
    view = ClusterView()
    view.apply(change(READ, 2))
    view.apply(change(DENY, 3))
    assert view.acls.bindings == {READ, DENY}
    view.apply(change(READ, 4, deleted=True))
    assert view.acls.bindings == {DENY}
    view.apply(Snapshot(9, (change(READ, 9),)))
    assert view.acls.bindings == {READ}


def test_an_unreadable_binding_is_ignored():
    assert decode_change(LAYOUT, LAYOUT.acl("x"), b"{not json", 5) is None


def test_before_the_first_snapshot_the_set_is_not_loaded():
    view = ClusterView()
    assert not view.acls.loaded
    view.apply(Snapshot(3, ()))
    assert view.acls.loaded and len(view.acls) == 0
