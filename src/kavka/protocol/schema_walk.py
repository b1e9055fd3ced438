"""Walks a message body using kio's dataclass metadata, to make kio's reader safe.

kio's native reader has two failure modes that hostile or merely newer
clients can trigger, and this module covers both:

1. **Array counts are trusted before they are checked.**  The reader reserves
   room for the declared number of elements first, so a 7-byte body declaring
   a compact array of 7 billion elements asks for 58 GB and the allocator
   *aborts the process* — no exception to catch.  :func:`check_bounds` walks
   the body first, without building anything, and refuses any length or count
   that exceeds the bytes left.  After it passes, no array can claim more
   elements than there are bytes, so no reservation exceeds 8x the frame.

   The walk also refuses a null (negative) length or count where the schema
   does not allow null (kio would hand the handler ``None`` for a field it
   iterates: a TypeError per request), and more than ``MAX_ELEMENTS`` array
   elements in one message: decoding costs about 0.5 µs per element on the
   event loop, so a 6 MB Metadata request naming 3M topics took 1.4 s to
   decode before any handler ran.  Kafka parses on its network threads and has
   no such cap; kavka has one loop, so one request must stay a small slice.

2. **An unknown tagged field raises KeyError.**  :func:`tolerant_reader`
   decodes the body again in Python, skipping tags it does not know at every
   depth.  Only such requests pay for it.

Wire layout both follow (the one kio's writer produces): the untagged fields in
declaration order, then, for flexible versions, a tag section: uvarint count,
then per tag uvarint number, uvarint size, value.  Primitive values reuse kio's
native field readers; only the structure is walked here.
"""

from __future__ import annotations

import struct
from dataclasses import MISSING, Field, fields
from functools import cache
from typing import Any, Callable

from kio.serial._implicit_defaults import get_tagged_field_default
from kio.serial._introspect import (
    EntityField,
    EntityTupleField,
    classify_field,
    get_field_tag,
    is_optional,
)
from kio.serial._parse import get_field_reader
from kio.serial.readers import read_compact_array_length, read_int8, read_legacy_array_length

from kavka.protocol.errors import InvalidRequest
from kavka.protocol.framing import read_uvarint

Reader = Callable[[bytes, int], tuple[Any, int]]
Check = Callable[[bytes, int], int]  # returns the position after the value
# Generated per struct: (buffer, position, [elements left]) -> position after it.
_GenCheck = Callable[[bytes, int, list], int]

FIXED_SIZES = {
    "bool": 1, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "error_code": 2,
    "int32": 4, "uint32": 4, "timedelta_i32": 4, "int64": 8, "uint64": 8,
    "float64": 8, "timedelta_i64": 8, "datetime_i64": 8, "uuid": 16,
}
# Array elements one message may declare, all arrays together.  Generous for
# real clients (a Fetch or Produce naming 20k partitions uses ~20k), and
# bounds decoding to ~50 ms.
MAX_ELEMENTS = 100_000
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")


# -- bounds check --------------------------------------------------------------------------
#
# One Python function per struct is generated from its fields, so the check
# costs a few line executions per field instead of a call per field (2.5x
# faster than composing closures, and it runs on every request).  Loops over
# struct arrays call the element struct's function.

def check_bounds(cls: type, buf: bytes, offset: int) -> int:
    """Position after the body of ``cls`` at ``offset``; raises InvalidRequest if any
    length, count or tag overruns the buffer."""
    return bounds_checker(cls)(buf, offset)


def bounds_checker(cls: type) -> Check:
    """:func:`check_bounds` for one class, for callers that cache it."""
    check = _checker(cls, False)

    def checked(buf: bytes, offset: int) -> int:
        # The generated code counts elements down in a list of its own per message
        # (brokers and clients in other threads of one process decode at the same time).
        return check(buf, offset, [MAX_ELEMENTS])

    return checked


def _fail(what: str) -> None:
    raise InvalidRequest(f"{what} overruns the body")


def _fail_null(field: str) -> None:
    raise InvalidRequest(f"null {field} where the schema does not allow one")


def _fail_elements() -> None:
    raise InvalidRequest(f"more than {MAX_ELEMENTS} array elements in one message")


