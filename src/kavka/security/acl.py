"""Kafka's ACL model: bindings (a resource pattern and an access control entry), the filters
DescribeAcls / DeleteAcls select them with, and :class:`AclSet`, the bindings indexed by
resource for the authorizer.

The enum values are Kafka's wire codes (ResourceType, PatternType, AclOperation,
AclPermissionType), so requests and the stored form use the same numbers.  A binding's
stored form is a small JSON object with Kafka's names (``TOPIC``, ``PREFIXED``, ``READ``).
Pure: no I/O; the metadata implementations persist bindings (kavka.metadata).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from enum import IntEnum
from typing import Iterable

WILDCARD_RESOURCE = "*"
WILDCARD_PRINCIPAL = "User:*"
WILDCARD_HOST = "*"
CLUSTER_NAME = "kafka-cluster"


class ResourceType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclOperation(IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14
    TWO_PHASE_COMMIT = 15


class AclPermission(IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


CONCRETE_RESOURCES = frozenset(ResourceType) - {ResourceType.UNKNOWN, ResourceType.ANY}
CONCRETE_OPERATIONS = frozenset(AclOperation) - {AclOperation.UNKNOWN, AclOperation.ANY}

# The operations an ALLOW of one grants besides itself (Kafka's AclEntry / StandardAuthorizer).
IMPLIED_BY = {
    AclOperation.DESCRIBE: frozenset({AclOperation.READ, AclOperation.WRITE, AclOperation.DELETE,
                                      AclOperation.ALTER}),
    AclOperation.DESCRIBE_CONFIGS: frozenset({AclOperation.ALTER_CONFIGS}),
}

# Operations that make sense on each resource type (Kafka's AclEntry.supportedOperations),
# what ``include_*_authorized_operations`` reports over.
SUPPORTED_OPERATIONS = {
    ResourceType.TOPIC: (AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE, AclOperation.DESCRIBE,
                         AclOperation.DELETE, AclOperation.ALTER, AclOperation.DESCRIBE_CONFIGS,
                         AclOperation.ALTER_CONFIGS),
    ResourceType.GROUP: (AclOperation.READ, AclOperation.DESCRIBE, AclOperation.DELETE,
                         AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS),
    ResourceType.CLUSTER: (AclOperation.CREATE, AclOperation.CLUSTER_ACTION, AclOperation.DESCRIBE_CONFIGS,
                           AclOperation.ALTER_CONFIGS, AclOperation.IDEMPOTENT_WRITE, AclOperation.ALTER,
                           AclOperation.DESCRIBE),
    ResourceType.TRANSACTIONAL_ID: (AclOperation.DESCRIBE, AclOperation.WRITE, AclOperation.TWO_PHASE_COMMIT),
    ResourceType.DELEGATION_TOKEN: (AclOperation.DESCRIBE,),
    ResourceType.USER: (AclOperation.CREATE_TOKENS, AclOperation.DESCRIBE_TOKENS),
}


class InvalidAcl(ValueError):
    """A binding or filter Kafka refuses with INVALID_REQUEST."""


@dataclass(frozen=True, slots=True, order=True)
class AclBinding:
    resource_type: ResourceType
    resource_name: str
    pattern_type: PatternType
    principal: str
    host: str
    operation: AclOperation
    permission: AclPermission

    def validate(self) -> None:
        """Kafka's checks of a new binding (AclControlManager.validateNewAcl); raises InvalidAcl."""
        if self.resource_type not in CONCRETE_RESOURCES:
            raise InvalidAcl(f"Invalid resourceType {self.resource_type.name}")
        if self.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
            raise InvalidAcl(f"Invalid patternType {self.pattern_type.name}")
        if self.operation not in CONCRETE_OPERATIONS:
            raise InvalidAcl(f"Invalid operation {self.operation.name}")
        if self.permission not in (AclPermission.ALLOW, AclPermission.DENY):
            raise InvalidAcl(f"Invalid permissionType {self.permission.name}")
        if not self.resource_name:
            raise InvalidAcl("Resource name should not be empty")
        if self.resource_type == ResourceType.CLUSTER and self.resource_name != CLUSTER_NAME:
            raise InvalidAcl(f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}")
        kind, sep, name = self.principal.partition(":")
        if not sep or not kind or not name:
            raise InvalidAcl(f"Could not parse principal from `{self.principal}` (no colon is present "
                             "separating the principal type from the principal name)")
        if not self.host:
            raise InvalidAcl("Host should not be empty")

    def to_json(self) -> str:
        return json.dumps({"resourceType": self.resource_type.name, "name": self.resource_name,
                           "patternType": self.pattern_type.name, "principal": self.principal,
                           "host": self.host, "operation": self.operation.name,
                           "permissionType": self.permission.name}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> "AclBinding":
        d = json.loads(text)
        return cls(ResourceType[d["resourceType"]], d["name"], PatternType[d["patternType"]], d["principal"],
                   d["host"], AclOperation[d["operation"]], AclPermission[d["permissionType"]])

    def __str__(self) -> str:
        return (f"(principal={self.principal}, host={self.host}, operation={self.operation.name}, "
                f"permissionType={self.permission.name}) on {self.resource_type.name}:"
                f"{self.pattern_type.name}:{self.resource_name}")


@dataclass(frozen=True, slots=True)
class AclFilter:
    """None in a text field, ANY in an enum field: anything.  MATCH (patterns only) selects every
    binding that would apply to the named resource: the literal one, the wildcard, prefixes."""
    resource_type: ResourceType = ResourceType.ANY
    resource_name: str | None = None
    pattern_type: PatternType = PatternType.ANY
    principal: str | None = None
    host: str | None = None
    operation: AclOperation = AclOperation.ANY
    permission: AclPermission = AclPermission.ANY

    def validate(self) -> None:
        """What DescribeAcls / DeleteAcls refuse as INVALID_REQUEST; raises InvalidAcl."""
        for field_name, value in (("resourceType", self.resource_type), ("patternType", self.pattern_type),
                                  ("operation", self.operation), ("permissionType", self.permission)):
            if value == 0:
                raise InvalidAcl(f"Filter contains UNKNOWN elements: {field_name}")

    def matches(self, b: AclBinding) -> bool:
        return (self._resource_matches(b)
                and (self.principal is None or self.principal == b.principal)
                and (self.host is None or self.host == b.host)
                and self.operation in (AclOperation.ANY, b.operation)
                and self.permission in (AclPermission.ANY, b.permission))

    def _resource_matches(self, b: AclBinding) -> bool:
        if self.resource_type not in (ResourceType.ANY, b.resource_type):
            return False
        if self.pattern_type in (PatternType.ANY, PatternType.LITERAL, PatternType.PREFIXED):
            return (self.pattern_type in (PatternType.ANY, b.pattern_type)
                    and (self.resource_name is None or self.resource_name == b.resource_name))
        if self.resource_name is None:      # MATCH without a name: every pattern
            return True
        if b.pattern_type == PatternType.LITERAL:
            return b.resource_name in (self.resource_name, WILDCARD_RESOURCE)
        return self.resource_name.startswith(b.resource_name)


class AclSet:
    """An immutable set of bindings, indexed by (resource type, pattern type, resource name).
    ``loaded`` False: the bindings are not known yet (a cluster broker before its first etcd
    snapshot), and the authorizer allows only super users meanwhile, as Kafka's does until its
    ACLs are loaded."""

    __slots__ = ("_bindings", "_index", "loaded")

    def __init__(self, bindings: Iterable[AclBinding] = (), loaded: bool = True) -> None:
        self.loaded = loaded
        self._bindings = frozenset(bindings)
        index: dict[tuple, list[AclBinding]] = defaultdict(list)
        for b in self._bindings:
            index[(b.resource_type, b.pattern_type, b.resource_name)].append(b)
        self._index = {key: tuple(value) for key, value in index.items()}

    def __iter__(self):
        return iter(sorted(self._bindings))

    def __len__(self) -> int:
        return len(self._bindings)

    def __contains__(self, binding: AclBinding) -> bool:
        return binding in self._bindings

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AclSet) and other._bindings == self._bindings

    __hash__ = None  # type: ignore[assignment]

    @property
    def bindings(self) -> frozenset[AclBinding]:
        return self._bindings

    def matching(self, filter_: AclFilter) -> list[AclBinding]:
        return [b for b in self if filter_.matches(b)]

    def applicable(self, resource_type: ResourceType, name: str) -> list[AclBinding]:
        """Every binding whose pattern covers the resource: literal, wildcard, and each prefix of the name."""
        found = list(self._index.get((resource_type, PatternType.LITERAL, name), ()))
        if name != WILDCARD_RESOURCE:
            found += self._index.get((resource_type, PatternType.LITERAL, WILDCARD_RESOURCE), ())
        for end in range(1, len(name) + 1):
            found += self._index.get((resource_type, PatternType.PREFIXED, name[:end]), ())
        return found

    def of_type(self, resource_type: ResourceType) -> list[AclBinding]:
        return [b for b in self._bindings if b.resource_type == resource_type]
