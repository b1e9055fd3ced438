"""Build kio response objects for whichever version a client asked for.

kio generates one module per API version, and a field that exists in v9 may be
absent from v3.  Handlers are written once, against the newest fields, and
:class:`Builder` drops the fields the requested version does not have, so a
handler never branches on versions just to construct its answer (kavka.protocol.builders).
"""

from __future__ import annotations

import typing
from dataclasses import fields
from functools import lru_cache
from types import ModuleType

from kio.index import load_entity_module
from kio.schema.index import api_key_map
from kio.static.constants import EntityType

from kavka.protocol.builders import NO_THROTTLE, make
from kavka.protocol.builders import field_names as _field_names

__all__ = ["NO_THROTTLE", "Builder", "builder_for", "make"]


@lru_cache(maxsize=None)
def _module(api_key: int, version: int) -> ModuleType:
    return load_entity_module(api_key_map[api_key], version, EntityType.response)


class Builder:
    """``Builder(api_key, version).SomeClass(**fields)`` for that version's classes."""

    __slots__ = ("_module",)

    def __init__(self, api_key: int, version: int) -> None:
        self._module = _module(api_key, version)

    def __getattr__(self, name: str):
        cls = getattr(self._module, name)
        return lambda **values: make(cls, **values)

    def has_field(self, class_name: str, field_name: str) -> bool:
        return field_name in _field_names(getattr(self._module, class_name))

    def field_nullable(self, class_name: str, field_name: str) -> bool:
        kind = next(f.type for f in fields(getattr(self._module, class_name)) if f.name == field_name)
        return type(None) in typing.get_args(kind) if not isinstance(kind, str) else kind.endswith("| None")


def builder_for(request) -> Builder:
    return Builder(request.api_key, request.version)
