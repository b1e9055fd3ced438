"""SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677): the salted credentials and both
sides of the exchange (the broker's ``ScramServer``, the CLI's ``ScramClient``).

client-first ``n,,n=user,r=cnonce`` -> server-first ``r=cnonce+snonce,s=salt,i=iterations``
-> client-final ``c=biws,r=nonce,p=proof`` -> server-final ``v=signature``.  The broker keeps
only StoredKey and ServerKey (``ScramCredential``): a stolen store does not give the password,
and the proof is checked as H(proof XOR HMAC(StoredKey, AuthMessage)) == StoredKey.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from kavka.security.sasl import AuthenticationFailed, IllegalSaslState

MECHANISMS = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
MIN_ITERATIONS = 4096      # Kafka's ScramMechanism minIterations
MAX_ITERATIONS = 16384     # Kafka's limit on AlterUserScramCredentials


@dataclass(frozen=True)
class ScramCredential:
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int


def _hmac(digest: str, key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, digest).digest()


def salted_password(mechanism: str, password: str, salt: bytes, iterations: int) -> bytes:
    return hashlib.pbkdf2_hmac(MECHANISMS[mechanism], password.encode(), salt, iterations)


def credential_from_salted(mechanism: str, salted: bytes, salt: bytes, iterations: int) -> ScramCredential:
    digest = MECHANISMS[mechanism]
    client_key = _hmac(digest, salted, b"Client Key")
    return ScramCredential(salt, hashlib.new(digest, client_key).digest(),
                           _hmac(digest, salted, b"Server Key"), iterations)


def new_credential(mechanism: str, password: str, iterations: int = MIN_ITERATIONS,
                   salt: bytes | None = None) -> ScramCredential:
    salt = salt if salt is not None else secrets.token_bytes(32)
    return credential_from_salted(mechanism, salted_password(mechanism, password, salt, iterations),
                                  salt, iterations)


def _attributes(message: str) -> dict[str, str]:
    out = {}
    for item in message.split(","):
        key, sep, value = item.partition("=")
        if not sep or len(key) != 1:
            raise AuthenticationFailed(f"Invalid SCRAM message attribute {item[:20]!r}")
        out.setdefault(key, value)
    return out


def _saslname(name: str) -> str:
    if "=" in name.replace("=2C", "").replace("=3D", ""):
        raise AuthenticationFailed("Invalid SCRAM username encoding")
    return name.replace("=2C", ",").replace("=3D", "=")


class ScramServer:
    """One exchange; ``lookup(username)`` gives the user's ScramCredential or None."""

    def __init__(self, mechanism: str, lookup, nonce: str | None = None) -> None:
        self.name = mechanism
        self._digest = MECHANISMS[mechanism]
        self._lookup = lookup
        # Alphanumeric, as Kafka's: some clients mis-parse a nonce holding '=' or '/'.
        self._server_nonce = nonce or secrets.token_hex(24)
        self._state = "first"
        self.complete = False
        self.username: str | None = None

    def evaluate(self, token: bytes) -> bytes:
        try:
            text = token.decode("utf-8")
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid SCRAM message: not UTF-8") from None
        if self._state == "first":
            return self._first(text)
        if self._state == "final":
            return self._final(text)
        raise IllegalSaslState(f"{self.name} exchange already finished")

    def _first(self, text: str) -> bytes:
        gs2, sep, bare = _split_gs2(text)
        if not sep:
            raise AuthenticationFailed("Invalid SCRAM client-first message")
        attrs = _attributes(bare)
        if "n" not in attrs or "r" not in attrs or not attrs["r"]:
            raise AuthenticationFailed("Invalid SCRAM client-first message: no username or nonce")
        username = _saslname(attrs["n"])
        authzid = gs2.split(",")[1]
        if authzid and _saslname(authzid[2:]) != username:
            raise AuthenticationFailed("Authentication failed: Client requested an authorization id "
                                       "that is different from username")
        credential = self._lookup(username)
        if credential is None:
            raise AuthenticationFailed("Authentication failed: Invalid user credentials")
        self._credential, self.username = credential, username
        self._gs2, self._client_first_bare = gs2, bare
        self._nonce = attrs["r"] + self._server_nonce
        self._server_first = (f"r={self._nonce},s={base64.b64encode(credential.salt).decode()},"
                              f"i={credential.iterations}")
        self._state = "final"
        return self._server_first.encode()

    def _final(self, text: str) -> bytes:
        without_proof, sep, proof_b64 = text.rpartition(",p=")
        if not sep:
            raise AuthenticationFailed("Invalid SCRAM client-final message: no proof")
        attrs = _attributes(without_proof)
        if attrs.get("r") != self._nonce:
            raise AuthenticationFailed("Invalid SCRAM client-final message: nonce does not match")
        if attrs.get("c") != base64.b64encode(self._gs2.encode()).decode():
            raise AuthenticationFailed("Invalid SCRAM client-final message: channel binding does not match")
        try:
            proof = base64.b64decode(proof_b64, validate=True)
        except ValueError:
            raise AuthenticationFailed("Invalid SCRAM client-final message: proof is not base64") from None
        if base64.b64encode(proof).decode() != proof_b64:   # unused bits set: no client's encoder writes that
            raise AuthenticationFailed("Invalid SCRAM client-final message: proof is not canonical base64")
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        cred = self._credential
        signature = _hmac(self._digest, cred.stored_key, auth_message)
        if len(proof) != len(signature):
            raise AuthenticationFailed("Authentication failed: Invalid client proof")
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        if not hmac.compare_digest(hashlib.new(self._digest, client_key).digest(), cred.stored_key):
            raise AuthenticationFailed("Authentication failed: Invalid user credentials")
        self._state, self.complete = "done", True
        server_signature = _hmac(self._digest, cred.server_key, auth_message)
        return b"v=" + base64.b64encode(server_signature)


