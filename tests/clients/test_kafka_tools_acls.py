"""Kafka's own ``kafka-acls`` tool (``org.apache.kafka.tools.AclCommand``) against a real kavka
broker with the StandardAuthorizer switched on: ``--add``, ``--list`` and ``--remove`` of
LITERAL and PREFIXED bindings, each read back with DescribeAcls from kavka's own client, and
the effect of a DENY on what confluent-kafka's producer is then allowed.

The broker lets everyone do what no ACL covers (``allow.everyone.if.no.acl.found``), so the
tool's User:ANONYMOUS may change ACLs while the cluster resource has none.
"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from test_kafka_tools import TIMEOUT, java, tool  # noqa: F401 (fixture)

from kavka.api.responses import make
from kavka.client import Client
from kio.schema.describe_acls.v3 import request as describe_acls

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


@pytest.fixture
def acls_tool(java, kavka_broker_factory):  # noqa: F811 (the fixture)
    broker = kavka_broker_factory({"authorizer.class.name": AUTHORIZER, "allow.everyone.if.no.acl.found": "true"})

    def run(*args: str, expect_exit: int = 0) -> str:
        return tool(java, "AclCommand", "--bootstrap-server", broker.bootstrap_servers, *args,
                    expect_exit=expect_exit)
    run.bootstrap = broker.bootstrap_servers
    return run


def stored(bootstrap: str) -> set[tuple]:
    """Every binding the broker holds, through DescribeAcls with a match-anything filter."""
    request = make(describe_acls.DescribeAclsRequest, resource_type_filter=1, resource_name_filter=None,
                   pattern_type_filter=1, principal_filter=None, host_filter=None, operation=1, permission_type=1)
    with Client(bootstrap) as client:
        answer = client.request(request)
    assert answer.error_code == 0, answer
    return {(r.resource_type, r.resource_name, r.pattern_type, a.principal, a.host, a.operation, a.permission_type)
            for r in answer.resources for a in r.acls}


def write_refused(bootstrap: str, topic: str) -> bool:
    """Whether confluent-kafka's producer is told TOPIC_AUTHORIZATION_FAILED for one record
    (False: acknowledged; any other outcome fails the test)."""
    delivered = {}
    producer = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 10_000})
    producer.produce(topic, b"v", on_delivery=lambda err, msg: delivered.setdefault("error", err))
    producer.flush(TIMEOUT)
    error = delivered["error"]
    assert error is None or error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, error
    return error is not None


def test_kafka_acls_adds_lists_and_removes(acls_tool):
    out = acls_tool("--add", "--allow-principal", "User:alice", "--operation", "Read", "--operation", "Describe",
                    "--topic", "orders", "--group", "app")
    assert "User:alice" in out
    acls_tool("--add", "--deny-principal", "User:bob", "--allow-host", "*", "--deny-host", "10.0.0.9",
              "--operation", "Write", "--topic", "ord", "--resource-pattern-type", "prefixed")
    read, describe, write, deny, topic, group = 3, 8, 4, 2, 2, 3
    literal, prefixed, allow = 3, 4, 3
    assert stored(acls_tool.bootstrap) == {
        (topic, "orders", literal, "User:alice", "*", read, allow),
        (topic, "orders", literal, "User:alice", "*", describe, allow),
        (group, "app", literal, "User:alice", "*", read, allow),
        (group, "app", literal, "User:alice", "*", describe, allow),
        (topic, "ord", prefixed, "User:bob", "10.0.0.9", write, deny)}
    listed = acls_tool("--list", "--topic", "orders")
    assert "orders" in listed and "User:alice" in listed and "User:bob" not in listed
    matching = acls_tool("--list", "--topic", "orders", "--resource-pattern-type", "match")
    assert "User:bob" in matching, "MATCH lists the prefixed binding that covers orders"
    acls_tool("--remove", "--force", "--allow-principal", "User:alice", "--operation", "Read", "--topic", "orders")
    left = stored(acls_tool.bootstrap)
    assert (topic, "orders", literal, "User:alice", "*", read, allow) not in left and len(left) == 4
    acls_tool("--remove", "--force", "--group", "app")
    assert {b[1] for b in stored(acls_tool.bootstrap)} == {"orders", "ord"}


def test_a_deny_added_by_kafka_acls_refuses_the_producer(acls_tool):
    admin = AdminClient({"bootstrap.servers": acls_tool.bootstrap})
    for future in admin.create_topics([NewTopic("guarded", 1, 1)]).values():
        future.result(TIMEOUT)
    assert not write_refused(acls_tool.bootstrap, "guarded")
    acls_tool("--add", "--deny-principal", "User:ANONYMOUS", "--operation", "Write", "--topic", "guarded")
    assert write_refused(acls_tool.bootstrap, "guarded")
    acls_tool("--remove", "--force", "--deny-principal", "User:ANONYMOUS", "--operation", "Write",
              "--topic", "guarded")
    assert not write_refused(acls_tool.bootstrap, "guarded")


def test_kafka_acls_producer_and_consumer_shortcuts(acls_tool):
    acls_tool("--add", "--allow-principal", "User:ANONYMOUS", "--operation", "All", "--cluster")
    acls_tool("--add", "--allow-principal", "User:app", "--producer", "--topic", "events")
    acls_tool("--add", "--allow-principal", "User:app", "--consumer", "--topic", "events", "--group", "readers")
    got = {(kind, name, op) for kind, name, _p, principal, _h, op, _perm in stored(acls_tool.bootstrap)
           if principal == "User:app"}
    topic, group, read, write, create, describe = 2, 3, 3, 4, 5, 8
    assert {(topic, "events", op) for op in (read, write, create, describe)} <= got
    assert (group, "readers", read) in got
    listed = acls_tool("--list", "--principal", "User:app")
    assert "events" in listed and "readers" in listed and "ANONYMOUS" not in listed
