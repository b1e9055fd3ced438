"""An exception escaping a handler closes that connection with one log line (issue 9, item 8)."""

from __future__ import annotations

import asyncio
import logging
import struct
from dataclasses import replace
from types import SimpleNamespace

import pytest

from kavka.api.registry import REGISTRY
from kavka.server.connection import CloseConnection
from kavka.server.dispatch import Dispatcher

METADATA = 3


def metadata_v4_frame() -> bytes:
    header = struct.pack(">hhi", METADATA, 4, 11) + struct.pack(">h", 1) + b"x"
    return header + struct.pack(">i", 0) + b"\x00"


def _broken_sync(request):
    raise TypeError("'NoneType' object is not iterable")


async def _broken_async(request):
    await asyncio.sleep(0)
    raise KeyError("gone")


@pytest.mark.parametrize("handler, kind", [(_broken_sync, "TypeError"), (_broken_async, "KeyError")])
def test_handler_exception_becomes_close_with_one_line(monkeypatch, caplog, handler, kind):
    caplog.set_level(logging.DEBUG, logger="kavka.server")
    monkeypatch.setitem(REGISTRY, METADATA, replace(REGISTRY[METADATA], handler=handler))
    dispatcher = Dispatcher(broker=SimpleNamespace())
    conn = SimpleNamespace(peer="1.2.3.4:5")
    with pytest.raises(CloseConnection, match=f"internal error handling Metadata v4 .*correlation id 11.*{kind}"):
        result = dispatcher.handle(metadata_v4_frame(), conn)
        asyncio.run(result)
    shown = [r for r in caplog.records if r.levelno > logging.DEBUG]
    assert not shown, "the caller logs the close reason; nothing else above debug"
    assert [r for r in caplog.records if r.exc_info], "the traceback is kept at debug level"


def test_close_connection_from_a_handler_passes_unchanged(monkeypatch):
    def closing(request):
        raise CloseConnection("on purpose")

    monkeypatch.setitem(REGISTRY, METADATA, replace(REGISTRY[METADATA], handler=closing))
    with pytest.raises(CloseConnection, match="^on purpose$"):
        Dispatcher(broker=SimpleNamespace()).handle(metadata_v4_frame(), SimpleNamespace(peer="p"))


HEARTBEAT = 12


def heartbeat_v4_frame() -> bytes:
    header = struct.pack(">hhi", HEARTBEAT, 4, 21) + struct.pack(">h", 1) + b"x" + b"\x00"
    body = b"\x02g" + struct.pack(">i", 1) + b"\x02m" + b"\x00" + b"\x00"  # group, generation, member, null instance
    return header + body


@pytest.mark.parametrize("handler", [_broken_sync, _broken_async])
def test_response_with_a_top_level_error_code_answers_unknown_server_error(monkeypatch, caplog, handler):
    from kavka.protocol import messages
    from kavka.protocol.framing import parse_response_header

    caplog.set_level(logging.DEBUG, logger="kavka.server")
    monkeypatch.setitem(REGISTRY, HEARTBEAT, replace(REGISTRY[HEARTBEAT], handler=handler))
    result = Dispatcher(broker=SimpleNamespace()).handle(heartbeat_v4_frame(), SimpleNamespace(peer="p"))
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    frame = b"".join(result)[4:]
    correlation_id, header_size = parse_response_header(frame, flexible=True)
    response = messages.decode_response(HEARTBEAT, 4, frame, header_size)
    assert (correlation_id, response.error_code.value) == (21, -1)
    shown = [r for r in caplog.records if r.levelno > logging.DEBUG]
    assert len(shown) == 1 and "answered UNKNOWN_SERVER_ERROR" in shown[0].getMessage()
    assert not shown[0].exc_info
