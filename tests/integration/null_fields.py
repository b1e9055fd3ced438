"""Request bodies with one non-nullable array or string sent as null (issue 9, item 8).

For a sample request (tests/unit/protocol/protocol_samples.py) and each
non-nullable array/string field at every depth (in the first element of
enclosing arrays), the body is encoded once with that field empty and once with
it holding one element / one character.  The first byte where the two differ is
inside the field's length; that length in the empty encoding is then rewritten
as null (-1, or compact 0), giving a body that is well formed but for that null.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Iterator

from kio.serial._introspect import EntityField, EntityTupleField, classify_field, get_field_tag, is_optional

from kavka.protocol import messages

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "protocol"))
from protocol_samples import sample  # noqa: E402


def null_bodies(api_key: int, version: int) -> Iterator[tuple[str, bytes]]:
    """(dotted field path, body) for every non-nullable array/string of one request."""
    cls = messages.request_class(api_key, version)
    base = sample(cls)
    for path, empty, one, flexible, kind in _variants(base, ()):
        a, b = messages.encode_request(empty), messages.encode_request(one)
        at = next(i for i in range(min(len(a), len(b))) if a[i] != b[i])
        if flexible:  # compact length: 1 (empty) becomes 0 (null); a one-byte uvarint
            yield ".".join(path), a[:at] + b"\x00" + a[at + 1:]
        elif kind == "array":  # int32 0 -> -1; the differing byte is its last
            yield ".".join(path), a[:at - 3] + struct.pack(">i", -1) + a[at + 1:]
        else:  # int16 string length 0 -> -1
            yield ".".join(path), a[:at - 1] + struct.pack(">h", -1) + a[at + 1:]


def _variants(obj: Any, path: tuple[str, ...]):
    """(path, obj with the field empty, with one element, flexible, kind) for each target field."""
    for f in fields(obj):
        if get_field_tag(f) is not None:
            continue
        kind = classify_field(f)
        value = getattr(obj, f.name)
        here = path + (f.name,)
        if isinstance(kind, EntityField) and value is not None:
            for sub in _variants(value, here):
                yield (sub[0], replace(obj, **{f.name: sub[1]}), replace(obj, **{f.name: sub[2]}), *sub[3:])
        if is_optional(f):
            continue
        if kind.is_array:
            first = value[0]
            yield here, replace(obj, **{f.name: ()}), replace(obj, **{f.name: (first,)}), obj.__flexible__, "array"
            if isinstance(kind, EntityTupleField):
                for sub in _variants(first, here):
                    yield (sub[0], replace(obj, **{f.name: (sub[1],)}), replace(obj, **{f.name: (sub[2],)}),
                           *sub[3:])
        elif f.metadata.get("kafka_type") == "string":
            yield here, replace(obj, **{f.name: ""}), replace(obj, **{f.name: "x"}), obj.__flexible__, "string"
