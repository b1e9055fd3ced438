"""A broker context on a temporary data dir whose handlers are called as a given principal.

Until connections authenticate, the dispatcher gives every request User:ANONYMOUS, so
``call`` builds the Request the dispatcher would, with the principal a test needs, calls the
registered handler and checks the answer encodes in the requested version; ``wire`` sends
the request's bytes through the Dispatcher itself, as User:ANONYMOUS.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from pathlib import Path

from kio import index as kio_index
from kio.schema.index import api_key_map
from kio.static.constants import EntityType

import kavka.api  # noqa: F401  (registers every handler)
from kavka.api.context import BrokerContext, RandomProducerIds
from kavka.api.registry import REGISTRY, RawResponse, Request
from kavka.api.responses import make
from kavka.clock import ManualClock
from kavka.config import BrokerConfig
from kavka.group.coordinator import GroupCoordinator
from kavka.group.env import GroupConfig
from kavka.group.offsets_topic import OffsetsTopic
from kavka.group.runner import GroupRunner
from kavka.internal_topics import OFFSETS_TOPIC
from kavka.log.log_manager import LogManager
from kavka.protocol import messages
from kavka.protocol.framing import parse_response_header
from kavka.security.acl import AclBinding, AclOperation, AclPermission, PatternType, ResourceType
from kavka.security.principal import ANONYMOUS, KafkaPrincipal
from kavka.server.dispatch import Dispatcher
from kavka.testing import TINY_SEGMENTS
from kavka.txn.coordinator import TransactionCoordinator, TxnConfig
from kavka.txn.local_markers import local_marker_writer
from kavka.txn.runner import TxnRunner
from kavka.txn.state_topic import TransactionStateTopic

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
ADMIN = KafkaPrincipal("User", "admin")
ALICE = KafkaPrincipal("User", "alice")


class Q:
    """``Q(key, version).SomeRequestClass(**fields)``, dropping fields the version lacks."""

    def __init__(self, api_key: int, version: int) -> None:
        self._module = kio_index.load_entity_module(api_key_map[api_key], version, EntityType.request)

    def __getattr__(self, name: str):
        cls = getattr(self._module, name)
        return lambda **values: make(cls, **values)


class Broker:
    def __init__(self, directory: Path, settings: dict) -> None:
        self.directory = directory
        self.config = BrokerConfig.from_strings({**TINY_SEGMENTS, **{k: str(v) for k, v in settings.items()}})
        self.clock = ManualClock()
        self.logs = LogManager(directory, self.config, self.clock)
        self.logs.load()
        settings = GroupConfig(initial_rebalance_delay_ms=0, min_session_timeout_ms=1000, offsets_partitions=1)
        groups = GroupRunner(GroupCoordinator(settings, self.clock, OffsetsTopic(self.logs, 1, 1 << 20, self.clock)))
        self.context = BrokerContext(logs=self.logs, config=self.config, clock=self.clock, node_id=0,
                                     host="127.0.0.1", port=9092, producer_ids=RandomProducerIds(), groups=groups,
                                     transactions=self._transactions())
        self._correlation = itertools.count(1)
        self.dispatcher = Dispatcher(self.context)

    def _transactions(self) -> TxnRunner:
        journal = TransactionStateTopic(self.logs, 1, 1 << 20, self.clock)
        coordinator = TransactionCoordinator(TxnConfig.from_broker(self.config), self.clock, journal,
                                             RandomProducerIds(), lambda group: (OFFSETS_TOPIC, 0))
        runner = TxnRunner(coordinator, local_marker_writer(self.logs, self.clock))
        runner.load_partition(0)
        return runner

    def call(self, body, principal: KafkaPrincipal = ANONYMOUS, peer: str = "127.0.0.1:50000"):
        key, version = int(body.__api_key__), int(body.__version__)
        request = Request(key, version, next(self._correlation), "acl-test", body, self.context, peer, principal)
        result = asyncio.run(asyncio.wait_for(_handle(request), 10))
        if isinstance(result, RawResponse):   # Fetch's hand-encoded answer: read it as a client would
            body = b"".join(p.read() if hasattr(p, "read") else bytes(p) for p in result.parts)
            return messages.decode_response(key, version, body, 0)
        if result is not None:
            messages.encode_response(result)   # the answer must be valid in that version
        return result

    def wire(self, body):
        """``body`` as a connection sends it: encoded, through the Dispatcher (whose requests
        are User:ANONYMOUS until connections authenticate), the answer decoded as a client would."""
        key, version = int(body.__api_key__), int(body.__version__)
        correlation = next(self._correlation)
        frame = messages.encode_request_frame(body, correlation, "acl-wire-test")[4:]
        data = asyncio.run(asyncio.wait_for(_dispatched(self.dispatcher, frame), 10))
        flexible = messages.response_header_flexible(key, version)
        got, header_size = parse_response_header(data[4:], flexible)
        assert got == correlation
        return messages.decode_response(key, version, data[4:], header_size)

    def grant(self, *bindings: AclBinding) -> None:
        result = asyncio.run(self.context.admin.alter_acls(bindings, ()))
        assert result.error == 0, result

    def close(self) -> None:
        self.logs.close()


def acl(resource_type=ResourceType.TOPIC, name="orders", operation=AclOperation.READ,
        principal: KafkaPrincipal | str = ALICE, permission=AclPermission.ALLOW,
        pattern=PatternType.LITERAL, host="*") -> AclBinding:
    return AclBinding(resource_type, name, pattern, str(principal), host, operation, permission)


def tree_digest(directory: Path) -> dict[str, str]:
    """Every file under ``directory`` with a hash of its bytes: what "nothing changed on disk" compares."""
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


class _Conn:
    peer = "127.0.0.1:50000"


async def _dispatched(dispatcher: Dispatcher, frame: bytes) -> bytes:
    parts = dispatcher.handle(frame, _Conn())
    if asyncio.iscoroutine(parts):
        parts = await parts
    return b"".join(p.read() if hasattr(p, "read") else bytes(p) for p in parts)


async def _handle(request: Request):
    """The handler's answer, awaited when it is a coroutine (inside a loop, as on a connection)."""
    result = REGISTRY[request.api_key].handler(request)
    return await result if asyncio.iscoroutine(result) else result
