"""OAUTHBEARER with a JWKS URL (sasl.oauthbearer.jwks.endpoint.url) served by a local HTTP
server: signed tokens are verified by their kid's key, with audience and issuer checks."""

from __future__ import annotations

import base64
import functools
import http.server
import json
import threading
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils
from kio.schema.metadata.v4.request import MetadataRequest
from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest

from kavka.client import Client

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _n(value: int, size: int | None = None) -> str:
    return _b64(value.to_bytes(size or (value.bit_length() + 7) // 8, "big"))


def _jwks() -> dict:
    r, e = RSA_KEY.public_key().public_numbers(), EC_KEY.public_key().public_numbers()
    return {"keys": [{"kty": "RSA", "kid": "rsa1", "n": _n(r.n), "e": _n(r.e)},
                     {"kty": "EC", "kid": "ec1", "crv": "P-256", "x": _n(e.x, 32), "y": _n(e.y, 32)}]}


def _token(claims: dict, kid: str = "rsa1", key=None) -> str:
    alg = "RS256" if kid.startswith("rsa") else "ES256"
    head = _b64(json.dumps({"alg": alg, "kid": kid}).encode()) + "." + _b64(json.dumps(claims).encode())
    key = key or (RSA_KEY if alg == "RS256" else EC_KEY)
    if alg == "RS256":
        signature = key.sign(head.encode(), padding.PKCS1v15(), hashes.SHA256())
    else:
        r, s = utils.decode_dss_signature(key.sign(head.encode(), ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return f"{head}.{_b64(signature)}"


@pytest.fixture
def jwks_url(tmp_path):
    (tmp_path / "jwks.json").write_text(json.dumps(_jwks()))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()
    server.server_close()


def _authenticate(bootstrap: str, token: str):
    with Client(bootstrap) as c:
        assert c.request(SaslHandshakeRequest(mechanism="OAUTHBEARER")).error_code == 0
        first = c.request(SaslAuthenticateRequest(auth_bytes=f"n,,\x01auth=Bearer {token}\x01\x01".encode()))
        if first.error_code or first.auth_bytes:
            return first
        c.request(MetadataRequest(topics=None, allow_auto_topic_creation=False))
        return first


def test_signed_tokens_are_verified_against_the_jwks(kavka_broker_factory, jwks_url):
    broker = kavka_broker_factory({"sasl.enabled.mechanisms": "OAUTHBEARER",
                                   "sasl.oauthbearer.jwks.endpoint.url": jwks_url,
                                   "sasl.oauthbearer.expected.audience": "kavka",
                                   "sasl.oauthbearer.expected.issuer": "https://issuer.test"},
                                  listeners="PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0")
    bootstrap = broker.bootstrap("SASL_PLAINTEXT")
    now = time.time()
    good = {"sub": "alice", "exp": now + 60, "iat": now, "aud": ["kavka"], "iss": "https://issuer.test"}
    for kid in ("rsa1", "ec1"):
        answer = _authenticate(bootstrap, _token(good, kid))
        assert (answer.error_code, answer.auth_bytes) == (0, b""), kid
        assert 0 < answer.session_lifetime.total_seconds() <= 60     # the token's exp ends the session
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for bad in (_token(good, key=other),                               # signed by a key not in the JWKS
                _token({**good, "aud": "someone-else"}), _token({**good, "iss": "https://evil.test"}),
                _token({**good, "exp": now - 120}), _token(good, kid="rsa-unknown")):
        answer = _authenticate(bootstrap, bad)
        assert json.loads(answer.auth_bytes) == {"status": "invalid_token"}
