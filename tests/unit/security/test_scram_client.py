"""The client side of SCRAM (``ScramClient``, what ``--command-config`` uses): RFC 7677's test
vector byte for byte, exchanges with kavka's own server, and servers it must not believe."""

from __future__ import annotations

import base64

import pytest
from test_sasl_mechanisms import CLIENT_FINAL, CLIENT_FIRST, SERVER_FINAL, SERVER_FIRST

from kavka.security.sasl import AuthenticationFailed
from kavka.security.sasl.scram import ScramClient, ScramServer, new_credential


def test_rfc7677_vector():
    client = ScramClient("SCRAM-SHA-256", "user", "pencil", nonce="rOprNGfwEbeRWgbNEkqO")
    assert client.first().decode() == CLIENT_FIRST
    assert client.final(SERVER_FIRST.encode()).decode() == CLIENT_FINAL
    client.verify(SERVER_FINAL.encode())


@pytest.mark.parametrize("mechanism", ["SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_against_kavkas_server_with_an_escaped_username(mechanism):
    user = "a=b,c"
    server = ScramServer(mechanism, {user: new_credential(mechanism, "pw", 4096)}.get)
    client = ScramClient(mechanism, user, "pw")
    client.verify(server.evaluate(client.final(server.evaluate(client.first()))))
    assert server.complete and server.username == user


def test_a_server_without_the_password_or_with_a_foreign_nonce_is_refused():
    client = ScramClient("SCRAM-SHA-256", "user", "pencil", nonce="rOprNGfwEbeRWgbNEkqO")
    client.final(SERVER_FIRST.encode())
    forged = "v=" + base64.b64encode(b"\0" * 32).decode()
    with pytest.raises(AuthenticationFailed, match="signature"):
        client.verify(forged.encode())
    with pytest.raises(AuthenticationFailed, match="refused: invalid-proof"):
        client.verify(b"e=invalid-proof")
    for server_first in (SERVER_FIRST.replace("r=rOpr", "r=xOpr"), "r=rOprNGfwEbeRWgbNEkqO,s=W22Z,i=4096"):
        with pytest.raises(AuthenticationFailed, match="nonce"):
            ScramClient("SCRAM-SHA-256", "user", "pencil", nonce="rOprNGfwEbeRWgbNEkqO").final(server_first.encode())
    with pytest.raises(AuthenticationFailed, match="server-first"):
        ScramClient("SCRAM-SHA-256", "user", "pencil", nonce="n1").final(b"r=n1x,s=!!,i=4096")
