"""CreateAcls, DescribeAcls and DeleteAcls on a lone broker: Kafka's answers and validation,
SECURITY_DISABLED without an authorizer, CLUSTER_AUTHORIZATION_FAILED without the right on
the cluster, and the bindings kept in the data directory across a restart."""

from __future__ import annotations

import pytest

from acl_harness import ADMIN, ALICE, AUTHORIZER, Broker, Q, acl, tree_digest
from kavka.protocol.errors import ErrorCode
from kavka.security.acl import AclOperation as Op, AclPermission as Perm, PatternType as Pat, ResourceType as Res

CREATE, DESCRIBE, DELETE = 30, 29, 31
SECURED = {"authorizer.class.name": AUTHORIZER, "super.users": "User:admin"}


@pytest.fixture
def broker_at(tmp_path):
    opened = []

    def open_(settings=SECURED, name="b0"):
        (tmp_path / name).mkdir(exist_ok=True)
        b = Broker(tmp_path / name, settings)
        opened.append(b)
        return b
    yield open_
    for b in opened:
        b.close()


def create(b, *bindings, version=3, who=ADMIN):
    q = Q(CREATE, version)
    creations = tuple(q.AclCreation(resource_type=x.resource_type, resource_name=x.resource_name,
                                    resource_pattern_type=x.pattern_type, principal=x.principal, host=x.host,
                                    operation=x.operation, permission_type=x.permission) for x in bindings)
    return b.call(q.CreateAclsRequest(creations=creations), who).results


def _filter_fields(res=Res.ANY, name=None, pattern=Pat.ANY, principal=None, host=None, op=Op.ANY, perm=Perm.ANY):
    return dict(resource_type_filter=res, resource_name_filter=name, pattern_type_filter=pattern,
                principal_filter=principal, host_filter=host, operation=op, permission_type=perm)


def describe(b, version=3, who=ADMIN, **f):
    return b.call(Q(DESCRIBE, version).DescribeAclsRequest(**_filter_fields(**f)), who)


def delete(b, *filters, version=3, who=ADMIN):
    q = Q(DELETE, version)
    return b.call(q.DeleteAclsRequest(filters=tuple(q.DeleteAclsFilter(**_filter_fields(**f)) for f in filters)),
                  who).filter_results


def described(response):
    return sorted((r.resource_type, r.resource_name, r.pattern_type, a.principal, a.host, a.operation,
                   a.permission_type) for r in response.resources for a in r.acls)


def as_row(x):
    return (x.resource_type, x.resource_name, x.pattern_type, x.principal, x.host, x.operation, x.permission)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_create_describe_delete(broker_at, version):
    b = broker_at()
    read = acl()
    write = acl(name="ord", pattern=Pat.PREFIXED, operation=Op.WRITE, permission=Perm.DENY, host="10.0.0.1")
    group = acl(Res.GROUP, "g1")
    assert [r.error_code for r in create(b, read, write, group, version=version)] == [ErrorCode.none] * 3
    got = describe(b, version)
    assert got.error_code == ErrorCode.none
    assert described(got) == sorted(map(as_row, (read, write, group)))
    assert described(describe(b, version, res=Res.TOPIC, name="orders", pattern=Pat.MATCH)) == \
        sorted(map(as_row, (read, write)))
    assert described(describe(b, version, res=Res.TOPIC, name="orders", pattern=Pat.LITERAL)) == [as_row(read)]
    (result,) = delete(b, dict(res=Res.TOPIC), version=version)
    assert result.error_code == ErrorCode.none
    assert sorted((m.resource_name, m.operation) for m in result.matching_acls) == [("ord", Op.WRITE),
                                                                                    ("orders", Op.READ)]
    assert described(describe(b, version)) == [as_row(group)]


def test_create_is_idempotent_and_validates_each(broker_at):
    b = broker_at()
    bad_cluster = acl(Res.CLUSTER, "not-kafka-cluster", Op.ALTER)
    bad_principal = acl(principal="alice")
    results = create(b, acl(), bad_cluster, acl(), bad_principal, acl(pattern=Pat.MATCH))
    assert [r.error_code for r in results] == [ErrorCode.none, ErrorCode.invalid_request, ErrorCode.none,
                                               ErrorCode.invalid_request, ErrorCode.invalid_request]
    assert "kafka-cluster" in results[1].error_message
    assert described(describe(b)) == [as_row(acl())]


def test_unknown_filter_elements_are_invalid_request(broker_at):
    b = broker_at()
    create(b, acl())
    assert describe(b, pattern=Pat.UNKNOWN).error_code == ErrorCode.invalid_request
    assert describe(b, op=99).error_code == ErrorCode.invalid_request, "a code Kafka lacks is UNKNOWN"
    bad, good = delete(b, dict(res=Res.UNKNOWN), dict(res=Res.TOPIC))
    assert bad.error_code == ErrorCode.invalid_request and good.error_code == ErrorCode.none
    assert len(good.matching_acls) == 1


def test_without_an_authorizer_security_disabled(broker_at):
    b = broker_at({})
    assert [r.error_code for r in create(b, acl())] == [ErrorCode.security_disabled]
    assert describe(b).error_code == ErrorCode.security_disabled
    assert [r.error_code for r in delete(b, {})] == [ErrorCode.security_disabled]


def test_acl_apis_need_rights_on_the_cluster(broker_at, tmp_path):
    b = broker_at()
    create(b, acl())
    before = tree_digest(tmp_path / "b0")
    assert [r.error_code for r in create(b, acl(name="x"), who=ALICE)] == [ErrorCode.cluster_authorization_failed]
    assert describe(b, who=ALICE).error_code == ErrorCode.cluster_authorization_failed
    assert [r.error_code for r in delete(b, {}, who=ALICE)] == [ErrorCode.cluster_authorization_failed]
    assert tree_digest(tmp_path / "b0") == before
    create(b, acl(Res.CLUSTER, "kafka-cluster", Op.DESCRIBE))
    assert describe(b, who=ALICE).error_code == ErrorCode.none, "DESCRIBE on the cluster lets alice list"
    assert [r.error_code for r in create(b, acl(name="x"), who=ALICE)] == [ErrorCode.cluster_authorization_failed]
    create(b, acl(Res.CLUSTER, "kafka-cluster", Op.ALTER))
    assert [r.error_code for r in create(b, acl(name="x"), who=ALICE)] == [ErrorCode.none]


def test_acls_survive_a_restart(broker_at):
    b = broker_at()
    create(b, acl(), acl(Res.TRANSACTIONAL_ID, "tx", Op.WRITE, permission=Perm.DENY))
    delete(b, dict(res=Res.TOPIC, op=Op.READ))
    create(b, acl(Res.GROUP, "g", pattern=Pat.PREFIXED))
    expected = described(describe(b))
    b.close()
    again = broker_at(name="b0")
    assert described(describe(again)) == expected
    assert len(expected) == 2
