"""Protocol fuzzing (issue 9, "How it is checked"): every advertised API key and version
with mutated frames, for a bounded time (KAVKA_FUZZ_SECONDS, default a few seconds per
test; the ``slow`` variants run about two minutes).

* In process: each mutated frame goes through the dispatcher's decode path (the real
  ``Dispatcher.handle`` with handlers that do nothing); only the protocol's own
  errors may escape (CloseConnection, ProtocolError and its subclasses), never
  TypeError, KeyError, IndexError, struct.error, MemoryError, RecursionError.  Mutated
  record batches (CRC recomputed half the time, so the records are parsed) go through
  records.py / record_codec.py and may raise only InvalidBatch.
* Through the wire against a real broker: mutated frames over many connections (now and
  then with a size prefix that lies about the frame's length); after
  each burst the broker must answer ApiVersions and Metadata within 5 s; at the end no
  log line may be an internal error (the dispatcher's "internal error handling ..."),
  an unexpected connection error, a traceback, or at ERROR level.

A failure names the seed and the frame in hex; ``KAVKA_FUZZ_SEED`` replays it.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import random
import socket
import struct
import sys
import time
from pathlib import Path

import pytest
from kio.schema.api_versions.v3.request import ApiVersionsRequest
from kio.schema.metadata.v12.request import MetadataRequest

from frame_fuzz import FUZZ_TOPIC, cases, mutated_batch
from kavka.api import registry
from kavka.client import Client
from kavka.protocol import record_codec, records
from kavka.protocol.errors import ProtocolError
from kavka.protocol.records import InvalidBatch
from kavka.server import dispatch
from kavka.server.connection import CloseConnection

SECONDS = float(os.environ.get("KAVKA_FUZZ_SECONDS", "6"))
SEED = int(os.environ.get("KAVKA_FUZZ_SEED", "0")) or random.SystemRandom().randrange(1, 2**31)
REPLY_TIMEOUT = 5.0
BAD_LOG_PHRASES = ("internal error", "unexpected error", "Traceback")
PREFIX_LIES = (-3, -1, 1, 1000)  # bytes a frame's size prefix is off by, now and then


def _where(seed: int, i: int, key, frame: bytes) -> str:
    return f"KAVKA_FUZZ_SEED={seed} case {i} api {key[0]} v{key[1]} frame {frame.hex()}"


# -- in process ----------------------------------------------------------------------------

class _Conn:
    peer = "fuzz"


@pytest.fixture
def decode_only(monkeypatch):
    """A Dispatcher whose handlers do nothing: handle() decodes and returns None."""
    specs = {k: dataclasses.replace(s, handler=lambda _request: None) for k, s in registry.REGISTRY.items()}
    monkeypatch.setattr(dispatch, "REGISTRY", specs)
    return dispatch.Dispatcher(broker=None)


def _decode_run(dispatcher, seconds: float, seed: int) -> int:
    deadline = None   # set at the first case: building the seed table takes seconds on a busy machine
    done = 0
    for i, (key, frame) in enumerate(cases(seed, 10**9)):
        if deadline is None:
            deadline = time.monotonic() + seconds
        elif i % 64 == 0 and time.monotonic() > deadline:
            break
        try:
            dispatcher.handle(frame, _Conn())
        except (CloseConnection, ProtocolError):
            pass
        except BaseException as exc:  # noqa: BLE001 - anything else is the bug under test
            raise AssertionError(f"{type(exc).__name__}: {exc} -- {_where(seed, i, key, frame)}") from exc
        done += 1
    return done


def test_fuzzed_frames_raise_only_protocol_errors_in_decode(decode_only):
    assert _decode_run(decode_only, SECONDS / 3, SEED) > 1000


@pytest.mark.slow
def test_fuzzed_frames_raise_only_protocol_errors_in_decode_long(decode_only):
    _decode_run(decode_only, 60, SEED)


def _batch_run(seconds: float, seed: int) -> int:
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    done = 0
    while done % 64 or time.monotonic() < deadline:
        data = mutated_batch(rng)
        try:
            records.validate(data)
            record_codec.decode_records(data, limit=1 << 20)
            list(record_codec.iter_records(data, limit=1 << 20))
            record_codec.null_key_indexes(data, limit=1 << 20)
        except InvalidBatch:
            pass
        except BaseException as exc:  # noqa: BLE001
            raise AssertionError(f"{type(exc).__name__}: {exc} -- KAVKA_FUZZ_SEED={seed} case {done} "
                                 f"batch {data.hex()}") from exc
        done += 1
    return done


@pytest.mark.slow
def test_fuzzed_record_batches_raise_only_invalid_batch():
    assert _batch_run(SECONDS / 6, SEED) > 500


# -- through the wire ----------------------------------------------------------------------

def _responsive(bootstrap: str) -> None:
    with Client(bootstrap, timeout=REPLY_TIMEOUT) as client:
        assert client.request(ApiVersionsRequest(client_software_name="fuzz",
                                                 client_software_version="1")).error_code == 0
        assert client.request(MetadataRequest(topics=None, allow_auto_topic_creation=False,
                                              include_topic_authorized_operations=False)).brokers


def _send(address, frames: list[bytes], last_prefix_lie: int = 0) -> None:
    """Send frames on one connection (pipelined; the last one's size prefix off by
    ``last_prefix_lie`` bytes: a frame claiming more than arrives, or less, so its tail is
    read as the next frame) and read until as many responses came back, the broker
    closed, or it went quiet for a moment (acks=0, a parked fetch); whether it hangs is
    judged by the health check after each burst."""
    sizes = [len(f) for f in frames]
    sizes[-1] = max(0, sizes[-1] + last_prefix_lie)
    with socket.create_connection(address, timeout=REPLY_TIMEOUT) as sock:
        sock.sendall(b"".join(struct.pack(">i", n) + f for n, f in zip(sizes, frames)))
        sock.settimeout(0.3)
        got, answered = b"", 0
        try:
            while answered < len(frames):
                chunk = sock.recv(65536)
                if not chunk:
                    return
                got += chunk
                while len(got) >= 4 and len(got) >= 4 + struct.unpack_from(">i", got)[0]:
                    got, answered = got[4 + struct.unpack_from(">i", got)[0]:], answered + 1
        except (TimeoutError, ConnectionError):
            pass


def _wire_run(bootstrap: str, seconds: float, seed: int, burst: int = 40) -> int:
    host, _, port = bootstrap.rpartition(":")
    address = (host, int(port))
    _create_topic(bootstrap, FUZZ_TOPIC)
    deadline = time.monotonic() + seconds
    done = 0
    rng = random.Random(seed)
    last = None
    pipeline: list[bytes] = []
    for i, (key, frame) in enumerate(cases(seed, 10**9)):
        last = (i, key, frame)
        pipeline.append(frame)
        if rng.random() < 0.7:  # else the next frame shares this connection
            _send(address, pipeline, rng.choice(PREFIX_LIES) if rng.random() < 0.05 else 0)
            pipeline = []
        done += 1
        if done % burst == 0:
            try:
                _responsive(bootstrap)
            except Exception as exc:  # noqa: BLE001
                raise AssertionError(f"broker unresponsive after burst ending at "
                                     f"{_where(seed, *last)}: {exc!r}") from exc
            if time.monotonic() > deadline:
                break
    _responsive(bootstrap)
    return done


def _create_topic(bootstrap: str, name: str) -> None:
    from kio.schema.create_topics.v7.request import CreatableTopic, CreateTopicsRequest

    with Client(bootstrap, timeout=REPLY_TIMEOUT) as client:
        response = client.request(CreateTopicsRequest(topics=(CreatableTopic(
            name=name, num_partitions=1, replication_factor=1, assignments=(), configs=()),),
            timeout=datetime.timedelta(seconds=5), validate_only=False))
    assert response.topics[0].error_code == 0, response


def _bad_lines(lines) -> list[str]:
    return [line for line in lines
            if any(p in line for p in BAD_LOG_PHRASES) or " ERROR " in line or "CRITICAL" in line]


@pytest.mark.slow  # KAVKA_FUZZ_SECONDS (6 s) of frames over the wire
def test_fuzzed_frames_over_the_wire_leave_the_broker_serving(kavka_broker, caplog):
    caplog.set_level(logging.DEBUG, logger="kavka")
    sent = _wire_run(kavka_broker.bootstrap_servers, SECONDS, SEED)
    assert sent >= 40
    # The broker's lines only: a client library another test left running (kafka-python's
    # reconnect errors towards a stopped cluster) logs into the same process.
    bad = [f"{r.levelname} {r.getMessage()}" for r in caplog.records
           if (r.name == "kavka" or r.name.startswith("kavka."))
           and (r.exc_info or r.levelno >= logging.ERROR or any(p in r.getMessage() for p in BAD_LOG_PHRASES))]
    assert not bad, f"KAVKA_FUZZ_SEED={SEED}: {len(bad)} bad log lines, first: {bad[:5]}"


@pytest.mark.slow
def test_fuzzed_frames_against_a_kavka_serve_process(tmp_path):
    """About a minute against a real ``kavka serve``: still alive, and a clean log."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))
    from broker_process import BrokerProcess

    broker = BrokerProcess(tmp_path / "data").start()
    try:
        _wire_run(broker.bootstrap_servers, 60, SEED)
        assert broker.running
        bad = _bad_lines(broker.log_text().splitlines())
        assert not bad, f"KAVKA_FUZZ_SEED={SEED}: {len(bad)} bad log lines, first: {bad[:5]}"
    finally:
        broker.cleanup()
