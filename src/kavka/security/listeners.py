"""What a listener's security protocol asks of each connection: TLS (SSL, SASL_SSL), SASL
(SASL_PLAINTEXT, SASL_SSL) with the mechanisms of ``sasl.enabled.mechanisms``, or neither
(PLAINTEXT).  Built once per listener from the broker settings; the server layer asks it for
a ``ConnectionSecurity`` per connection, which holds the connection's principal.
"""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass, field
from functools import partial

from kavka.config import ConfigError
from kavka.security.principal import ANONYMOUS, USER_TYPE, KafkaPrincipal
from kavka.security.sasl.jaas import parse_jaas
from kavka.security.sasl.oauthbearer import OAuthBearerServer, UnsecuredValidator
from kavka.security.sasl.plain import PlainServer, plain_users
from kavka.security.sasl.scram import MECHANISMS as SCRAM_MECHANISMS, ScramServer
from kavka.security.sasl.session import SaslSession
from kavka.security.tls import PrincipalMapper, server_context, subject_dn


@dataclass
class ListenerSecurity:
    name: str
    protocol: str
    ssl_context: ssl.SSLContext | None = None
    handshake_timeout_s: float = 10.0
    mapper: PrincipalMapper = field(default_factory=PrincipalMapper)
    mechanisms: dict = field(default_factory=dict)   # SASL: name -> factory of a mechanism server
    reauth_ms: int = 0
    failed_auth_delay_ms: int = 100

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    def connection(self) -> "ConnectionSecurity":
        return ConnectionSecurity(self, SaslSession(self.mechanisms, self.reauth_ms) if self.sasl else None)


PLAINTEXT = ListenerSecurity("PLAINTEXT", "PLAINTEXT")


@dataclass
class ConnectionSecurity:
    """One connection's listener, TLS peer and SASL state."""
    listener: ListenerSecurity
    sasl: SaslSession | None
    tls_principal: KafkaPrincipal = ANONYMOUS
    close_reason: str | None = None    # set by a failed authentication: close once answered

    @property
    def principal(self) -> KafkaPrincipal:
        if self.sasl is not None:
            return self.sasl.principal or ANONYMOUS
        return self.tls_principal

    def tls_established(self, ssl_object) -> KafkaPrincipal | None:
        """The handshake is done: a verified client certificate names the principal (returned;
        None without one).  ValueError when no mapping rule matches its subject."""
        cert = ssl_object.getpeercert() if ssl_object is not None else None
        if not cert:
            return None
        self.tls_principal = KafkaPrincipal(USER_TYPE, self.listener.mapper.name(subject_dn(cert)))
        return self.tls_principal

    def refusal(self, api_key: int) -> str | None:
        if self.sasl is None:
            return None
        return self.sasl.refusal(api_key, int(time.time() * 1000))


def listener_security(config, name: str, protocol: str, credentials=None) -> ListenerSecurity:
    """The security of listener ``name`` from the broker settings; ConfigError when incomplete.
    ``credentials``: a callable giving the SCRAM credentials as they are now (a
    kavka.security.credentials.ScramCredentialSet, from the metadata boundary), needed for SCRAM;
    each login asks it, so a change made through any broker applies to the next login."""
    sec = ListenerSecurity(name, protocol)
    if protocol in ("SSL", "SASL_SSL"):
        sec.ssl_context = server_context(config, name)
        sec.handshake_timeout_s = config.get("kavka.ssl.handshake.timeout.ms") / 1000
        sec.mapper = PrincipalMapper(config.for_listener(name, "ssl.principal.mapping.rules"))
    if sec.sasl:
        sec.mechanisms = {m: _mechanism(config, name, m, credentials)
                          for m in config.for_listener(name, "sasl.enabled.mechanisms")}
        sec.reauth_ms = config.for_listener(name, "connections.max.reauth.ms")
        sec.failed_auth_delay_ms = config.get("connection.failed.authentication.delay.ms")
    return sec


def _jaas(config, listener: str, mechanism: str, required: bool) -> dict[str, str]:
    text = config.for_listener(listener, "sasl.jaas.config", mechanism)
    if text is None:
        if required:
            raise ConfigError(f"listener {listener} enables {mechanism} but has no "
                              f"listener.name.{listener.lower()}.{mechanism.lower()}.sasl.jaas.config")
        return {}
    return parse_jaas(text)


def _mechanism(config, listener: str, mechanism: str, credentials):
    if mechanism == "PLAIN":
        users = plain_users(_jaas(config, listener, mechanism, True))
        return partial(PlainServer, users)
    if mechanism in SCRAM_MECHANISMS:
        if credentials is None:
            raise ConfigError(f"listener {listener}: {mechanism} needs the broker's credential store")
        return partial(ScramServer, mechanism, lambda user: credentials().get(user, mechanism))
    if mechanism == "OAUTHBEARER":
        if config.for_listener(listener, "sasl.oauthbearer.jwks.endpoint.url"):
            from kavka.security.sasl.jwks import JwksValidator
            validator = JwksValidator(config, listener)
        else:
            validator = UnsecuredValidator(_jaas(config, listener, mechanism, False))
        return partial(OAuthBearerServer, validator)
    raise ConfigError(f"listener {listener}: SASL mechanism {mechanism} is not served by kavka "
                      "(PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER; set sasl.enabled.mechanisms)")
