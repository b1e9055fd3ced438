"""An idempotent producer's retry of a batch the broker already wrote stores nothing twice.

A TCP proxy sits between librdkafka and the broker (the broker advertises the
proxy's address in Metadata, so every connection goes through it).  On command
it forwards the next Produce request but swallows that request's response and
closes the client connection: the batch is in the log, the client never saw the
ack and resends it on a new connection.  With ``enable.idempotence=true`` the
broker must answer the resend from its producer state (the original offsets,
no write); without idempotence the resend is a new batch and is stored again,
which shows that the proxy really forces the situation.

The same holds when the broker crashes (kill -9) or restarts cleanly between
the write and the resend: the proxy then holds the client off until the broker
is back, and the producer state rebuilt from the recovered log (or read from
the clean-shutdown snapshot) must recognise the resend.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections import Counter

import pytest
from confluent_kafka import Producer
from kio.schema.list_offsets.v5.request import ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic
from kio.schema.metadata.v12.request import MetadataRequest

from broker_process import RECOVERED_PHRASE, create_topic, read_all
from kavka.broker import Broker
from kavka.client import Client

PRODUCE = 0
TOPIC = "retry"
PHASE = 100  # records per phase: before, during (the lost acks) and after the fault


class _Link:
    """One client connection and its upstream connection through the proxy."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client, self.upstream = client, upstream
        self.produce_correlations: set[int] = set()
        self.doomed_from: int | None = None  # Produce requests from this correlation id on lose their acks
        self._closed = False
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for sock in (self.client, self.upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


def _recv_exactly(sock: socket.socket, n: int) -> bytes | None:
    chunks, remaining = [], n
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _recv_frame(sock: socket.socket) -> bytes | None:
    """One whole Kafka frame (size prefix included), or None at EOF."""
    try:
        prefix = _recv_exactly(sock, 4)
        if prefix is None:
            return None
        body = _recv_exactly(sock, struct.unpack(">i", prefix)[0])
        return None if body is None else prefix + body
    except OSError:
        return None


class DroppingProxy:
    """A frame-aware TCP proxy on 127.0.0.1; ``drop_next_produce_ack()`` arms one fault.

    The fault: the next Produce request is forwarded, its response swallowed and
    the client connection cut.  With ``window`` > 0 the proxy first keeps the
    connection for that long, swallowing the responses of every Produce request
    it forwards meanwhile (the client pipelines more: several written batches
    lose their acks).  With ``hold=True`` it then also cuts every other
    connection and refuses new ones until ``release()``, so nothing the client
    resends reaches the broker meanwhile.
    """

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self.upstream: tuple[str, int] | None = None
        self._lock = threading.Lock()
        self._armed = False
        self._window = 0.0
        self._hold = False
        self.holding = False
        self._stopping = threading.Event()
        self._links: list[_Link] = []
        self._threads: list[threading.Thread] = []
        self.produce_requests = 0
        self.swallowed: list[int] = []  # correlation ids of Produce responses the client never got
        self.cuts = 0  # connections cut by a fault

    def start(self, upstream: tuple[str, int]) -> "DroppingProxy":
        self.upstream = upstream
        self._spawn(self._accept_loop)
        return self

    def drop_next_produce_ack(self, *, window: float = 0.0, hold: bool = False) -> None:
        with self._lock:
            self._armed, self._window, self._hold = True, window, hold

    def release(self) -> None:
        with self._lock:
            self.holding = False

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._server.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self.holding:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            link = _Link(client, upstream)
            with self._lock:
                self._links.append(link)
            self._spawn(self._client_to_broker, link)
            self._spawn(self._broker_to_client, link)

    def _client_to_broker(self, link: _Link) -> None:
        while (frame := _recv_frame(link.client)) is not None:
            api_key, _version, correlation = struct.unpack_from(">hhi", frame, 4)
            if api_key == PRODUCE:
                # noted before forwarding, so before the broker can answer
                link.produce_correlations.add(correlation)
                with self._lock:
                    self.produce_requests += 1
                    if self._armed:
                        self._armed = False
                        link.doomed_from = correlation
            try:
                link.upstream.sendall(frame)
            except OSError:
                break
        link.close()

    def _broker_to_client(self, link: _Link) -> None:
        deadline = None
        while (frame := _recv_frame(link.upstream)) is not None:
            (correlation,) = struct.unpack_from(">i", frame, 4)
            if (link.doomed_from is not None and correlation >= link.doomed_from
                    and correlation in link.produce_correlations):
                with self._lock:
                    self.swallowed.append(correlation)
                    window = self._window
                if deadline is None:
                    deadline = time.monotonic() + window
                    link.upstream.settimeout(max(window, 0.001))
            elif deadline is None:
                try:
                    link.client.sendall(frame)
                except OSError:
                    break
            if deadline is not None and time.monotonic() >= deadline:
                break
        if deadline is not None:
            with self._lock:
                self.cuts += 1
                self.holding = self._hold
                others = list(self._links) if self._hold else []
            for other in others:
                other.close()
        link.close()

    def close(self) -> None:
        self._stopping.set()
        self._server.close()
        with self._lock:
            links = list(self._links)
        for link in links:
            link.close()
        for thread in self._threads:
            thread.join(5)


@pytest.fixture
def proxy():
    proxy = DroppingProxy()
    yield proxy
    proxy.close()


@pytest.fixture
def proxied_broker(tmp_path, proxy):
    """(broker, proxy, produce answers): an in-process broker that advertises the proxy;
    the answers list collects every ProduceInfo of partition 0 of TOPIC."""
    broker = Broker(tmp_path / "data", port=0, advertised_port=proxy.port, config={"num.partitions": "1"})
    broker.start()
    try:
        proxy.start(("127.0.0.1", broker.port))
        assert broker.bootstrap_servers == f"127.0.0.1:{proxy.port}"
        create_topic(broker.bootstrap_servers, TOPIC, 1)
        partition = broker.logs.partition(TOPIC, 0)
        answers = []
        append_records = partition.append_records

        def spy(buf, produce_version, now_ms, *more):
            info = append_records(buf, produce_version, now_ms, *more)
            answers.append(info)
            return info

        partition.append_records = spy  # runs on the broker's loop thread; list.append is atomic
        yield broker, proxy, answers
    finally:
        proxy.close()  # before the broker, so no client request is still arriving
        broker.stop()


def _producer(bootstrap: str, conf: dict) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "retry.backoff.ms": 50,
                     "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 200,
                     "message.timeout.ms": 30000, **conf})


