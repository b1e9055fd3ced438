"""Long handlers work in slices, so one huge request cannot stall every connection.

The broker has one event loop: a handler that loops over 100,000 topics or
partitions without awaiting holds every other client for the whole loop (a
Metadata request naming 99,000 topics held them 1.6 s, a Fetch naming one
partition 50,000 times 0.7 s).  Handlers whose request names more than
``SLICE`` items therefore run as a coroutine that gives the loop back every
``SLICE`` items (``await asyncio.sleep(0)``: every ready connection is served,
and the socket is polled, before the next slice).  Small requests — nearly all —
stay synchronous and pay nothing.

Kafka needs none of this: its request handler pool runs eight handlers at once
(``num.io.threads``), so one slow request ties up one thread.
"""

from __future__ import annotations

import asyncio
import struct
from dataclasses import replace
from typing import Callable, Generator, Iterable, TypeVar

from kavka.api.registry import RawResponse
from kavka.protocol.framing import write_uvarint
from kavka.protocol.messages import encode_response

T = TypeVar("T")
R = TypeVar("R")

# Items handled between two yields: ~5-10 ms of work for the costliest handlers
# (describing a topic, reading a partition), far below a client's timeouts.
SLICE = 512
_I32 = struct.Struct(">i")


def unique(items: Iterable[T], key: Callable[[T], object]) -> list[T]:
    """``items`` without repeats of ``key``: the first occurrence's position, the last's value
    (what Kafka's LinkedHashMap of a request's partitions keeps)."""
    kept: dict[object, T] = {}
    for item in items:
        kept[key(item)] = item
    return list(kept.values())


def run_steps(steps: Generator[None, None, R]) -> R:
    """Drive a stepping generator (it yields between slices) to its value, without pausing."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value


async def run_sliced(steps: Generator[None, None, R]) -> R:
    """Drive a stepping generator, giving the event loop back at every step."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
        await asyncio.sleep(0)


def map_steps(fn: Callable[[T], R], items: list[T], every: int = SLICE,
              weight: Callable[[T], int] | None = None) -> Generator[None, None, list[R]]:
    """``[fn(x) for x in items]`` as a stepping generator, one step per ``every`` items, or per
    ``every`` units of ``weight(x)`` (taken before ``fn(x)``) for items that cost unevenly."""
    out: list[R] = []
    if weight is None:
        for start in range(0, len(items), every):
            if start:
                yield
            out.extend(fn(item) for item in items[start:start + every])
        return out
    work = 0
    for item in items:
        if work >= every:
            work = 0
            yield
        work += weight(item)
        out.append(fn(item))
    return out


def encode_steps(response, field: str, every: int = SLICE) -> Generator[None, None, RawResponse]:
    """Encode ``response`` with its big array ``field`` written ``every`` elements per step.

    kio's writer encodes a 100,000-topic Metadata answer in one 0.23 s call; here the
    rest of the response is encoded with the array empty, and the array's elements
    one by one (a struct nested in an array is encoded exactly as on its own).
    The empty array's length is found where the encodings with zero and with one
    element first differ (the last byte of an int32 0 -> 1, or a compact 1 -> 2).
    """
    items = getattr(response, field)
    empty = encode_response(replace(response, **{field: ()}))
    if not items:
        return RawResponse([empty], len(empty))
    one = encode_response(replace(response, **{field: items[:1]}))
    at = next(i for i in range(len(empty)) if empty[i] != one[i])
    flexible = type(response).__flexible__
    start, end = (at, at + 1) if flexible else (at - 3, at + 1)
    length = write_uvarint(len(items) + 1) if flexible else _I32.pack(len(items))
    parts = [empty[:start], length]
    for first in range(0, len(items), every):
        if first:
            yield
        parts.extend(encode_response(item) for item in items[first:first + every])
    parts.append(empty[end:])
    return RawResponse(parts, sum(len(p) for p in parts))
