"""Which requests come from the cluster's other brokers (replica fetches, forwarded admin
requests, transaction markers and verification), for what only a broker may skip: client
quotas (Kafka exempts inter-broker traffic) and the internal topics' reserved names (a
forwarded CreateTopics of ``__consumer_offsets``).

A broker is not whoever *names* itself one.  A request is a broker's when it came through
the inter-broker listener (``inter.broker.listener.name``, the only one brokers connect to)
and

* that listener authenticates its clients (SASL_PLAINTEXT, SASL_SSL, or SSL with
  ``ssl.client.auth`` requested or required): its principal is the one this broker itself
  authenticates as there (the username of the inter-broker JAAS config, or the mapped subject
  of its own certificate), or, with an authorizer, a principal allowed CLUSTER_ACTION on the
  cluster (``super.users``, or an ACL: brokers with certificates of their own); the client id
  plays no part;
* else (PLAINTEXT, SSL without client authentication) nothing identifies anyone, so the
  client id (``kavka-broker-N``, ``kavka-replica-N``) is all there is, as for every other
  decision on such a listener.

A lone broker has no other brokers: nothing is a broker's there.
"""

from __future__ import annotations

from dataclasses import dataclass

from kavka.api.registry import Request
from kavka.internal_topics import BROKER_CLIENT_PREFIX
from kavka.security.acl import CLUSTER_NAME, AclOperation, ResourceType
from kavka.security.authorizer import host_of
from kavka.security.principal import USER_TYPE, KafkaPrincipal
from kavka.security.tls import PrincipalMapper, own_subject

REPLICA_CLIENT_PREFIX = "kavka-replica-"


@dataclass(frozen=True)
class InterBrokerIdentity:
    listener: str                           # inter.broker.listener.name
    authenticated: bool                     # the listener authenticates its clients
    principal: KafkaPrincipal | None = None  # this broker's own principal there, when known

    @classmethod
    def of(cls, config, listener: str, protocol: str, security) -> "InterBrokerIdentity":
        """From the listener's settings and this broker's own ClientSecurity for it."""
        if protocol.startswith("SASL_"):
            return cls(listener, True, KafkaPrincipal(USER_TYPE, security.username))
        if protocol == "SSL" and config.for_listener(listener, "ssl.client.auth") != "none":
            subject = own_subject(config, listener)
            mapper = PrincipalMapper(config.for_listener(listener, "ssl.principal.mapping.rules"))
            try:
                principal = KafkaPrincipal(USER_TYPE, mapper.name(subject)) if subject is not None else None
            except ValueError:
                principal = None
            return cls(listener, True, principal)
        return cls(listener, False)


def from_broker(request: Request) -> bool:
    """Whether ``request`` was sent by another broker of the cluster (see the module's text)."""
    identity: InterBrokerIdentity | None = request.broker.inter_broker
    if identity is None or request.listener != identity.listener:
        return False
    if not identity.authenticated:
        client_id = request.client_id or ""
        return client_id.startswith((BROKER_CLIENT_PREFIX, REPLICA_CLIENT_PREFIX))
    if identity.principal is not None and request.principal == identity.principal:
        return True
    authorizer = request.broker.authorizer
    return authorizer is not None and authorizer.authorize(
        request.broker.metadata.acls(), request.principal, host_of(request.peer), AclOperation.CLUSTER_ACTION,
        ResourceType.CLUSTER, CLUSTER_NAME)