@cache
def _checker(cls: type, nullable: bool) -> _GenCheck:
    gen = _CheckSource(cls)
    if nullable:  # KIP-893: an int8 marker, negative for null, then the struct
        gen.emit("if pos >= end: fail('a struct null marker')", "if buf[pos] >= 0x80: return pos + 1",
                 "pos += 1")
    tagged: dict[int, _GenCheck] = {}
    for field in fields(cls):
        tag = get_field_tag(field)
        if tag is None:
            gen.field(field)
        else:
            tagged[tag] = _tag_value_checker(cls, field)
    gen.flush_fixed()
    if cls.__flexible__:
        gen.env["KNOWN_TAGS"] = tagged
        gen.emit("if pos < end and buf[pos] == 0: pos += 1",
                 "else: pos = tag_section(buf, pos, KNOWN_TAGS, left)")
    return gen.compile()


def _tag_value_checker(cls: type, field: Field) -> _GenCheck:
    kind = classify_field(field)
    if isinstance(kind, EntityField):
        return _checker(kind.type_, False)  # a tag's presence replaces the null marker
    gen = _CheckSource(cls)
    gen.field(field)
    gen.flush_fixed()
    return gen.compile()


class _CheckSource:
    """Accumulates the source of one generated check function."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.lines = ["end = len(buf)"]
        self.env: dict[str, Any] = {"uvarint": read_uvarint, "i16": _I16.unpack_from,
                                    "i32": _I32.unpack_from, "fail": _fail,
                                    "tag_section": _tag_section, "fail_null": _fail_null,
                                    "fail_elements": _fail_elements}
        self.fixed = 0
        self.depth = 0

    def emit(self, *lines: str) -> None:
        self.lines += ["    " * self.depth + line for line in lines]

    def flush_fixed(self) -> None:
        if self.fixed:
            self.emit(f"pos += {self.fixed}", "if pos > end: fail('a fixed-size field')")
            self.fixed = 0

    def field(self, field: Field) -> None:
        kind = classify_field(field)
        size = FIXED_SIZES.get(field.metadata.get("kafka_type", ""))
        if size is not None and not kind.is_array:
            self.fixed += size  # runs of fixed-size fields become one skip
            return
        self.flush_fixed()
        if isinstance(kind, EntityField):
            self.emit(f"pos = {self.sub(_checker(kind.type_, is_optional(field)))}(buf, pos, left)")
        elif isinstance(kind, EntityTupleField):
            self.array(field, lambda: self.emit(f"pos = {self.sub(_checker(kind.type_, False))}(buf, pos, left)"))
        elif size is not None:
            self.array(field, lambda: None, element_size=size)
        elif kind.is_array:  # array elements are never null (Kafka refuses them too)
            self.array(field, lambda: self.blob(field, nullable=False))
        else:
            self.blob(field, nullable=is_optional(field))

    def sub(self, check: _GenCheck) -> str:
        name = f"sub{len(self.env)}"
        self.env[name] = check
        return name

    def blob(self, field: Field, nullable: bool) -> None:
        if self.cls.__flexible__:
            self.uvarint("n")
            self.emit("n -= 1")
        elif field.metadata["kafka_type"] == "string":
            self.emit("if pos + 2 > end: fail('a string length')", "n = i16(buf, pos)[0]", "pos += 2")
        else:
            self.emit("if pos + 4 > end: fail('a bytes length')", "n = i32(buf, pos)[0]", "pos += 4")
        if not nullable:
            self.emit(f"if n < 0: fail_null({field.name!r})")
        self.emit("if n > end - pos: fail(f'a {n}-byte value')", "if n > 0: pos += n")

    def array(self, field: Field, element: Callable[[], None], element_size: int = 0) -> None:
        count = f"count{self.depth}"
        if self.cls.__flexible__:
            self.uvarint(count)
            self.emit(f"{count} -= 1")
        else:
            self.emit("if pos + 4 > end: fail('an array length')", f"{count} = i32(buf, pos)[0]",
                      "pos += 4")
        self.emit(f"if {count} > end - pos: fail(f'an array of {{{count}}} elements')")
        if not is_optional(field):
            self.emit(f"if {count} < 0: fail_null({field.name!r})")
        self.emit(f"if {count} > 0:", f"    left[0] -= {count}", "    if left[0] < 0: fail_elements()")
        if element_size:
            self.emit(f"if {count} > 0: pos += {count} * {element_size}",
                      "if pos > end: fail('an array')")
            return
        self.emit(f"for _ in range({count}):")
        self.depth += 1
        element()
        self.depth -= 1

    def uvarint(self, var: str) -> None:
        self.emit(f"if pos < end and buf[pos] < 0x80: {var} = buf[pos]; pos += 1",
                  f"else: {var}, pos = uvarint(buf, pos)")

    def compile(self) -> _GenCheck:
        name = f"check_{self.cls.__name__}_v{self.cls.__version__}"
        body = "\n".join("    " + line for line in self.lines + ["return pos"])
        namespace = dict(self.env)
        exec(compile(f"def {name}(buf, pos, left):\n{body}\n", f"<{name}>", "exec"), namespace)
        return namespace[name]


def _tag_section(buf: bytes, pos: int, known: dict[int, _GenCheck], left: list[int]) -> int:
    count, pos = read_uvarint(buf, pos)
    for _ in range(count):
        tag, pos = read_uvarint(buf, pos)
        size, pos = read_uvarint(buf, pos)
        end = _advance(buf, pos, size)
        if tag in known and known[tag](buf, pos, left) > end:
            raise InvalidRequest(f"tagged field {tag} overruns its declared size")
        pos = end
    return pos


def _advance(buf: bytes, pos: int, length: int) -> int:
    """Skip a value of ``length`` bytes; negative lengths mean null."""
    if length > len(buf) - pos:
        raise InvalidRequest(f"a {length}-byte value overruns the body")
    return pos + max(length, 0)


# -- tolerant reader -----------------------------------------------------------------------

def tolerant_reader(cls: type) -> Reader:
    """A (buffer, offset) -> (object, size) reader that skips unknown tags.

    Run :func:`check_bounds` first: primitive arrays go through kio's native
    readers, which reserve the declared count up front.
    """
    return _reader(cls, False)


@cache
def _reader(cls: type, nullable: bool) -> Reader:
    untagged: list[tuple[str, Reader]] = []
    tagged: dict[int, tuple[str, Reader]] = {}
    for field in fields(cls):
        tag = get_field_tag(field)
        entry = (field.name, _field_reader(cls, field, is_tag=tag is not None))
        if tag is None:
            untagged.append(entry)
        else:
            tagged[tag] = entry
    absent = _absent_tag_values(cls)
    flexible = cls.__flexible__

    def read(buf: bytes, offset: int) -> tuple[Any, int]:
        values: dict[str, Any] = {}
        pos = offset
        for name, reader in untagged:
            values[name], size = reader(buf, pos)
            pos += size
        if flexible:
            pos = _read_tag_section(buf, pos, tagged, values)
        for name, value in absent.items():
            values.setdefault(name, value)
        return cls(**values), pos - offset

    return _null_marked_reader(read) if nullable else read


def _field_reader(cls: type, field: Field, is_tag: bool) -> Reader:
    kind = classify_field(field)
    # A tagged field's presence is its tag, so its value is never null-marked.
    optional = is_optional(field) and not is_tag
    if isinstance(kind, EntityField):
        return _reader(kind.type_, optional)
    if isinstance(kind, EntityTupleField):
        return _array_reader(_reader(kind.type_, False), cls.__flexible__, optional)
    return get_field_reader(cls, field, False, is_tag)


def _absent_tag_values(cls: type) -> dict[str, Any]:
    """Values for tagged fields a sender left out, where the dataclass has no default."""
    return {
        f.name: get_tagged_field_default(f)
        for f in fields(cls)
        if get_field_tag(f) is not None and f.default is MISSING and f.default_factory is MISSING
    }


def _read_tag_section(buf: bytes, pos: int, known: dict[int, tuple[str, Reader]], values: dict) -> int:
    count, pos = read_uvarint(buf, pos)
    for _ in range(count):
        tag, pos = read_uvarint(buf, pos)
        size, pos = read_uvarint(buf, pos)
        end = _advance(buf, pos, size)
        if tag in known:
            name, reader = known[tag]
            values[name], used = reader(buf, pos)
            if used > size:
                raise InvalidRequest(f"tagged field {tag} overruns its declared size")
        pos = end
    return pos


def _array_reader(item: Reader, flexible: bool, nullable: bool) -> Reader:
    read_length = read_compact_array_length if flexible else read_legacy_array_length

    def read(buf: bytes, offset: int) -> tuple[tuple | None, int]:
        count, pos = read_length(buf, offset)
        pos += offset
        if count is None or count < 0:
            if not nullable:
                raise InvalidRequest("null array where the schema does not allow one")
            return None, pos - offset
        if count > len(buf) - pos:
            raise InvalidRequest(f"array of {count} elements in {len(buf) - pos} bytes")
        items = []
        for _ in range(count):
            value, size = item(buf, pos)
            items.append(value)
            pos += size
        return tuple(items), pos - offset

    return read


def _null_marked_reader(read: Reader) -> Reader:
    def read_nullable(buf: bytes, offset: int) -> tuple[Any, int]:
        marker, _ = read_int8(buf, offset)
        if marker < 0:
            return None, 1
        value, size = read(buf, offset + 1)
        return value, size + 1

    return read_nullable