def latest_offset(bootstrap: str) -> int:
    """The log end offset of TOPIC-0, asked of the broker directly (not through the proxy)."""
    with Client(bootstrap) as client:
        response = client.request(ListOffsetsRequest(replica_id=-1, isolation_level=0, topics=(
            ListOffsetsTopic(name=TOPIC, partitions=(ListOffsetsPartition(
                partition_index=0, current_leader_epoch=-1, timestamp=-1),)),)))
    return response.topics[0].partitions[0].offset


FAULTS = {  # id: (batch.num.messages, how long the proxy keeps swallowing acks)
    "one-batch": (1000, 0.0),    # the whole phase is one batch: one resend
    # one record per batch: librdkafka's idempotent producer keeps up to 5 such requests in
    # flight per partition (it counts in-flight *records* against that limit), so 5 written
    # batches lose their acks and are resent in a row
    "pipelined": (1, 0.3),
}


def _produce_phases(bootstrap: str, conf: dict, proxy: DroppingProxy, window: float):
    """Three phases of PHASE numbered records, each flushed; the middle one with the fault."""
    acked, errors = [], []

    def on_delivery(err, msg):
        if err is None:
            acked.append((msg.partition(), msg.offset(), msg.value()))
        else:
            errors.append(err)

    producer = _producer(bootstrap, conf)
    for phase in range(3):
        if phase == 1:
            requests_before = proxy.produce_requests
            proxy.drop_next_produce_ack(window=window)
        for seq in range(phase * PHASE, (phase + 1) * PHASE):
            producer.produce(TOPIC, value=f"r-{seq:06d}".encode(), partition=0, on_delivery=on_delivery)
        assert producer.flush(30) == 0
        if phase == 1:
            assert proxy.cuts == 1, "the proxy saw no Produce request to drop"
            assert proxy.produce_requests - requests_before > len(proxy.swallowed), "nothing was sent again"
    assert not errors, errors
    return acked


@pytest.mark.slow
@pytest.mark.parametrize("fault", FAULTS)
def test_idempotent_retry_of_a_written_batch_is_a_duplicate(proxied_broker, fault):
    broker, proxy, answers = proxied_broker
    batch, window = FAULTS[fault]
    acked = _produce_phases(broker.bootstrap_servers,
                            {"enable.idempotence": True, "acks": "all", "batch.num.messages": batch}, proxy, window)
    sent = [f"r-{seq:06d}".encode() for seq in range(3 * PHASE)]

    # the broker answered every resend of a written batch from producer state, with the
    # original offsets, and wrote nothing
    duplicates = [a for a in answers if a.duplicate]
    print(f"{len(proxy.swallowed)} acks swallowed, {len(duplicates)} resends answered as duplicates")
    # (a request whose answer was still on its way when the proxy cut is resent too)
    assert len(duplicates) >= len(proxy.swallowed) >= (1 if window == 0 else 2), answers
    assert all(PHASE <= dup.base_offset <= dup.last_offset < 2 * PHASE for dup in duplicates)
    assert broker.logs.partition(TOPIC, 0).log.log_end_offset == len(sent)

    log = read_all(broker.bootstrap_servers, TOPIC, 1)[0]
    assert [offset for offset, _k, _v in log] == list(range(len(sent)))
    assert [value for _o, _k, value in log] == sent, "each record exactly once, in order"
    assert sorted(acked) == [(0, offset, value) for offset, value in enumerate(sent)]


