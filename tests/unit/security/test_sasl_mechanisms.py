"""The SASL mechanisms and the connection's SASL state machine, without a socket."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from functools import partial

import pytest

from kavka.config import ConfigError
from kavka.security.sasl import AuthenticationFailed, IllegalSaslState
from kavka.security.sasl.jaas import parse_jaas
from kavka.security.sasl.oauthbearer import OAuthBearerServer, UnsecuredValidator
from kavka.security.sasl.plain import PlainServer, plain_users
from kavka.security.sasl.scram import ScramServer, new_credential
from kavka.security.sasl.session import SaslSession, SaslState

# RFC 7677 section 3: user "user", password "pencil".
CLIENT_FIRST = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
SERVER_FIRST = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
CLIENT_FINAL = ("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
SERVER_FINAL = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
RFC_CREDENTIAL = new_credential("SCRAM-SHA-256", "pencil", 4096, base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ=="))


def _rfc_server():
    return ScramServer("SCRAM-SHA-256", {"user": RFC_CREDENTIAL}.get, nonce=SERVER_NONCE)


def test_scram_sha_256_rfc7677_vector():
    server = _rfc_server()
    assert server.evaluate(CLIENT_FIRST.encode()).decode() == SERVER_FIRST
    assert server.evaluate(CLIENT_FINAL.encode()).decode() == SERVER_FINAL
    assert server.complete and server.username == "user"
    with pytest.raises(IllegalSaslState):
        server.evaluate(b"again")


@pytest.mark.parametrize("final, problem", [
    (CLIENT_FINAL.replace("hNlF$k0", "hNlF$k1"), "nonce does not match"),              # forged nonce
    (CLIENT_FINAL.replace("p=dHzb", "p=eHzb"), "Invalid user credentials"),            # forged proof
    (CLIENT_FINAL.replace("c=biws", "c=eSws"), "channel binding"),
    (CLIENT_FINAL.rpartition(",p=")[0], "no proof"),
    (CLIENT_FINAL[:-10], "proof"),                                                    # truncated
])
def test_scram_forged_or_truncated_final_messages_fail(final, problem):
    server = _rfc_server()
    server.evaluate(CLIENT_FIRST.encode())
    with pytest.raises(AuthenticationFailed, match=problem):
        server.evaluate(final.encode())
    assert not server.complete


def test_scram_unknown_user_and_bad_first_messages():
    with pytest.raises(AuthenticationFailed, match="Invalid user credentials"):
        _rfc_server().evaluate(b"n,,n=nobody,r=abc")
    for bad in (b"n,,r=abc", b"x,,n=user,r=a", b"n,", b"\xff\xfe", b"n,a=other,n=user,r=abc"):
        with pytest.raises(AuthenticationFailed):
            _rfc_server().evaluate(bad)


def _client_exchange(mechanism: str, password: str, server: ScramServer) -> bytes:
    """A client's side of SCRAM, as RFC 5802 computes it."""
    digest = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}[mechanism]
    first_bare = "n=user,r=clientnonce"
    server_first = server.evaluate(("n,," + first_bare).encode()).decode()
    attrs = dict(item.split("=", 1) for item in server_first.split(","))
    salted = hashlib.pbkdf2_hmac(digest, password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", digest).digest()
    without_proof = f"c=biws,r={attrs['r']}"
    auth = f"{first_bare},{server_first},{without_proof}".encode()
    signature = hmac.new(hashlib.new(digest, client_key).digest(), auth, digest).digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()
    return server.evaluate(f"{without_proof},p={proof}".encode())


def test_scram_sha_512_with_a_generated_credential():
    cred = new_credential("SCRAM-SHA-512", "s3cret", 4096)
    assert _client_exchange("SCRAM-SHA-512", "s3cret", ScramServer("SCRAM-SHA-512", {"user": cred}.get)).startswith(b"v=")
    with pytest.raises(AuthenticationFailed):
        _client_exchange("SCRAM-SHA-512", "wrong", ScramServer("SCRAM-SHA-512", {"user": cred}.get))


JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
        'password="admin-secret" user_admin="admin-secret" user_alice="al\\"ice" user_bob=bobpw;')


def test_plain_users_from_jaas_and_the_exchange():
    users = plain_users(parse_jaas(JAAS))
    assert users == {"admin": "admin-secret", "alice": 'al"ice', "bob": "bobpw"}
    server = PlainServer(users)
    assert server.evaluate(b"\0bob\0bobpw") == b"" and server.username == "bob"
    for token, problem in ((b"\0bob\0nope", "Invalid username or password"), (b"bob\0bobpw", "3 tokens"),
                           (b"\0\0bobpw", "username not specified"), (b"\0bob\0", "password not specified"),
                           (b"alice\0bob\0bobpw", "authorization id"), (b"\0carol\0x", "Invalid username")):
        with pytest.raises(AuthenticationFailed, match=problem):
            PlainServer(users).evaluate(token)
    with pytest.raises(ConfigError, match="must end with ';'"):
        parse_jaas('x.PlainLoginModule required user_a="b"')
    with pytest.raises(ConfigError):
        parse_jaas("just words")


def _jws(claims: dict, alg: str = "none") -> str:
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{part({'alg': alg})}.{part(claims)}."


