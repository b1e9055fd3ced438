"""The authorizer's rules (kavka.security.authorizer) against Kafka's: which bindings apply,
DENY winning, PREFIXED and wildcard patterns, User:*, hosts, super users, implied operations,
allow.everyone.if.no.acl.found, and the filters of DescribeAcls / DeleteAcls."""

from __future__ import annotations

import pytest

from kavka.config import BrokerConfig
from kavka.security.acl import (
    AclBinding,
    AclFilter,
    AclOperation as Op,
    AclPermission as Perm,
    AclSet,
    InvalidAcl,
    PatternType as Pat,
    ResourceType as Res,
)
from kavka.security.authorizer import Authorizer, from_config, host_of
from kavka.security.principal import KafkaPrincipal

ALICE = KafkaPrincipal("User", "alice")
BOB = KafkaPrincipal("User", "bob")
HOST = "10.0.0.1"


def acl(name="orders", op=Op.READ, perm=Perm.ALLOW, principal="User:alice", host="*",
        res=Res.TOPIC, pattern=Pat.LITERAL) -> AclBinding:
    return AclBinding(res, name, pattern, principal, host, op, perm)


def may(bindings, op=Op.READ, name="orders", who=ALICE, host=HOST, res=Res.TOPIC, auth=Authorizer()):
    return auth.authorize(AclSet(bindings), who, host, op, res, name)


def test_literal_allow_matches_only_its_name_and_principal():
    rules = [acl()]
    assert may(rules)
    assert not may(rules, name="orders2")
    assert not may(rules, who=BOB)
    assert not may(rules, op=Op.WRITE)


def test_deny_wins_over_allow():
    assert not may([acl(), acl(perm=Perm.DENY)])
    assert not may([acl(op=Op.ALL), acl(op=Op.READ, perm=Perm.DENY)])
    assert not may([acl(), acl(op=Op.ALL, perm=Perm.DENY, principal="User:*")])
    assert may([acl(), acl(op=Op.WRITE, perm=Perm.DENY)])


def test_prefixed_patterns_match_names_they_start():
    rules = [acl("ord", pattern=Pat.PREFIXED)]
    assert may(rules, name="orders") and may(rules, name="ord")
    assert not may(rules, name="or") and not may(rules, name="xorders")
    assert not may([acl("ord", pattern=Pat.PREFIXED), acl("orders", perm=Perm.DENY)])
    assert not may([acl("orders"), acl("o", pattern=Pat.PREFIXED, perm=Perm.DENY)])


def test_wildcard_resource_and_principal():
    assert may([acl("*")], name="anything")
    assert may([acl(principal="User:*")], who=BOB)
    assert not may([acl("*", pattern=Pat.PREFIXED)], name="orders"), "PREFIXED * names a literal prefix"


def test_host_filter():
    assert may([acl(host=HOST)])
    assert not may([acl(host="10.0.0.2")])
    assert not may([acl(), acl(host=HOST, perm=Perm.DENY)])
    assert may([acl(), acl(host="10.0.0.2", perm=Perm.DENY)])


def test_implied_operations_come_from_allow_only():
    for granting in (Op.READ, Op.WRITE, Op.DELETE, Op.ALTER):
        assert may([acl(op=granting)], op=Op.DESCRIBE)
    assert not may([acl(op=Op.CREATE)], op=Op.DESCRIBE)
    assert may([acl(op=Op.ALTER_CONFIGS)], op=Op.DESCRIBE_CONFIGS)
    assert not may([acl(op=Op.DESCRIBE_CONFIGS)], op=Op.ALTER_CONFIGS)
    assert may([acl(op=Op.READ), acl(op=Op.DESCRIBE, perm=Perm.DENY)], op=Op.READ)
    assert may([acl(op=Op.READ), acl(op=Op.READ, perm=Perm.DENY)], op=Op.DESCRIBE), "a DENY implies nothing"
    assert may([acl(op=Op.ALL)], op=Op.DESCRIBE_CONFIGS)


def test_super_users_pass_even_a_deny():
    auth = Authorizer(super_users=frozenset({"User:alice"}))
    assert may([acl(op=Op.ALL, perm=Perm.DENY)], auth=auth)
    assert may([], res=Res.CLUSTER, name="kafka-cluster", op=Op.ALTER, auth=auth)
    assert not may([], who=BOB, auth=auth)


