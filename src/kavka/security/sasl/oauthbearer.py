"""SASL/OAUTHBEARER (RFC 7628) with Kafka's unsecured-JWT validator (for development).

The client's one message is ``n,[a=authzid],\\x01auth=Bearer <token>\\x01[key=value\\x01]*\\x01``.
The unsecured validator (Kafka's OAuthBearerUnsecuredValidatorCallbackHandler) takes a JWS
with ``"alg":"none"`` and no signature, and checks: the principal claim
(``unsecuredValidatorPrincipalClaimName``, default ``sub``) is a non-empty string; ``exp`` is
there and, like ``iat``, a number (seconds) within ``unsecuredValidatorAllowableClockSkewMs``;
the scopes (``unsecuredValidatorScopeClaimName``, default ``scope``) hold every one of
``unsecuredValidatorRequiredScope``.  As Kafka, a refused token is answered first with an
error challenge (``{"status":"invalid_token"}``); the client's ``\\x01`` reply then ends the
exchange in SASL_AUTHENTICATION_FAILED.

The client side (for the CLI's ``--command-config``): :func:`unsecured_login_token` makes the
token Kafka's OAuthBearerUnsecuredLoginCallbackHandler makes from the login module's
``unsecuredLogin*`` options, and :func:`client_first_message` wraps a token in the message above.
"""

from __future__ import annotations

import base64
import json
import re
import time

from kavka.security.sasl import AuthenticationFailed, IllegalSaslState

_MESSAGE = re.compile(r"n,(a=(?P<authzid>[^,]*))?,\x01(?P<kvpairs>(?:[A-Za-z]+=[\x21-\x7E \t\r\n]*\x01)*)\x01")


