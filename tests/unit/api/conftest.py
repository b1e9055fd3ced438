"""A real broker context on tmp_path, driven through the dispatcher with wire bytes.

``admin(settings)`` builds a LogManager and BrokerContext with those broker
settings; ``harness.call(request)`` encodes a kio request object into a frame,
runs it through :class:`kavka.server.dispatch.Dispatcher` exactly as a
connection would, and decodes the response bytes with kio's reader.
``harness.req(key, version)`` builds request objects of any version, dropping
fields that version lacks (the request-side twin of ``api.responses.Builder``).
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

import pytest
from kio import index as kio_index
from kio.schema.index import api_key_map
from kio.static.constants import EntityType

import kavka.api  # noqa: F401  (registers every handler)
from kavka.api.context import BrokerContext, RandomProducerIds
from kavka.api.responses import make
from kavka.clock import ManualClock
from kavka.config import BrokerConfig
from kavka.testing import TINY_SEGMENTS
from kavka.log.log_manager import LogManager
from kavka.protocol import messages
from kavka.protocol.framing import parse_response_header
from kavka.server.dispatch import Dispatcher


class RequestBuilder:
    """``RequestBuilder(key, version).SomeClass(**fields)`` for that version's request classes."""

    def __init__(self, api_key: int, version: int) -> None:
        self._module = kio_index.load_entity_module(api_key_map[api_key], version, EntityType.request)

    def __getattr__(self, name: str):
        cls = getattr(self._module, name)
        return lambda **values: make(cls, **values)


@dataclass
class _Conn:
    peer: str = "127.0.0.1:50000"


class AdminHarness:
    def __init__(self, context: BrokerContext) -> None:
        self.context = context
        self.logs = context.logs
        self.dispatcher = Dispatcher(context)
        self._correlation = itertools.count(1)

    @staticmethod
    def req(api_key: int, version: int) -> RequestBuilder:
        return RequestBuilder(api_key, version)

    def call(self, request):
        correlation_id = next(self._correlation)
        frame = messages.encode_request_frame(request, correlation_id, "admin-test")[4:]
        parts = self.dispatcher.handle(frame, _Conn())
        if asyncio.iscoroutine(parts):   # a handler that awaits (topic admin, auto-creation)
            parts = asyncio.run(parts)
        data = b"".join(p.read() if hasattr(p, "read") else bytes(p) for p in parts)  # FileSlice: Fetch
        assert int.from_bytes(data[:4], "big") == len(data) - 4
        key, version = int(request.__api_key__), int(request.__version__)
        flexible = messages.response_header_flexible(key, version)
        got_correlation, header_size = parse_response_header(data[4:], flexible)
        assert got_correlation == correlation_id
        return messages.decode_response(key, version, data[4:], header_size)


@pytest.fixture
def admin(tmp_path):
    """A factory: ``admin({"num.partitions": "3"})`` -> AdminHarness on a fresh data dir."""
    opened = []

    def build(settings: dict | None = None) -> AdminHarness:
        config = BrokerConfig.from_strings({**TINY_SEGMENTS, **{k: str(v) for k, v in (settings or {}).items()}})
        directory = tmp_path / f"broker-{len(opened)}"
        directory.mkdir()
        clock = ManualClock()
        logs = LogManager(directory, config, clock)
        logs.load()
        opened.append(logs)
        context = BrokerContext(
            logs=logs, config=config, clock=clock, node_id=config.get("broker.id"), host="127.0.0.1",
            port=9092, producer_ids=RandomProducerIds())
        return AdminHarness(context)

    yield build
    for logs in opened:
        logs.close()
