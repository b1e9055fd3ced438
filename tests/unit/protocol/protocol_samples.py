"""Test helpers: sample instances of any kio message class, and copies of a class
carrying an extra tagged field the broker does not know (at every depth)."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import MISSING, field, fields, make_dataclass
from functools import cache
from typing import Any

from kio.schema.errors import ErrorCode
from kio.schema.index import api_key_map, schema_name_map
from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    PrimitiveTupleField,
    classify_field,
    get_field_tag,
    is_optional,
)
from kio.serial.readers import tz_aware_from_i64
from kio.static.constants import EntityType

UNKNOWN_TAG = 7777
UNKNOWN_VALUE = "from-a-newer-client"

_VALUES = {
    "bool": True,
    "int8": 3,
    "int16": 300,
    "int32": 70000,
    "int64": 2**40,
    "uint16": 65000,
    "float64": 1.5,
    "string": "name-ä",
    "bytes": b"\x00bytes",
    "records": b"\x01\x02records",
    "uuid": uuid.UUID("0f0e0d0c-0b0a-0908-0706-050403020100"),
    "error_code": ErrorCode.corrupt_message,
    "timedelta_i32": datetime.timedelta(milliseconds=1500),
    "timedelta_i64": datetime.timedelta(milliseconds=2**35),
    "datetime_i64": tz_aware_from_i64(1_700_000_000_123),
}


def message_classes(entity_type: EntityType):
    """(api_key, version, class) for every request or response kio models."""
    import kio.index

    load = kio.index.load_request_schema if entity_type is EntityType.request else kio.index.load_response_schema
    for api_key, name in sorted(api_key_map.items()):
        for version in sorted(schema_name_map[name]):
            yield api_key, version, load(api_key, version)


def sample(cls: type, with_nulls: bool = False) -> Any:
    """A deterministic instance; nullable fields are None when ``with_nulls``."""
    return cls(**{f.name: _value(f, with_nulls) for f in fields(cls)})


def _value(f, with_nulls: bool) -> Any:
    tag = get_field_tag(f)
    if with_nulls and is_optional(f) and (tag is None or f.default is None):
        return None
    kind = classify_field(f)
    if isinstance(kind, EntityField):
        return sample(kind.type_, with_nulls)
    if isinstance(kind, EntityTupleField):
        return (sample(kind.type_, with_nulls), sample(kind.type_, False))
    value = _VALUES[f.metadata["kafka_type"]]
    return (value, value) if isinstance(kind, PrimitiveTupleField) else value


@cache
def with_unknown_tag(cls: type) -> type:
    """A copy of ``cls`` whose flexible structs, at every depth, gain tag UNKNOWN_TAG."""
    specs = [(f.name, _augmented_type(f), _copy_field(f)) for f in fields(cls)]
    if cls.__flexible__:
        extra = field(default="", metadata={"kafka_type": "string", "tag": UNKNOWN_TAG})
        specs.append(("zz_unknown", str, extra))
    namespace = {k: getattr(cls, k) for k in ("__type__", "__version__", "__flexible__",
                                               "__api_key__", "__header_schema__") if hasattr(cls, k)}
    return make_dataclass(cls.__name__, specs, namespace=namespace, frozen=True, slots=True, kw_only=True)


def augmented_sample(cls: type, with_nulls: bool = False) -> Any:
    aug = with_unknown_tag(cls)
    values = {f.name: _augmented_value(f, with_nulls) for f in fields(aug)}
    return aug(**values)


def _augmented_value(f, with_nulls: bool) -> Any:
    if f.name == "zz_unknown":
        return UNKNOWN_VALUE
    kind = classify_field(f)
    if with_nulls and is_optional(f) and (get_field_tag(f) is None or f.default is None):
        return None
    if isinstance(kind, EntityField):
        return augmented_sample(_original(kind.type_), with_nulls)
    if isinstance(kind, EntityTupleField):
        inner = _original(kind.type_)
        return (augmented_sample(inner, with_nulls), augmented_sample(inner, False))
    return _value(f, with_nulls)


_ORIGINALS: dict[type, type] = {}


def _original(aug: type) -> type:
    return _ORIGINALS.get(aug, aug)


def _augmented_type(f) -> Any:
    kind = classify_field(f)
    if isinstance(kind, (EntityField, EntityTupleField)):
        aug = with_unknown_tag(kind.type_)
        _ORIGINALS[aug] = kind.type_
        inner = tuple[aug, ...] if isinstance(kind, EntityTupleField) else aug
        return inner | None if is_optional(f) else inner
    return f.type


def _copy_field(f):
    kwargs = {"metadata": f.metadata}
    if f.default is not MISSING:
        kwargs["default"] = f.default
    if f.default_factory is not MISSING:
        kwargs["default_factory"] = f.default_factory
    return field(**kwargs)
