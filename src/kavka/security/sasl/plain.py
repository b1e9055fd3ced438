"""SASL/PLAIN (RFC 4616): one message ``authzid NUL authcid NUL password``, checked against
the users of the listener's JAAS config (``user_NAME="password"`` options of Kafka's
PlainLoginModule)."""

from __future__ import annotations

import hmac

from kavka.security.sasl import AuthenticationFailed, IllegalSaslState


def plain_users(options: dict[str, str]) -> dict[str, str]:
    """NAME -> password from the ``user_NAME`` options of a PlainLoginModule config."""
    return {k[len("user_"):]: v for k, v in options.items() if k.startswith("user_") and len(k) > 5}


class PlainServer:
    name = "PLAIN"

    def __init__(self, users: dict[str, str]) -> None:
        self._users = users
        self.complete = False
        self.username: str | None = None

    def evaluate(self, token: bytes) -> bytes:
        if self.complete:
            raise IllegalSaslState("PLAIN takes one message")
        try:
            authzid, authcid, password = token.decode("utf-8").split("\0")
        except (UnicodeDecodeError, ValueError):
            raise AuthenticationFailed("Invalid SASL/PLAIN response: expected 3 tokens") from None
        if not authcid:
            raise AuthenticationFailed("Authentication failed: username not specified")
        if not password:
            raise AuthenticationFailed("Authentication failed: password not specified")
        expected = self._users.get(authcid)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            raise AuthenticationFailed("Authentication failed: Invalid username or password")
        if authzid and authzid != authcid:
            raise AuthenticationFailed("Authentication failed: Client requested an authorization id "
                                       "that is different from username")
        self.username, self.complete = authcid, True
        return b""
