"""The table of Kafka APIs this broker implements.

Each API module registers its handler with :func:`api`, declaring the version
range it serves.  ApiVersions is computed from this table, so the broker
advertises exactly what is implemented.

A handler takes a :class:`Request` and returns one of:

* a kio response object, encoded by the dispatcher;
* a :class:`RawResponse`, an already-encoded body as parts (``bytes`` and file
  regions) for the hot paths that bypass kio;
* ``None`` for no response at all (Produce with acks=0);
* or an awaitable of one of these (long-polling Fetch).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from kavka.security.principal import ANONYMOUS, KafkaPrincipal

if TYPE_CHECKING:
    from kavka.api.context import BrokerContext


@dataclass(frozen=True, slots=True)
class ApiSpec:
    key: int
    name: str
    min_version: int
    max_version: int
    handler: Callable[["Request"], Any]
    # Versions decoded by a custom reader instead of kio (e.g. Produce v0-2,
    # which kio no longer knows): version -> callable(frame, offset) -> body.
    decoders: dict[int, Callable[[bytes, int], Any]] = field(default_factory=dict)
    # A request whose handler has done its work when it returns a coroutine (Produce: the
    # records are appended, only the replication wait is left): the connection may handle
    # the next requests meanwhile and answers in order (kavka.server.connection).
    pipelined: bool = False


@dataclass(slots=True)
class Request:
    api_key: int
    version: int
    correlation_id: int
    client_id: str | None
    body: Any
    broker: "BrokerContext"
    peer: str = "?"
    principal: KafkaPrincipal = ANONYMOUS   # set from the connection once it authenticates


@dataclass(slots=True)
class RawResponse:
    """An encoded response body as parts; file parts are sent with sendfile."""
    parts: list
    size: int


REGISTRY: dict[int, ApiSpec] = {}


def api(key: int, name: str, versions: tuple[int, int], decoders: dict | None = None, pipelined: bool = False):
    """Register ``handler`` for API ``key`` over the inclusive ``versions`` range."""
    def register(handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
        if key in REGISTRY:
            raise RuntimeError(f"API {key} registered twice")
        REGISTRY[key] = ApiSpec(key, name, versions[0], versions[1], handler, decoders or {}, pipelined)
        return handler
    return register
