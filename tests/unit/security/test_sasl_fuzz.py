"""Hypothesis against the SASL decoders: hostile bytes only ever raise the declared errors.

* Each mechanism's parser on its own: PLAIN's ``authzid NUL authcid NUL password``, SCRAM's
  client-first (GS2 header + attributes) and client-final (an honest one mutated, or any text
  after an honest client-first), OAUTHBEARER's GS2 header and key/value pairs (structured, so
  the parser gets past its first checks, and raw bytes): a reply (bytes) or
  AuthenticationFailed / IllegalSaslState, nothing else.  Only the honest message authenticates.
* SaslHandshake and SaslAuthenticate frames through the real Dispatcher and handlers on a SASL
  connection (a sequence of them per example: handshakes with any mechanism name and version,
  tokens honest, mutated or random, whole frames mutated, bare tokens after SaslHandshake v0):
  each frame gives a response or CloseConnection / ProtocolError; a PLAIN or SCRAM principal
  is only ever one whose honest messages were sent.

KAVKA_FUZZ_EXAMPLES raises the example counts for a long run.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from functools import partial

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from kio.schema.sasl_authenticate.v0.request import SaslAuthenticateRequest as Auth0
from kio.schema.sasl_authenticate.v1.request import SaslAuthenticateRequest as Auth1
from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest as Auth2
from kio.schema.sasl_handshake.v0.request import SaslHandshakeRequest as Handshake0
from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest as Handshake1

from kavka.protocol import messages
from kavka.protocol.errors import ProtocolError
from kavka.security.listeners import ListenerSecurity
from kavka.security.sasl import AuthenticationFailed, IllegalSaslState
from kavka.security.sasl.oauthbearer import OAuthBearerServer, UnsecuredValidator
from kavka.security.sasl.plain import PlainServer
from kavka.security.sasl.scram import ScramClient, ScramServer, new_credential
from kavka.security.sasl.session import SaslSession, SaslState
from kavka.server.connection import CloseConnection
from kavka.server.dispatch import Dispatcher

pytestmark = pytest.mark.timeout(60)

DECLARED = (AuthenticationFailed, IllegalSaslState)
EXAMPLES = int(os.environ.get("KAVKA_FUZZ_EXAMPLES", 200))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Fixed nonces make the honest SCRAM exchange one precomputed pair of messages.
CLIENT_NONCE, SERVER_NONCE = "c" * 24, "s" * 24
CREDENTIALS = {"carol": new_credential("SCRAM-SHA-256", "carol-secret", 4096, b"salt" * 4)}
PLAIN_USERS = {"alice": "alice-secret"}
NOW = 1_800_000_000


def _scram_server() -> ScramServer:
    return ScramServer("SCRAM-SHA-256", CREDENTIALS.get, nonce=SERVER_NONCE)


_client = ScramClient("SCRAM-SHA-256", "carol", "carol-secret", nonce=CLIENT_NONCE)
SCRAM_FIRST = _client.first()
SCRAM_FINAL = _client.final(_scram_server().evaluate(SCRAM_FIRST))
PLAIN_TOKEN = b"\0alice\0alice-secret"


def _jws(claims: dict) -> str:
    def part(obj) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'none'})}.{part(claims)}."


OAUTH_TOKEN = f"n,,\x01auth=Bearer {_jws({'sub': 'dave', 'exp': NOW + 60, 'iat': NOW})}\x01\x01".encode()
HONEST = {"PLAIN": PLAIN_TOKEN, "SCRAM-SHA-256": SCRAM_FIRST, "OAUTHBEARER": OAUTH_TOKEN}


def _oauth_server() -> OAuthBearerServer:
    return OAuthBearerServer(UnsecuredValidator({}, clock=lambda: NOW))


@st.composite
def mutated(draw, honest: bytes) -> bytes:
    """``honest`` with bytes flipped, cut, inserted or deleted."""
    data = bytearray(honest)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(("flip", "cut", "insert", "delete")))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            del data[at]
    return bytes(data)


def _tokens(honest: bytes):
    return st.binary(max_size=200) | mutated(honest) | st.just(honest)


def _evaluate(server, token: bytes):
    try:
        return server.evaluate(token)
    except DECLARED:
        return None


@FUZZ
@given(_tokens(PLAIN_TOKEN))
def test_plain_messages(token):
    server = PlainServer(PLAIN_USERS)
    reply = _evaluate(server, token)
    assert server.complete == (token == PLAIN_TOKEN)
    assert reply is None or reply == b""


@FUZZ
@given(_tokens(SCRAM_FIRST), st.booleans())
def test_scram_client_first_messages(token, also_text):
    if also_text:   # any text, as UTF-8: past the decoder to the GS2 and attribute parser
        token = token.decode("latin-1").encode()
    server = _scram_server()
    reply = _evaluate(server, token)
    assert reply is None or isinstance(reply, bytes)
    assert not server.complete


@FUZZ
@given(_tokens(SCRAM_FINAL) | st.text(max_size=120).map(str.encode))
def test_scram_client_final_messages(token):
    session = SaslSession({"SCRAM-SHA-256": _scram_server})
    assert session.handshake("SCRAM-SHA-256", 1)
    assert session.authenticate(SCRAM_FIRST, 0)
    try:
        reply = session.authenticate(token, 0)
    except DECLARED:
        reply = None
    if token == SCRAM_FINAL:
        assert str(session.principal) == "User:carol" and reply.startswith(b"v=")
    else:
        assert session.principal is None and reply is None and session.state == SaslState.FAILED
        with pytest.raises(IllegalSaslState):     # a refused exchange takes no second try
            session.authenticate(SCRAM_FINAL, 0)


_kv = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20)
gs2_messages = st.builds(
    lambda flag, authzid, pairs, token, end: f"{flag}{authzid},\x01{pairs}auth=Bearer {token}\x01{end}".encode(),
    st.sampled_from(("n,", "y,", "p=x,", "", "n")),
    st.sampled_from(("", "a=dave", "a=", "a=other")) | _kv,
    st.lists(st.builds("{}={}\x01".format, st.from_regex(r"[A-Za-z]{1,8}", fullmatch=True), _kv),
             max_size=3).map("".join),
    st.builds(_jws, st.fixed_dictionaries({}, optional={
        "sub": st.sampled_from(("dave", "", " ")) | st.integers(), "exp": st.integers(NOW - 5, NOW + 5) | _kv,
        "iat": st.integers(NOW - 5, NOW + 5) | st.none(), "scope": _kv})) | _kv,
    st.sampled_from(("\x01", "", "\x01\x01")))


@FUZZ
@given(gs2_messages | _tokens(OAUTH_TOKEN), st.binary(max_size=3))
def test_oauthbearer_client_messages(token, second):
    server = _oauth_server()
    reply = _evaluate(server, token)
    event("authenticated" if server.complete else "challenged" if reply else "refused")
    if server.complete:
        assert server.username and reply == b""
    elif reply is not None:   # the error challenge: the client's next message ends the exchange
        assert json.loads(reply) == {"status": "invalid_token"}
        assert _evaluate(server, second) is None and not server.complete


# -- SaslHandshake / SaslAuthenticate frames through the dispatcher --------------------------

MECHANISMS = {"PLAIN": partial(PlainServer, PLAIN_USERS),
              "SCRAM-SHA-256": _scram_server,
              "OAUTHBEARER": _oauth_server}


class _Conn:
    peer = "127.0.0.1:50000"

    def __init__(self) -> None:
        self.security = ListenerSecurity("SASL_PLAINTEXT", "SASL_PLAINTEXT", mechanisms=MECHANISMS,
                                         failed_auth_delay_ms=0).connection()


def _frame(obj, correlation_id: int) -> bytes:
    return messages.encode_request_frame(obj, correlation_id, "fuzz")[4:]   # without the size prefix


step = st.one_of(
    st.tuples(st.just("handshake"), st.sampled_from((0, 1)),
              st.sampled_from((*MECHANISMS, "GSSAPI", "")) | st.text(max_size=12)),
    st.tuples(st.just("authenticate"), st.sampled_from((0, 1, 2)),
              st.sampled_from(tuple(HONEST.values())).flatmap(_tokens)),
    st.tuples(st.just("frame"), st.sampled_from((0, 1, 2)),
              st.sampled_from(tuple(HONEST.values())).flatmap(_tokens)))
AUTH = {0: Auth0, 1: Auth1, 2: Auth2}


def _frame_of(kind: str, version: int, arg, correlation_id: int, draw_mutation) -> bytes:
    if kind == "handshake":
        return _frame((Handshake0 if version == 0 else Handshake1)(mechanism=arg), correlation_id)
    whole = _frame(AUTH[version](auth_bytes=arg), correlation_id)
    return draw_mutation(whole) if kind == "frame" else whole


def _dispatch(dispatcher: Dispatcher, frame: bytes, conn: _Conn) -> bool:
    """One frame; False once the connection would be closed."""
    try:
        result = dispatcher.handle(frame, conn)
    except (CloseConnection, ProtocolError):
        return False
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    assert result is not None
    return conn.security.close_reason is None


def _exchange(mechanism: str):
    """A handshake for ``mechanism`` and its tokens, each honest, mutated or random."""
    honest = (SCRAM_FIRST, SCRAM_FINAL) if mechanism.startswith("SCRAM") else (HONEST[mechanism],)
    return st.tuples(st.just(("handshake", 1, mechanism)), st.sampled_from((0, 1)),
                     *[st.tuples(st.sampled_from(("authenticate", "authenticate", "frame")), st.sampled_from((0, 1, 2)), st.just(t) | _tokens(t))
                       for t in honest]).map(lambda t: [(t[0][0], t[1], t[0][2]), *t[2:]])


exchanges = st.sampled_from(tuple(MECHANISMS)).flatmap(_exchange)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(st.lists(step, max_size=1), exchanges | st.just([]), st.lists(step, max_size=4)).map(
    lambda t: [*t[0], *t[1], *t[2]]).filter(bool), st.data())
def test_sasl_frames_through_the_dispatcher(steps, data):
    dispatcher, conn = Dispatcher(broker=None), _Conn()
    sent: set[bytes] = set()
    for i, (kind, version, arg) in enumerate(steps):
        sasl = conn.security.sasl
        if sasl.raw_tokens and kind != "handshake":
            frame = arg        # after SaslHandshake v0 a token is a bare frame
        else:
            frame = _frame_of(kind, version, arg, i + 1, lambda whole: data.draw(mutated(whole)))
        if kind != "handshake":
            sent.add(arg)
        if not _dispatch(dispatcher, frame, conn):
            break
    principal = str(conn.security.principal)
    event(f"principal {principal}")           # --hypothesis-show-statistics: how often each came out
    if principal == "User:alice":
        assert PLAIN_TOKEN in sent
    elif principal == "User:carol":
        assert SCRAM_FINAL in sent
    elif principal != "User:ANONYMOUS":       # an unsecured JWT: anyone may mint one, never by PLAIN or SCRAM
        assert ("handshake", 1, "OAUTHBEARER") in steps or ("handshake", 0, "OAUTHBEARER") in steps, principal