def _saslname_encode(name: str) -> str:
    return name.replace("=", "=3D").replace(",", "=2C")


class ScramClient:
    """The client side: ``first()``, then ``final(server_first)``, then
    ``verify(server_final)``; AuthenticationFailed when the server's nonce or signature is wrong."""

    def __init__(self, mechanism: str, username: str, password: str, nonce: str | None = None) -> None:
        self.name = mechanism
        self._digest = MECHANISMS[mechanism]
        self._password = password
        self._nonce = nonce or secrets.token_hex(24)
        self._client_first_bare = f"n={_saslname_encode(username)},r={self._nonce}"

    def first(self) -> bytes:
        return f"n,,{self._client_first_bare}".encode()

    def final(self, server_first: bytes) -> bytes:
        text = server_first.decode("utf-8", "replace")
        attrs = _attributes(text)
        nonce = attrs.get("r", "")
        if "e" in attrs:
            raise AuthenticationFailed(f"the server refused: {attrs['e']}")
        if not nonce.startswith(self._nonce) or len(nonce) == len(self._nonce):
            raise AuthenticationFailed("the server's nonce does not extend the client's")
        try:
            salt, iterations = base64.b64decode(attrs["s"], validate=True), int(attrs["i"])
        except (KeyError, ValueError):
            raise AuthenticationFailed("Invalid SCRAM server-first message") from None
        salted = salted_password(self.name, self._password, salt, iterations)
        without_proof = f"c=biws,r={nonce}"
        auth_message = f"{self._client_first_bare},{text},{without_proof}".encode()
        client_key = _hmac(self._digest, salted, b"Client Key")
        signature = _hmac(self._digest, hashlib.new(self._digest, client_key).digest(), auth_message)
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self._server_signature = _hmac(self._digest, _hmac(self._digest, salted, b"Server Key"), auth_message)
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> None:
        attrs = _attributes(server_final.decode("utf-8", "replace"))
        if "e" in attrs:
            raise AuthenticationFailed(f"the server refused: {attrs['e']}")
        expected = base64.b64encode(self._server_signature).decode()
        if not hmac.compare_digest(attrs.get("v", ""), expected):
            raise AuthenticationFailed("the server's signature is wrong (it does not know the password)")


def _split_gs2(text: str) -> tuple[str, bool, str]:
    """(gs2 header incl. its trailing comma, found, client-first-bare)."""
    first = text.find(",")
    second = text.find(",", first + 1) if first >= 0 else -1
    if first != 1 or second < 0 or text[0] not in "ny":
        return "", False, ""
    return text[:second + 1], True, text[second + 1:]
