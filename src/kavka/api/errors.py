"""The API layer's own exceptions; their mapping to Kafka error codes is kavka.error_codes."""

from __future__ import annotations

from kavka.config import ConfigError
from kavka.error_codes import error_code_for, error_message


class InvalidRequestError(ValueError):
    """A request is well-formed but asks for something contradictory."""


class InvalidReplicationFactor(ValueError):
    pass


class InvalidReplicaAssignment(ValueError):
    pass


class TopicDeletionDisabled(ValueError):
    pass


class PolicyViolation(ValueError):
    """A change the broker's own rules forbid (e.g. a config of an internal topic)."""


class TopicAuthorizationFailed(ValueError):
    """The principal lacks the ACL this topic operation needs (kavka.api.authorization)."""


class GroupAuthorizationFailed(ValueError):
    pass


class ClusterAuthorizationFailed(ValueError):
    pass


__all__ = ["error_code_for", "error_message", "ConfigError"]