def test_no_acl_found_rule_is_per_resource():
    allow_all = Authorizer(allow_if_no_acl=True)
    assert may([], auth=allow_all)
    assert not may([], auth=Authorizer())
    assert not may([acl(principal="User:bob")], auth=allow_all), "a resource with ACLs for others is closed"
    assert may([acl(name="other")], auth=allow_all)


def test_authorize_any_by_resource_type():
    auth = Authorizer()
    assert auth.authorize_any(AclSet([acl(op=Op.WRITE)]), ALICE, HOST, Op.WRITE, Res.TOPIC)
    assert not auth.authorize_any(AclSet([acl(op=Op.WRITE)]), BOB, HOST, Op.WRITE, Res.TOPIC)
    denied = [acl(op=Op.WRITE), acl("or", op=Op.WRITE, perm=Perm.DENY, pattern=Pat.PREFIXED)]
    assert not auth.authorize_any(AclSet(denied), ALICE, HOST, Op.WRITE, Res.TOPIC)
    assert not auth.authorize_any(AclSet([acl(op=Op.WRITE), acl("*", op=Op.WRITE, perm=Perm.DENY)]),
                                  ALICE, HOST, Op.WRITE, Res.TOPIC)


def test_authorized_operations_bits():
    bits = Authorizer().authorized_operations(AclSet([acl(op=Op.READ)]), ALICE, HOST, Res.TOPIC, "orders")
    assert bits == (1 << Op.READ) | (1 << Op.DESCRIBE)
    no_describe = AclSet([acl(op=Op.CREATE)])
    assert Authorizer().authorized_operations(no_describe, ALICE, HOST, Res.TOPIC, "orders") == 0


def test_filters_select_bindings_as_kafka():
    literal, wildcard, prefixed = acl("orders"), acl("*"), acl("ord", pattern=Pat.PREFIXED)
    other = acl("orders", res=Res.GROUP)
    rules = AclSet([literal, wildcard, prefixed, other])
    assert rules.matching(AclFilter()) == sorted([literal, wildcard, prefixed, other])
    assert set(rules.matching(AclFilter(Res.TOPIC, "orders", Pat.MATCH))) == {literal, wildcard, prefixed}
    assert rules.matching(AclFilter(Res.TOPIC, "orders", Pat.LITERAL)) == [literal]
    assert rules.matching(AclFilter(Res.ANY, "ord", Pat.PREFIXED)) == [prefixed]
    assert set(rules.matching(AclFilter(Res.ANY, "orders", Pat.ANY))) == {literal, other}
    assert rules.matching(AclFilter(principal="User:bob")) == []
    with pytest.raises(InvalidAcl):
        AclFilter(pattern_type=Pat.UNKNOWN).validate()


@pytest.mark.parametrize("bad", [
    acl(res=Res.ANY), acl(pattern=Pat.MATCH), acl(op=Op.ANY), acl(perm=Perm.ANY), acl(name=""),
    acl(res=Res.CLUSTER, name="other"), acl(principal="alice"), acl(host=""),
])
def test_invalid_bindings(bad):
    with pytest.raises(InvalidAcl):
        bad.validate()


def test_binding_round_trips_through_json():
    b = acl("ord", op=Op.IDEMPOTENT_WRITE, perm=Perm.DENY, pattern=Pat.PREFIXED, host=HOST)
    assert AclBinding.from_json(b.to_json()) == b


def test_from_config():
    assert from_config(BrokerConfig.from_strings({})) is None
    auth = from_config(BrokerConfig.from_strings({
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:admin; User:ops", "allow.everyone.if.no.acl.found": "true"}))
    assert auth == Authorizer(frozenset({"User:admin", "User:ops"}), True)
    with pytest.raises(ValueError):
        BrokerConfig.from_strings({"authorizer.class.name": "com.example.Mine"})


def test_host_of_peer():
    assert host_of("127.0.0.1:5000") == "127.0.0.1"
    assert host_of("[::1]:5000") == "::1"


def test_until_the_acls_are_loaded_only_super_users_pass():
    auth = Authorizer(super_users=frozenset({"User:admin"}), allow_if_no_acl=True)
    pending = AclSet([acl()], loaded=False)
    assert not auth.authorize(pending, ALICE, HOST, Op.READ, Res.TOPIC, "orders")
    assert not auth.authorize_any(pending, ALICE, HOST, Op.READ, Res.TOPIC)
    assert auth.authorize(pending, KafkaPrincipal("User", "admin"), HOST, Op.READ, Res.TOPIC, "orders")