class InvalidToken(Exception):
    """The bearer token was refused; the message says why."""


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def decode_jws(token: str) -> tuple[dict, dict, list[str]]:
    """(header, claims, the three parts) of a compact JWS; InvalidToken if malformed."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("a JWS has three dot-separated parts")
    try:
        header, claims = json.loads(_b64url(parts[0])), json.loads(_b64url(parts[1]))
    except (ValueError, UnicodeDecodeError):
        raise InvalidToken("the JWS header or claims are not base64url JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidToken("the JWS header and claims must be JSON objects")
    return header, claims, parts


class UnsecuredValidator:
    def __init__(self, options: dict[str, str], clock=time.time) -> None:
        self.principal_claim = options.get("unsecuredValidatorPrincipalClaimName", "sub")
        self.scope_claim = options.get("unsecuredValidatorScopeClaimName", "scope")
        self.required_scope = options.get("unsecuredValidatorRequiredScope", "").split()
        self.skew_s = int(options.get("unsecuredValidatorAllowableClockSkewMs", "0")) / 1000
        self._clock = clock

    def validate(self, token: str) -> tuple[str, float]:
        """(principal name, exp in seconds) of the token; InvalidToken otherwise."""
        header, claims, parts = decode_jws(token)
        if header.get("alg") != "none" or parts[2]:
            raise InvalidToken("an unsecured JWS must have alg none and no signature")
        principal = check_claims(claims, self.principal_claim, self.scope_claim, self.required_scope,
                                 self.skew_s, self._clock())
        return principal, claims["exp"]


def check_claims(claims: dict, principal_claim: str, scope_claim: str, required_scope: list[str],
                 skew_s: float, now: float) -> str:
    principal = claims.get(principal_claim)
    if not isinstance(principal, str) or not principal.strip():
        raise InvalidToken(f"no principal claim {principal_claim!r}")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise InvalidToken("the exp claim is required and must be a number")
    if now > exp + skew_s:
        raise InvalidToken(f"the token expired at {exp}")
    if iat is not None and (not isinstance(iat, (int, float)) or iat > now + skew_s):
        raise InvalidToken("the iat claim is not a number or lies in the future")
    nbf = claims.get("nbf")
    if isinstance(nbf, (int, float)) and nbf > now + skew_s:
        raise InvalidToken("the token is not valid yet (nbf)")
    scope = claims.get(scope_claim, [])
    scopes = scope.split() if isinstance(scope, str) else list(scope) if isinstance(scope, list) else []
    missing = [s for s in required_scope if s not in scopes]
    if missing:
        raise InvalidToken(f"the token lacks the required scope {' '.join(missing)}")
    return principal


class OAuthBearerServer:
    name = "OAUTHBEARER"

    def __init__(self, validator) -> None:
        self._validator = validator
        self._error: str | None = None
        self.complete = False
        self.username: str | None = None
        self.expires_ms: int | None = None   # the token's exp: the session ends then (KIP-368)

    def evaluate(self, token: bytes) -> bytes:
        if self.complete:
            raise IllegalSaslState("OAUTHBEARER exchange already finished")
        if self._error is not None:
            if token != b"\x01":
                raise AuthenticationFailed("Authentication failed: expected the client's %x01 after the error")
            raise AuthenticationFailed(f"Authentication failed: {self._error}")
        m = _MESSAGE.fullmatch(token.decode("utf-8", "replace"))
        if m is None:
            raise AuthenticationFailed("Invalid OAUTHBEARER client first message")
        pairs = dict(kv.split("=", 1) for kv in m.group("kvpairs").split("\x01") if kv)
        auth = pairs.get("auth", "")
        if not auth.startswith("Bearer "):
            raise AuthenticationFailed("Invalid OAUTHBEARER client first message: no Bearer token")
        try:
            principal, exp = self._validator.validate(auth[len("Bearer "):].strip())
        except InvalidToken as exc:
            self._error = str(exc)
            return json.dumps({"status": "invalid_token"}).encode()
        authzid = m.group("authzid")
        if authzid and authzid != principal:
            raise AuthenticationFailed("Authentication failed: the authorization id differs from the "
                                       "token's principal")
        self.username, self.complete, self.expires_ms = principal, True, int(exp * 1000)
        return b""


_LOGIN_CLAIM = re.compile(r"unsecuredLogin(String|Number|List)Claim_(.+)")
_RESERVED = ("iat", "exp")


def _b64url_json(obj) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()


def unsecured_login_token(options: dict[str, str], now: float) -> str:
    """An unsecured JWS (``alg`` none) from OAuthBearerLoginModule options:
    ``unsecuredLoginStringClaim_NAME``, ``unsecuredLoginNumberClaim_NAME``,
    ``unsecuredLoginListClaim_NAME`` (the first character is the delimiter),
    ``unsecuredLoginPrincipalClaimName`` (default ``sub``) and ``unsecuredLoginLifetimeSeconds``
    (default 3600); ``iat`` and ``exp`` are made here.  ValueError names a bad option."""
    claims: dict = {}
    for key, value in options.items():
        m = _LOGIN_CLAIM.fullmatch(key)
        if m is None:
            continue
        kind, name = m.groups()
        if name in _RESERVED:
            raise ValueError(f"{key}: the {name} claim is made by the login module, it cannot be set")
        if kind == "String":
            claims[name] = value
        elif kind == "Number":
            try:
                claims[name] = float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                raise ValueError(f"{key}: {value!r} is not a number") from None
        else:
            claims[name] = [v for v in value[1:].split(value[0])] if value else []
    principal_claim = options.get("unsecuredLoginPrincipalClaimName", "sub")
    if not isinstance(claims.get(principal_claim), str) or not claims[principal_claim].strip():
        raise ValueError(f"unsecuredLoginStringClaim_{principal_claim}: the principal claim is required")
    try:
        lifetime = int(options.get("unsecuredLoginLifetimeSeconds", "3600"))
    except ValueError:
        raise ValueError("unsecuredLoginLifetimeSeconds: not a whole number of seconds") from None
    claims["iat"], claims["exp"] = int(now), int(now) + lifetime
    return f"{_b64url_json({'alg': 'none'})}.{_b64url_json(claims)}."


def client_first_message(token: str, extensions: dict[str, str] | None = None) -> bytes:
    """RFC 7628's client message with no authorization id, the token and SASL extensions."""
    pairs = "".join(f"{k}={v}\x01" for k, v in (extensions or {}).items())
    return f"n,,\x01auth=Bearer {token}\x01{pairs}\x01".encode()
