"""OAUTHBEARER tokens verified against a JWKS (``sasl.oauthbearer.jwks.endpoint.url``), as
Kafka's OAuthBearerValidatorCallbackHandler does: the JWS signature (RS256/384/512,
ES256/384/512) by the key its ``kid`` names, then ``exp``/``iat``/``nbf`` within
``sasl.oauthbearer.clock.skew.seconds``, ``aud`` among ``sasl.oauthbearer.expected.audience``
(when set), ``iss`` equal to ``sasl.oauthbearer.expected.issuer`` (when set), and the principal
from ``sasl.oauthbearer.sub.claim.name``.

The key set is fetched when the listener is built (an ``http(s)://`` or ``file://`` URL) and again
when a token names a key it does not hold or ``sasl.oauthbearer.jwks.endpoint.refresh.ms`` has
passed, at most once a second.  That fetch runs on the event loop: use a nearby endpoint.
Verifying needs the ``cryptography`` package, imported only when a JWKS URL is configured.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request

from kavka.config import ConfigError
from kavka.security.sasl.oauthbearer import InvalidToken, check_claims, decode_jws

_HASHES = {"256": "SHA256", "384": "SHA384", "512": "SHA512"}
_MIN_REFETCH_S = 1.0


def _int(b64: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)), "big")


class JwksValidator:
    def __init__(self, config, listener: str, clock=time.time) -> None:
        try:
            from cryptography.exceptions import InvalidSignature
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
        except ImportError:
            raise ConfigError("sasl.oauthbearer.jwks.endpoint.url needs the cryptography package") from None
        self._crypto = (hashes, ec, padding, rsa, utils)
        self._invalid = InvalidSignature

        def setting(name):
            return config.for_listener(listener, name)
        self.url = setting("sasl.oauthbearer.jwks.endpoint.url")
        self.audience = list(setting("sasl.oauthbearer.expected.audience") or ())
        self.issuer = setting("sasl.oauthbearer.expected.issuer")
        self.sub_claim = setting("sasl.oauthbearer.sub.claim.name")
        self.scope_claim = setting("sasl.oauthbearer.scope.claim.name")
        self.skew_s = setting("sasl.oauthbearer.clock.skew.seconds")
        self.refresh_s = setting("sasl.oauthbearer.jwks.endpoint.refresh.ms") / 1000
        self._clock = clock
        self._keys: dict[str, object] = {}
        self._fetched = 0.0
        try:
            self._fetch()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"sasl.oauthbearer.jwks.endpoint.url: cannot read {self.url}: {exc}") from None

    def _fetch(self) -> None:
        with urllib.request.urlopen(self.url, timeout=5) as response:
            jwks = json.loads(response.read())
        self._keys = {k.get("kid", ""): key for k in jwks.get("keys", ()) if (key := self._public_key(k)) is not None}
        self._fetched = time.monotonic()

    def _public_key(self, jwk: dict):
        _hashes, ec, _padding, rsa, _utils = self._crypto
        if jwk.get("kty") == "RSA":
            return rsa.RSAPublicNumbers(_int(jwk["e"]), _int(jwk["n"])).public_key()
        curves = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}
        if jwk.get("kty") == "EC" and jwk.get("crv") in curves:
            return ec.EllipticCurvePublicNumbers(_int(jwk["x"]), _int(jwk["y"]), curves[jwk["crv"]]()).public_key()
        return None

    def _key(self, kid: str):
        since = time.monotonic() - self._fetched
        if (kid not in self._keys or since > self.refresh_s) and since > _MIN_REFETCH_S:
            try:
                self._fetch()
            except (OSError, ValueError):
                pass   # keep the keys we have
        key = self._keys.get(kid)
        if key is None:
            raise InvalidToken(f"no key {kid!r} in the JWKS at {self.url}")
        return key

    def validate(self, token: str) -> tuple[str, float]:
        header, claims, parts = decode_jws(token)
        self._verify(header, parts)
        principal = check_claims(claims, self.sub_claim, self.scope_claim, [], self.skew_s, self._clock())
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else list(aud) if isinstance(aud, list) else []
        if self.audience and not set(auds) & set(self.audience):
            raise InvalidToken(f"the token's audience {auds} is none of {self.audience}")
        if self.issuer and claims.get("iss") != self.issuer:
            raise InvalidToken(f"the token's issuer {claims.get('iss')!r} is not {self.issuer!r}")
        return principal, claims["exp"]

    def _verify(self, header: dict, parts: list[str]) -> None:
        hashes, ec, padding, rsa, utils = self._crypto
        alg = str(header.get("alg", ""))
        if alg[:2] not in ("RS", "ES") or alg[2:] not in _HASHES:
            raise InvalidToken(f"unsupported JWS algorithm {alg!r}")
        key = self._key(str(header.get("kid", "")))
        digest = getattr(hashes, _HASHES[alg[2:]])()
        signed = f"{parts[0]}.{parts[1]}".encode()
        try:
            signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
            if alg.startswith("RS") and isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, signed, padding.PKCS1v15(), digest)
            elif alg.startswith("ES") and isinstance(key, ec.EllipticCurvePublicKey):
                half = len(signature) // 2
                der = utils.encode_dss_signature(int.from_bytes(signature[:half], "big"),
                                                 int.from_bytes(signature[half:], "big"))
                key.verify(der, signed, ec.ECDSA(digest))
            else:
                raise InvalidToken(f"key {header.get('kid')!r} does not fit algorithm {alg}")
        except (self._invalid, ValueError):   # a wrong signature, or one that is not base64url
            raise InvalidToken("the token's signature does not verify") from None
