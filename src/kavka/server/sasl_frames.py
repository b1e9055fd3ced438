"""SASL tokens as bare frames: after SaslHandshake v0 the client sends each token as a
size-prefixed frame without a Kafka header and gets the server's reply the same way (Kafka
before KIP-152).  A failure closes the connection with no reply, as Kafka does there."""

from __future__ import annotations

import struct

from kavka.security.sasl.exchange import authenticate
from kavka.server.connection import CloseConnection

_SIZE = struct.Struct(">i")


def raw_sasl_token(frame: bytes, conn) -> list[bytes]:
    outcome = authenticate(conn.security, bytes(frame), conn.peer)
    if conn.security.close_reason is not None:
        raise CloseConnection(conn.security.close_reason)
    return [_SIZE.pack(len(outcome.reply)) + outcome.reply]