def _bearer(token: str, authzid: str = "") -> bytes:
    return f"n,{'a=' + authzid if authzid else ''},\x01auth=Bearer {token}\x01\x01".encode()


def test_unsecured_jwt_validation():
    now = time.time()
    validator = UnsecuredValidator({"unsecuredValidatorRequiredScope": "read"}, clock=lambda: now)
    good = _jws({"sub": "alice", "exp": now + 60, "iat": now, "scope": "read write"})
    server = OAuthBearerServer(validator)
    assert server.evaluate(_bearer(good, "alice")) == b""
    assert server.username == "alice" and server.expires_ms == int((now + 60) * 1000)
    for claims in ({"sub": "alice", "exp": now - 1, "scope": "read"},          # expired
                   {"sub": "alice", "scope": "read"},                            # no exp
                   {"exp": now + 60, "scope": "read"},                           # no principal
                   {"sub": "alice", "exp": now + 60, "scope": "write"},          # lacks scope
                   {"sub": "alice", "exp": now + 60, "iat": now + 600, "scope": "read"}):  # from the future
        server = OAuthBearerServer(validator)
        assert json.loads(server.evaluate(_bearer(_jws(claims)))) == {"status": "invalid_token"}
        with pytest.raises(AuthenticationFailed):
            server.evaluate(b"\x01")
    signed = _jws({"sub": "alice", "exp": now + 60, "scope": "read"}, alg="RS256")
    assert b"invalid_token" in OAuthBearerServer(validator).evaluate(_bearer(signed))
    with pytest.raises(AuthenticationFailed, match="client first message"):
        OAuthBearerServer(validator).evaluate(b"n,,auth=Bearer x")


def _session(reauth_ms: int = 0) -> SaslSession:
    return SaslSession({"PLAIN": partial(PlainServer, {"bob": "pw"})}, reauth_ms)


def test_state_machine_gates_requests_until_authenticated():
    s = _session()
    assert s.refusal(18, 0) is None and s.refusal(17, 0) is None
    assert "during SASL handshake" in s.refusal(0, 0)          # Produce before anything
    with pytest.raises(IllegalSaslState):
        s.authenticate(b"\0bob\0pw", 0)                          # SaslAuthenticate before the handshake
    assert not s.handshake("GSSAPI", 1) and s.state == SaslState.HANDSHAKE
    assert s.handshake("PLAIN", 1) and not s.raw_tokens
    assert "during SASL authenticate" in s.refusal(3, 0)
    with pytest.raises(IllegalSaslState):
        s.handshake("PLAIN", 1)
    s.authenticate(b"\0bob\0pw", 1000)
    assert s.refusal(0, 1000) is None and str(s.principal) == "User:bob"
    assert s.session_lifetime_ms(1000) == 0


def test_reauthentication_keeps_the_principal_and_the_session_expires():
    s = SaslSession({"PLAIN": partial(PlainServer, {"bob": "pw", "eve": "pw"})}, reauth_ms=5000)
    s.handshake("PLAIN", 0)
    assert s.raw_tokens
    s.authenticate(b"\0bob\0pw", 1000)
    assert s.session_lifetime_ms(2000) == 4000
    assert s.refusal(0, 5999) is None and "expired" in s.refusal(0, 6000)
    s.handshake("PLAIN", 1)                                      # re-authentication
    assert s.refusal(0, 5000) is None                            # in flight: the old session serves
    s.authenticate(b"\0bob\0pw", 7000)
    assert s.refusal(0, 8000) is None and s.session_lifetime_ms(7000) == 5000
    s.handshake("PLAIN", 1)
    with pytest.raises(AuthenticationFailed, match="Cannot change principals"):
        s.authenticate(b"\0eve\0pw", 9000)


def test_unsecured_login_token_from_the_login_module_options():
    from kavka.security.sasl.oauthbearer import client_first_message, decode_jws, unsecured_login_token
    token = unsecured_login_token({"unsecuredLoginStringClaim_sub": "alice", "unsecuredLoginNumberClaim_n": "7",
                                   "unsecuredLoginListClaim_scope": "|read|write", "unsecuredLoginLifetimeSeconds": "60",
                                   "unsecuredLoginExtension_traceId": "x1"}, now=1000.5)
    header, claims, parts = decode_jws(token)
    assert header == {"alg": "none"} and parts[2] == ""
    assert claims == {"sub": "alice", "n": 7, "scope": ["read", "write"], "iat": 1000, "exp": 1060}
    server = OAuthBearerServer(UnsecuredValidator({"unsecuredValidatorRequiredScope": "read"}, clock=lambda: 1001))
    assert server.evaluate(client_first_message(token, {"traceId": "x1"})) == b"" and server.username == "alice"
    for options, problem in (({"unsecuredLoginStringClaim_name": "alice"}, "principal claim"),
                             ({"unsecuredLoginStringClaim_sub": "a", "unsecuredLoginNumberClaim_exp": "5"}, "exp"),
                             ({"unsecuredLoginStringClaim_sub": "a", "unsecuredLoginNumberClaim_n": "x"}, "number")):
        with pytest.raises(ValueError, match=problem):
            unsecured_login_token(options, now=0)
