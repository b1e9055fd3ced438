"""How handlers ask the ACL authorizer (kavka.security.authorizer) about a request: the one
mechanism every API's checks go through.

* :func:`allowed` / :func:`refused` (the names of a batch it may not touch) / :func:`allowed_any`
  / :func:`authorized_operations` answer for the request's principal (``request.principal``) from its host (``request.peer``) against the
  bindings the metadata boundary holds (``metadata.acls()``); without an authorizer every
  request is allowed and every supported operation reported.
* :func:`requires` guards a whole request with one check (a group, the cluster, a
  transactional id): refused, it is answered with the response's top-level error code and
  empty contents (responses.error_response) before the handler runs, so nothing changes.
  Per-topic and per-partition refusals are the handlers' own, through :func:`allowed` and
  :func:`refused`; :func:`check_config_resource` is the configs APIs' (a topic, a group or the
  cluster, by the config resource type).

A denial is logged at debug level as Kafka's authorizer logger does (principal, operation,
host, resource), never at info: a client probing names must not fill the log.
"""

from __future__ import annotations

import functools
import logging
from typing import Callable

from kavka.api.errors import ClusterAuthorizationFailed, GroupAuthorizationFailed, TopicAuthorizationFailed
from kavka.api.registry import Request
from kavka.api.responses import error_response
from kavka.protocol.errors import ErrorCode
from kavka.security.acl import CLUSTER_NAME, SUPPORTED_OPERATIONS, AclOperation, ResourceType
from kavka.security.authorizer import host_of

log = logging.getLogger("kavka.authorizer")

Op = AclOperation
Res = ResourceType
NOT_REQUESTED = -(2**31)   # authorized_operations when the client did not ask for them
AUTHORIZATION_FAILED = "Authorization failed."

# The error a refusal on each resource type is answered with.
DENIED = {
    Res.TOPIC: ErrorCode.topic_authorization_failed,
    Res.GROUP: ErrorCode.group_authorization_failed,
    Res.CLUSTER: ErrorCode.cluster_authorization_failed,
    Res.TRANSACTIONAL_ID: ErrorCode.transactional_id_authorization_failed,
    Res.DELEGATION_TOKEN: ErrorCode.delegation_token_authorization_failed,
}


def allowed(request: Request, operation: AclOperation, resource_type: ResourceType,
            name: str = CLUSTER_NAME) -> bool:
    authorizer = request.broker.authorizer
    if authorizer is None:
        return True
    ok = authorizer.authorize(request.broker.metadata.acls(), request.principal, host_of(request.peer),
                              operation, resource_type, name)
    if not ok:
        log.debug("Principal = %s is Denied operation = %s from host = %s on resource = %s:%s",
                  request.principal, operation.name, host_of(request.peer), resource_type.name, name)
    return ok


def refused(request: Request, operation: AclOperation, resource_type: ResourceType, names) -> frozenset[str]:
    """Those of ``names`` the principal may not do ``operation`` on (each asked once)."""
    if request.broker.authorizer is None:
        return frozenset()
    return frozenset(n for n in set(names) if not allowed(request, operation, resource_type, n))


def allowed_any(request: Request, operation: AclOperation, resource_type: ResourceType) -> bool:
    """Whether the principal may do ``operation`` on some resource of the type."""
    authorizer = request.broker.authorizer
    if authorizer is None:
        return True
    return authorizer.authorize_any(request.broker.metadata.acls(), request.principal,
                                    host_of(request.peer), operation, resource_type)


def cluster_allowed(request: Request, operation: AclOperation) -> bool:
    return allowed(request, operation, Res.CLUSTER, CLUSTER_NAME)


def authorized_operations(request: Request, resource_type: ResourceType, name: str = CLUSTER_NAME,
                          asked: bool = True) -> int:
    """The ``*_authorized_operations`` bit field (bit n: operation code n), or NOT_REQUESTED."""
    if not asked:
        return NOT_REQUESTED
    authorizer = request.broker.authorizer
    if authorizer is None:
        return sum(1 << op for op in SUPPORTED_OPERATIONS[resource_type])
    return authorizer.authorized_operations(request.broker.metadata.acls(), request.principal,
                                            host_of(request.peer), resource_type, name)


# Config resource types (DescribeConfigs, AlterConfigs) -> the ACL resource they are checked on.
_CONFIG_TOPIC, _CONFIG_GROUP = 2, 32
_CONFIG_REFUSALS = {Res.TOPIC: TopicAuthorizationFailed, Res.GROUP: GroupAuthorizationFailed,
                    Res.CLUSTER: ClusterAuthorizationFailed}


def check_config_resource(request: Request, operation: AclOperation, config_type: int, name: str) -> None:
    """Raise the refusal of DESCRIBE_CONFIGS / ALTER_CONFIGS on a config resource, as Kafka checks
    it: a topic or a group on itself, the brokers and their loggers on the cluster."""
    if config_type == _CONFIG_TOPIC:
        kind = Res.TOPIC
    elif config_type == _CONFIG_GROUP:
        kind = Res.GROUP
    else:
        kind, name = Res.CLUSTER, CLUSTER_NAME
    if not allowed(request, operation, kind, name):
        raise _CONFIG_REFUSALS[kind](AUTHORIZATION_FAILED)


def requires(operation: AclOperation, resource_type: ResourceType,
             name_of: Callable[[Request], str | None] = lambda request: CLUSTER_NAME,
             refuse: Callable[[Request, ErrorCode], object] | None = None):
    """Guard a handler: refused, the request is answered with the resource type's error, by
    ``refuse(request, code)`` for responses that carry it per item, else as the response's
    top-level error code with empty contents.  ``name_of`` picks the resource's name from the
    request; None skips the check (the handler refuses such a request itself, e.g. a missing
    transactional id)."""
    code = DENIED[resource_type]

    def decorate(handler):
        @functools.wraps(handler)
        def guarded(request: Request):
            name = name_of(request)
            if name is None or allowed(request, operation, resource_type, name):
                return handler(request)
            answer = (refuse(request, code) if refuse is not None
                      else error_response(request.api_key, request.version, code))
            if answer is None:
                raise RuntimeError(f"{handler.__module__} v{request.version} has no top-level error code")
            return answer   # the dispatcher takes a plain answer from any handler
        return guarded
    return decorate


def group_id(request: Request) -> str:
    return request.body.group_id


def transactional_id(request: Request) -> str | None:
    return request.body.transactional_id
