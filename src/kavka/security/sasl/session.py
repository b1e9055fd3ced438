"""The SASL state of one connection on a SASL listener (Kafka's SaslServerAuthenticator).

States: HANDSHAKE (only ApiVersions and SaslHandshake are accepted), AUTHENTICATE (a
mechanism was chosen; SaslAuthenticate frames, or raw tokens after SaslHandshake v0, feed it),
COMPLETE (every API; the principal is ``User:<name>``), FAILED (a token was refused: the
connection closes once that is answered, and no later token is taken, as Kafka's SCRAM server
enters its FAILED state).  Any other request before COMPLETE closes the connection, as does a
failed authentication.

Re-authentication (KIP-368): with ``connections.max.reauth.ms`` > 0 (or a token that expires
sooner), SaslAuthenticate v1+ answers the session lifetime; the client runs SaslHandshake +
SaslAuthenticate again on the same connection before it ends, as the same principal.  A
request other than those after the session expired closes the connection.
"""

from __future__ import annotations

from enum import Enum

from kavka.security.principal import USER_TYPE, KafkaPrincipal
from kavka.security.sasl import AuthenticationFailed, IllegalSaslState

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36


class SaslState(Enum):
    HANDSHAKE = "handshake"
    AUTHENTICATE = "authenticate"
    COMPLETE = "complete"
    FAILED = "failed"


class SaslSession:
    """``mechanisms``: name -> factory of a fresh mechanism server (evaluate(token) -> bytes)."""

    def __init__(self, mechanisms: dict, reauth_ms: int = 0) -> None:
        self.mechanisms = mechanisms
        self.reauth_ms = reauth_ms
        self.state = SaslState.HANDSHAKE
        self.principal: KafkaPrincipal | None = None
        self.raw_tokens = False          # SaslHandshake v0: tokens come as bare size-prefixed frames
        self.expires_ms: int | None = None
        self._server = None
        self._reauthenticating = False

    @property
    def authenticated(self) -> bool:
        return self.principal is not None

    def refusal(self, api_key: int, now_ms: int) -> str | None:
        """Why request ``api_key`` may not be handled now (the connection is then closed), or None."""
        if api_key in (API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE):
            return None
        if self.state != SaslState.COMPLETE and not self._reauthenticating:
            return f"unexpected Kafka request of API key {api_key} during SASL {self.state.value}"
        if self.expires_ms is not None and now_ms >= self.expires_ms:
            return "the SASL session expired without re-authentication (connections.max.reauth.ms)"
        return None

    def handshake(self, mechanism: str, version: int) -> bool:
        """Pick a mechanism; False if it is not enabled (answered UNSUPPORTED_SASL_MECHANISM)."""
        if self.state in (SaslState.AUTHENTICATE, SaslState.FAILED):
            raise IllegalSaslState(f"SaslHandshake received during SASL {self.state.value}")
        if self.state == SaslState.COMPLETE:
            self._reauthenticating = True
        if mechanism not in self.mechanisms:
            return False
        self._server = self.mechanisms[mechanism]()
        self.raw_tokens = version == 0 and not self._reauthenticating
        self.state = SaslState.AUTHENTICATE
        return True

    def authenticate(self, token: bytes, now_ms: int) -> bytes:
        """Feed one client token; the server's reply.  AuthenticationFailed / IllegalSaslState
        end the connection."""
        if self.state != SaslState.AUTHENTICATE:
            raise IllegalSaslState(f"SaslAuthenticate received during SASL {self.state.value}")
        try:
            reply = self._server.evaluate(token)
            if self._server.complete:
                self._complete(now_ms)
        except (AuthenticationFailed, IllegalSaslState):
            self.state, self._server, self._reauthenticating = SaslState.FAILED, None, False
            raise
        return reply

    def _complete(self, now_ms: int) -> None:
        principal = KafkaPrincipal(USER_TYPE, self._server.username)
        if self._reauthenticating and principal != self.principal:
            raise AuthenticationFailed(f"Cannot change principals during re-authentication from "
                                       f"{self.principal} to {principal}")
        self.principal, self.state, self.raw_tokens = principal, SaslState.COMPLETE, False
        self._reauthenticating = False
        lifetimes = [ms for ms in (self.reauth_ms or None, self._token_lifetime(now_ms)) if ms is not None]
        self.expires_ms = now_ms + min(lifetimes) if lifetimes else None
        self._server = None

    def _token_lifetime(self, now_ms: int) -> int | None:
        expiry = getattr(self._server, "expires_ms", None)
        return None if expiry is None else max(expiry - now_ms, 0)

    def session_lifetime_ms(self, now_ms: int) -> int:
        """What SaslAuthenticate v1+ answers: ms left in the session, 0 when it never expires."""
        return 0 if self.expires_ms is None else max(self.expires_ms - now_ms, 0)