def test_without_idempotence_the_retry_is_stored_twice(proxied_broker):
    broker, proxy, answers = proxied_broker
    acked = _produce_phases(broker.bootstrap_servers,
                            {"enable.idempotence": False, "acks": "1", "max.in.flight": 1}, proxy, 0.0)
    assert len(proxy.swallowed) == 1
    assert not [a for a in answers if a.duplicate]

    log = read_all(broker.bootstrap_servers, TOPIC, 1)[0]
    values = Counter(value for _o, _k, value in log)
    twice = sorted(v for v, n in values.items() if n == 2)
    assert twice, "the resent batch should have been stored a second time"
    assert len(log) == 3 * PHASE + len(twice)
    assert set(values) == {f"r-{seq:06d}".encode() for seq in range(3 * PHASE)}
    assert all(PHASE <= int(v[2:]) < 2 * PHASE for v in twice), "only the dropped batch repeats"
    assert [offset for offset, _k, _v in log] == list(range(len(log)))
    # the acks name the second copies: each acked offset holds its value
    stored = {offset: value for offset, _k, value in log}
    assert all(stored[offset] == value for _p, offset, value in acked)


@pytest.mark.slow  # restarts a broker process (kill -9 / SIGTERM), ~1.5 s each
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("restart", ["kill9", "sigterm"])
def test_idempotent_retry_after_a_broker_restart_is_a_duplicate(broker_process_factory, proxy, restart, fault):
    """The acks are lost, then the broker restarts before the resends arrive: after kill -9
    the producer state is rebuilt by replaying the recovered log, after SIGTERM it is read
    from the snapshot written at shutdown.  Either way each resend is a duplicate."""
    broker = broker_process_factory(overrides={"num.partitions": 1}, advertised=f"127.0.0.1:{proxy.port}")
    proxy.start(("127.0.0.1", broker.port))
    bootstrap = f"127.0.0.1:{proxy.port}"
    with Client(broker.bootstrap_servers) as client:  # --advertised-listener HOST:PORT is honoured
        brokers = client.request(MetadataRequest(topics=None, allow_auto_topic_creation=False,
                                                 include_topic_authorized_operations=False)).brokers
    assert [(b.host, b.port) for b in brokers] == [("127.0.0.1", proxy.port)]
    create_topic(bootstrap, TOPIC, 1)
    acked, errors = [], []

    def on_delivery(err, msg):
        if err is None:
            acked.append((msg.partition(), msg.offset(), msg.value()))
        else:
            errors.append(err)

    def produce(seqs) -> None:
        for seq in seqs:
            producer.produce(TOPIC, value=f"r-{seq:06d}".encode(), partition=0, on_delivery=on_delivery)

    batch, window = FAULTS[fault]
    producer = _producer(bootstrap, {"enable.idempotence": True, "acks": "all", "batch.num.messages": batch})
    produce(range(PHASE))
    assert producer.flush(15) == 0 and len(acked) == PHASE

    proxy.drop_next_produce_ack(window=window, hold=True)
    produce(range(PHASE, 2 * PHASE))
    deadline = time.monotonic() + 15
    while not proxy.cuts:
        assert time.monotonic() < deadline, "no Produce request reached the proxy"
        producer.poll(0.02)
    assert proxy.holding
    assert latest_offset(broker.bootstrap_servers) > len(acked), "no written batch lost its ack"
    if restart == "kill9":
        broker.kill9()
    else:
        assert broker.terminate() == 0
    broker.restart()
    assert (RECOVERED_PHRASE in broker.log_text()) == (restart == "kill9"), broker.log_text()
    proxy.release()
    assert producer.flush(30) == 0
    produce(range(2 * PHASE, 3 * PHASE))
    assert producer.flush(15) == 0
    assert not errors, errors
    assert proxy.cuts == 1

    sent = [f"r-{seq:06d}".encode() for seq in range(3 * PHASE)]
    log = read_all(bootstrap, TOPIC, 1)[0]
    assert [value for _o, _k, value in log] == sent, "each record exactly once, in order"
    assert [offset for offset, _k, _v in log] == list(range(len(sent)))
    assert sorted(acked) == [(0, offset, value) for offset, value in enumerate(sent)]
