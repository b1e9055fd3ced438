"""What CreateAcls, DescribeAcls and DeleteAcls share: wire codes to the ACL model
(kavka.security.acl) and back, and the refusals common to all three."""

from __future__ import annotations

import functools
from enum import IntEnum
from typing import Callable

from kavka.api.authorization import cluster_allowed
from kavka.api.registry import Request
from kavka.protocol.errors import ErrorCode
from kavka.security.acl import (
    AclBinding,
    AclFilter,
    AclOperation,
    AclPermission,
    PatternType,
    ResourceType,
)

NO_AUTHORIZER = "No Authorizer is configured."


def code_of(enum: type[IntEnum], value: int):
    """A wire code as the enum, UNKNOWN (0) for a code Kafka does not define."""
    try:
        return enum(value)
    except ValueError:
        return enum(0)


def refusal(request: Request, operation: AclOperation) -> tuple[ErrorCode, str] | None:
    """SECURITY_DISABLED without an authorizer, CLUSTER_AUTHORIZATION_FAILED without the
    right on the cluster, else None."""
    if request.broker.authorizer is None:
        return ErrorCode.security_disabled, NO_AUTHORIZER
    if not cluster_allowed(request, operation):
        return ErrorCode.cluster_authorization_failed, "Cluster authorization failed."
    return None


def guarded(operation: AclOperation, refuse: Callable[[Request, tuple[ErrorCode, str]], object]):
    """A handler run only when :func:`refusal` has nothing to say; else ``refuse(request, (code, message))``."""
    def decorate(handler):
        @functools.wraps(handler)
        def checked(request: Request):
            refused = refusal(request, operation)
            return handler(request) if refused is None else refuse(request, refused)
        return checked
    return decorate


def filter_of(wire) -> AclFilter:
    """A DescribeAcls request or DeleteAclsFilter as a filter (validate() before use)."""
    return AclFilter(code_of(ResourceType, wire.resource_type_filter), wire.resource_name_filter,
                     code_of(PatternType, wire.pattern_type_filter), wire.principal_filter, wire.host_filter,
                     code_of(AclOperation, wire.operation), code_of(AclPermission, wire.permission_type))


def binding_of(wire) -> AclBinding:
    """An AclCreation as a binding (validate() before use)."""
    return AclBinding(code_of(ResourceType, wire.resource_type), wire.resource_name,
                      code_of(PatternType, wire.resource_pattern_type), wire.principal, wire.host,
                      code_of(AclOperation, wire.operation), code_of(AclPermission, wire.permission_type))


def wire_fields(b: AclBinding) -> dict:
    """A binding as the fields of DescribeAcls' and DeleteAcls' answers."""
    return dict(resource_type=b.resource_type, resource_name=b.resource_name, pattern_type=b.pattern_type,
                principal=b.principal, host=b.host, operation=b.operation, permission_type=b.permission)
