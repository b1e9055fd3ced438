"""Kafka's ACL authorizer (StandardAuthorizer's rules), pure: given the bindings, may this
principal, from this host, do this operation on this resource?

* ``super.users`` (``User:admin;User:ops``) may do anything.
* The bindings that apply to a resource are its LITERAL one, the LITERAL wildcard ``*`` and
  every PREFIXED one whose name starts the resource's name; of those, the ones for the
  principal or ``User:*``, for the host or ``*``, and for the operation or ALL count.
* A DENY among them wins; else an ALLOW allows.  An ALLOW of READ, WRITE, DELETE or ALTER
  also allows DESCRIBE, and one of ALTER_CONFIGS allows DESCRIBE_CONFIGS (DENY implies nothing).
* No binding at all on the resource (for anyone): ``allow.everyone.if.no.acl.found``
  (default false) decides; a resource with bindings only for others is denied.
* Bindings not loaded yet (kavka.security.acl.AclSet.loaded): only super users pass.

``authorizer.class.name`` switches it on (Kafka's class names, :data:`KNOWN_CLASSES`); unset,
:func:`from_config` answers None and every request is allowed, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

from kavka.security.acl import (
    IMPLIED_BY,
    SUPPORTED_OPERATIONS,
    WILDCARD_HOST,
    WILDCARD_PRINCIPAL,
    AclBinding,
    AclOperation,
    AclPermission,
    AclSet,
    PatternType,
    ResourceType,
)
from kavka.security.principal import KafkaPrincipal

KNOWN_CLASSES = frozenset({
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
})


@dataclass(frozen=True, slots=True)
class Authorizer:
    super_users: frozenset[str] = frozenset()
    allow_if_no_acl: bool = False

    def authorize(self, acls: AclSet, principal: KafkaPrincipal, host: str, operation: AclOperation,
                  resource_type: ResourceType, name: str) -> bool:
        if str(principal) in self.super_users:
            return True
        if not acls.loaded:
            return False
        applicable = acls.applicable(resource_type, name)
        if not applicable:
            return self.allow_if_no_acl
        relevant = [b for b in applicable if _for(b, principal, host)]
        if any(b.permission == AclPermission.DENY and _denies(b.operation, operation) for b in relevant):
            return False
        return any(b.permission == AclPermission.ALLOW and _allows(b.operation, operation) for b in relevant)

    def authorize_any(self, acls: AclSet, principal: KafkaPrincipal, host: str, operation: AclOperation,
                      resource_type: ResourceType) -> bool:
        """Whether some resource of the type could be allowed (Kafka's authorizeByResourceType):
        an ALLOW pattern for the principal not covered by one of its DENY patterns."""
        if str(principal) in self.super_users:
            return True
        if not acls.loaded:
            return False
        of_type = acls.of_type(resource_type)
        if not of_type:
            return self.allow_if_no_acl
        relevant = [b for b in of_type if _for(b, principal, host)]
        denied = [b for b in relevant if b.permission == AclPermission.DENY and _denies(b.operation, operation)]
        if any(b.pattern_type == PatternType.LITERAL and b.resource_name == "*" for b in denied):
            return False
        return any(b.permission == AclPermission.ALLOW and _allows(b.operation, operation)
                   and not _covered(b, denied) for b in relevant)

    def authorized_operations(self, acls: AclSet, principal: KafkaPrincipal, host: str,
                              resource_type: ResourceType, name: str) -> int:
        """The bit field of ``include_*_authorized_operations``: bit n set for operation code n;
        0 without DESCRIBE on the resource, as Kafka answers."""
        if not self.authorize(acls, principal, host, AclOperation.DESCRIBE, resource_type, name):
            return 0
        bits = 0
        for op in SUPPORTED_OPERATIONS[resource_type]:
            if self.authorize(acls, principal, host, op, resource_type, name):
                bits |= 1 << op
        return bits


def from_config(config) -> Authorizer | None:
    """The authorizer ``authorizer.class.name`` asks for, or None (no authorization)."""
    name = config.get("authorizer.class.name")
    if not name:
        return None
    users = frozenset(u.strip() for u in (config.get("super.users") or "").split(";") if u.strip())
    return Authorizer(users, config.get("allow.everyone.if.no.acl.found"))


def host_of(peer: str) -> str:
    """``127.0.0.1:50000`` -> ``127.0.0.1``; ``[::1]:50000`` -> ``::1``."""
    host = peer.rpartition(":")[0] if ":" in peer else peer
    return host.strip("[]")


def _for(b: AclBinding, principal: KafkaPrincipal, host: str) -> bool:
    return b.principal in (str(principal), WILDCARD_PRINCIPAL) and b.host in (host, WILDCARD_HOST)


def _denies(granted: AclOperation, wanted: AclOperation) -> bool:
    return granted in (AclOperation.ALL, wanted)


def _allows(granted: AclOperation, wanted: AclOperation) -> bool:
    return granted in (AclOperation.ALL, wanted) or granted in IMPLIED_BY.get(wanted, ())


def _covered(allow: AclBinding, denied: list[AclBinding]) -> bool:
    """Whether every resource ``allow`` matches is also matched by a DENY pattern."""
    for d in denied:
        if d.pattern_type == PatternType.PREFIXED and allow.resource_name.startswith(d.resource_name):
            return True
        if (d.pattern_type == PatternType.LITERAL and allow.pattern_type == PatternType.LITERAL
                and d.resource_name == allow.resource_name):
            return True
    return False
