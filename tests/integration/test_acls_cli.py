"""`kavka acls list|add|remove` as a user runs them, against an in-process broker with the
StandardAuthorizer; every change is read back with DescribeAcls independently of the CLI,
and refusals are one line."""

from __future__ import annotations

import pytest
from kio.schema.describe_acls.v3 import request as describe_acls
from test_cli_tools import failed, kavka, ok

from kavka.api.responses import make
from kavka.client import Client

pytestmark = pytest.mark.timeout(120)

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


@pytest.fixture
def secured(kavka_broker_factory):
    return kavka_broker_factory({"authorizer.class.name": AUTHORIZER, "allow.everyone.if.no.acl.found": "true"})


def stored(broker) -> set[tuple]:
    request = make(describe_acls.DescribeAclsRequest, resource_type_filter=1, resource_name_filter=None,
                   pattern_type_filter=1, principal_filter=None, host_filter=None, operation=1, permission_type=1)
    with Client(broker.bootstrap_servers) as client:
        answer = client.request(request)
    assert answer.error_code == 0
    return {(r.resource_type, r.resource_name, r.pattern_type, a.principal, a.host, a.operation, a.permission_type)
            for r in answer.resources for a in r.acls}


def table(out: str) -> list[list[str]]:
    lines = out.splitlines()
    assert lines[0].split() == ["RESOURCE-TYPE", "PATTERN", "NAME", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"]
    return [line.split() for line in lines[1:]]


def test_add_list_remove(secured):
    b = secured
    # the first binding on the cluster closes it to everyone else, as in Kafka: keep this client's rights
    ok(kavka(b, "acls", "add", "--principal", "User:ANONYMOUS", "--operation", "ALL", "--resource-type", "cluster"))
    out = ok(kavka(b, "acls", "add", "--principal", "User:alice", "--operation", "read", "--operation", "Describe",
                   "--resource-type", "topic", "--resource", "orders"))
    assert out.count("Added ") == 2
    ok(kavka(b, "acls", "add", "--principal", "User:bob", "--operation", "WRITE", "--resource-type", "topic",
             "--resource", "ord", "--pattern-type", "prefixed", "--deny", "--host", "10.0.0.7"))
    ok(kavka(b, "acls", "add", "--principal", "User:ops", "--operation", "ALTER", "--resource-type", "cluster"))
    assert stored(b) == {(2, "orders", 3, "User:alice", "*", 3, 3), (2, "orders", 3, "User:alice", "*", 8, 3),
                         (2, "ord", 4, "User:bob", "10.0.0.7", 4, 2), (4, "kafka-cluster", 3, "User:ops", "*", 7, 3),
                         (4, "kafka-cluster", 3, "User:ANONYMOUS", "*", 2, 3)}
    assert len(table(ok(kavka(b, "acls", "list")))) == 5
    assert table(ok(kavka(b, "acls", "list", "--resource-type", "topic", "--resource", "orders",
                          "--pattern-type", "match", "--deny"))) == [
        ["TOPIC", "PREFIXED", "ord", "User:bob", "10.0.0.7", "WRITE", "DENY"]]
    assert [row[5] for row in table(ok(kavka(b, "acls", "list", "--principal", "User:alice")))] == [
        "DESCRIBE", "READ"]
    out = ok(kavka(b, "acls", "remove", "--principal", "User:alice", "--operation", "read"))
    assert out.splitlines()[0] == "Removed 1 binding."
    assert (2, "orders", 3, "User:alice", "*", 3, 3) not in stored(b) and len(stored(b)) == 4
    assert ok(kavka(b, "acls", "remove", "--resource-type", "group")).splitlines() == ["Removed 0 bindings."]
    ok(kavka(b, "acls", "remove", "--resource-type", "topic"))
    assert stored(b) == {(4, "kafka-cluster", 3, "User:ops", "*", 7, 3),
                         (4, "kafka-cluster", 3, "User:ANONYMOUS", "*", 2, 3)}


def test_refusals_are_one_line(secured, kavka_broker):
    line = failed(kavka(kavka_broker, "acls", "list"))
    assert line == "kavka acls: SECURITY_DISABLED: No Authorizer is configured."
    line = failed(kavka(secured, "acls", "add", "--principal", "alice", "--operation", "read",
                        "--resource-type", "topic", "--resource", "t"))
    assert line.startswith("kavka acls: INVALID_REQUEST: Could not parse principal")
    line = failed(kavka(secured, "acls", "add", "--principal", "User:a", "--operation", "fly",
                        "--resource-type", "topic", "--resource", "t"))
    assert line.startswith("kavka acls: --operation: 'fly' is not one of")
    line = failed(kavka(secured, "acls", "add", "--principal", "User:a", "--operation", "read",
                        "--resource-type", "topic"))
    assert line == "kavka acls: add needs --resource NAME"
    ok(kavka(secured, "acls", "add", "--principal", "User:ANONYMOUS", "--operation", "ALTER", "--deny",
             "--resource-type", "cluster"))
    line = failed(kavka(secured, "acls", "add", "--principal", "User:a", "--operation", "read",
                        "--resource-type", "topic", "--resource", "t"))
    assert line.startswith("kavka acls: CLUSTER_AUTHORIZATION_FAILED")
