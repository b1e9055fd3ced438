"""Build kio response objects for whichever version a client asked for.

kio generates one module per API version, and a field that exists in v9 may be
absent from v3.  Handlers are written once, against the newest fields, and
:class:`Builder` drops the fields the requested version does not have, so a
handler never branches on versions just to construct its answer (kavka.protocol.builders).
"""

from __future__ import annotations

import datetime
import typing
import uuid
from dataclasses import MISSING, fields
from functools import cache, lru_cache
from types import ModuleType

from kio.index import load_entity_module
from kio.schema.index import api_key_map
from kio.serial._introspect import classify_field, is_optional
from kio.static.constants import EntityType

from kavka.protocol import messages
from kavka.protocol.builders import NO_THROTTLE, make
from kavka.protocol.builders import field_names as _field_names
from kavka.protocol.errors import ErrorCode, UnsupportedVersion
from kavka.protocol.schema_walk import FIXED_SIZES

__all__ = ["NO_THROTTLE", "Builder", "builder_for", "error_response", "make"]


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


_EMPTY = {"string": "", "bytes": b"", "records": None, "bool": False, "uuid": uuid.UUID(int=0),
          "timedelta_i32": datetime.timedelta(0), "timedelta_i64": datetime.timedelta(0)}


@cache
def error_response(api_key: int, version: int, code: ErrorCode):
    """This version's response with its top-level error_code ``code`` and every other field
    empty (0, "", (), null), or None when it has no top-level error code or a field that
    cannot be empty: the dispatcher's answer to an internal error, and a refused request's
    (kavka.api.authorization)."""
    try:
        cls = messages.response_class(api_key, version)
    except UnsupportedVersion:  # versions kio does not model (Produce v0-2)
        return None
    values = {}
    for field in fields(cls):
        if field.default is not MISSING or field.default_factory is not MISSING:
            continue
        kind, kafka_type = classify_field(field), field.metadata.get("kafka_type")
        if field.name == "error_code":
            values[field.name] = code
        elif kind.is_array:
            values[field.name] = ()
        elif is_optional(field):
            values[field.name] = None
        elif kafka_type in _EMPTY:
            values[field.name] = _EMPTY[kafka_type]
        elif kafka_type in FIXED_SIZES:
            values[field.name] = 0
        else:
            return None
    return cls(**values) if "error_code" in values else None
