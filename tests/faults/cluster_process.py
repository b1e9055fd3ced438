"""A kavka cluster (etcd + N brokers) as real OS processes, for fault-injection tests.

``ProcessCluster`` starts one etcd (``EtcdServer``) and N brokers (``python -m kavka
serve --cluster ...``), each on a fixed loopback port with its own data directory and one
log file per start, so a broker can be SIGKILLed, SIGSTOPped/SIGCONTed or stopped and
started again at the same address with the same data.  Optionally each broker reaches
etcd through its own :class:`TcpProxy` and advertises a proxy in front of its listener
(what the other brokers and Metadata-routed clients use), so a test can cut a broker off
from etcd and from its peers while the test itself still reaches the broker's real port.

Every wait is bounded (``wait_for``); every process is ended by its PID at teardown (the
``process_cluster`` fixture), and brokers and etcd ask the kernel to kill them if the test
process dies first.

Also: numbered-record producer load, reading a partition back through a consumer, the
coordinator FindCoordinator names,
reading a stopped broker's partition from its data directory, and the checks the
cluster fault tests share.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from broker_process import BrokerProcess, free_port, wait_for  # noqa: F401 (re-exported to the tests)

SEQ_WIDTH = 10
_ZERO_UUID = uuid.UUID(int=0)


class ClusterError(AssertionError):
    """A process did not start/stop as expected, or a condition was not reached in time."""


# -- a TCP proxy the test controls ------------------------------------------------------------

class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``; the test can stall or cut it.

    * ``stall(up, down)``: stop forwarding in one or both directions (``up`` = towards the
      target).  Bytes are not read any more, so TCP flow control bounds what queues up;
      nothing is lost or reordered.  New connections are accepted and stalled too.
    * ``cut()``: close every connection and close new ones at once (until ``heal``).
    * ``heal()``: forward again in both directions, accept again.

    All proxies share one asyncio loop in one daemon thread (``ProxyLoop``).  Each direction
    copies at most 64 KiB at a time and waits for the writer to drain, so buffers are bounded.
    """

    CHUNK = 64 << 10

    def __init__(self, loop: "ProxyLoop", target: tuple[str, int], port: int | None = None) -> None:
        self.loop = loop
        self.target = target
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self._server: asyncio.base_events.Server | None = None
        self._up: asyncio.Event | None = None
        self._down: asyncio.Event | None = None
        self._refusing = False
        self._conns: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]] = set()
        self.accepted = 0
        loop.run(self._start())

    async def _start(self) -> None:
        self._up, self._down = asyncio.Event(), asyncio.Event()
        self._up.set()
        self._down.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port, reuse_address=True)

    async def _accept(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._refusing:
            c_writer.transport.abort()
            return
        try:
            t_reader, t_writer = await asyncio.wait_for(asyncio.open_connection(*self.target), 5.0)
        except (OSError, asyncio.TimeoutError):
            c_writer.transport.abort()
            return
        if self._refusing:  # cut while connecting
            c_writer.transport.abort()
            t_writer.transport.abort()
            return
        pair = (c_writer, t_writer)
        self._conns.add(pair)
        try:
            await asyncio.gather(self._pipe(c_reader, t_writer, self._up),
                                 self._pipe(t_reader, c_writer, self._down), return_exceptions=True)
        finally:
            self._conns.discard(pair)
            c_writer.transport.abort()
            t_writer.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gate: asyncio.Event) -> None:
        try:
            while True:
                await gate.wait()
                data = await reader.read(self.CHUNK)
                if not data:
                    break
                await gate.wait()  # stalled meanwhile: hold this chunk (bounded: one chunk)
                writer.write(data)
                await writer.drain()
        finally:
            # one side ended: end both (a half-open relay would hide a broken peer)
            writer.transport.abort()

    # -- control (from the test's thread) ------------------------------------------------------

    def stall(self, up: bool = True, down: bool = True) -> None:
        def do():
            if up:
                self._up.clear()
            if down:
                self._down.clear()
        self.loop.call(do)

    def cut(self) -> None:
        def do():
            self._refusing = True
            for c_writer, t_writer in list(self._conns):
                c_writer.transport.abort()
                if t_writer is not None:
                    t_writer.transport.abort()
            self._conns.clear()
        self.loop.call(do)

    def heal(self) -> None:
        def do():
            self._refusing = False
            self._up.set()
            self._down.set()
        self.loop.call(do)

    @property
    def connections(self) -> int:
        return len(self._conns)

    def close(self) -> None:
        async def do():
            self.cut()
            if self._server is not None:
                self._server.close()
        with contextlib.suppress(Exception):
            self.loop.run(do())


class ProxyLoop:
    """One asyncio loop in a daemon thread for every TcpProxy of a test."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxies", daemon=True)
        self._thread.start()

    def run(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def call(self, fn, timeout: float = 10.0):
        async def wrapper():
            return fn()
        if threading.current_thread() is self._thread:
            return fn()
        return self.run(wrapper(), timeout)

    def close(self) -> None:
        async def cancel_all():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._loop.is_running():
            with contextlib.suppress(Exception):
                self.run(cancel_all(), 5.0)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)


# -- one broker process -------------------------------------------------------------------------

class ClusterBroker(BrokerProcess):
    """One broker of a ProcessCluster (BrokerProcess in cluster mode).  ``address`` is its
    real listener (what the test uses); ``advertised`` what it tells others (its proxy, if any)."""

    Error = ClusterError

    def __init__(self, cluster: "ProcessCluster", broker_id: int, data_dir: Path, log_dir: Path,
                 port: int, etcd_proxy: TcpProxy | None, listener_proxy: TcpProxy | None) -> None:
        super().__init__(data_dir, port=port, log_dir=log_dir,
                         advertised=listener_proxy.address if listener_proxy else None,
                         overrides=cluster.overrides)
        self.cluster = cluster
        self.broker_id = broker_id
        self.etcd_proxy = etcd_proxy
        self.listener_proxy = listener_proxy

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def reachable(self) -> bool:
        """Running and not paused: it can answer requests."""
        return self.running and not self.paused

    def all_logs(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.logs)

    def name(self) -> str:
        return f"broker {self.broker_id}"

    def command(self) -> list[str]:
        c = self.cluster
        etcd = self.etcd_proxy.address if self.etcd_proxy else c.etcd.endpoint
        return super().command() + ["--broker-id", str(self.broker_id), "--cluster", f"etcd://{etcd}",
                                    "--cluster-id", c.cluster_id, "--session-timeout-ms", str(c.session_timeout_ms)]

    def start(self, timeout: float = 30.0, wait: bool = True) -> "ClusterBroker":
        return super().start(timeout, wait)

    def restart(self, timeout: float = 30.0) -> "ClusterBroker":
        return super().restart(timeout)


# -- the cluster ---------------------------------------------------------------------------------

DEFAULT_OVERRIDES = {
    "replica.lag.time.max.ms": 3000,
    "offsets.topic.num.partitions": 3,   # 50 replicated partitions per broker are costly on 2 cores
    "num.partitions": 1,
}


@dataclass
class PartitionInfo:
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    leader_epoch: int = -1


class ProcessCluster:
    def __init__(self, root: Path, size: int = 3, *, proxies: bool = False, session_timeout_ms: int = 2000,
                 overrides: dict | None = None, cluster_id: str = "faults") -> None:
        from kavka.cluster.etcd_server import EtcdServer
        self.root = Path(root)
        self.session_timeout_ms = session_timeout_ms
        self.cluster_id = cluster_id
        self.overrides = {k: str(v) for k, v in {**DEFAULT_OVERRIDES, **(overrides or {})}.items()}
        self.etcd = EtcdServer(self.root / "etcd")
        self.proxy_loop: ProxyLoop | None = ProxyLoop() if proxies else None
        self.brokers: dict[int, ClusterBroker] = {}
        self._size = size
        self._proxies = proxies

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self, timeout: float = 40.0) -> "ProcessCluster":
        self.etcd.start()
        for i in range(1, self._size + 1):
            self._new_broker(i)
        for b in self.brokers.values():
            b.start(wait=False)
        for b in self.brokers.values():
            b.wait_ready(timeout)
        wait_for(self.settled, timeout, "every broker registered and a controller, in every broker's view")
        return self

    def _new_broker(self, broker_id: int) -> ClusterBroker:
        port = free_port()
        etcd_proxy = listener_proxy = None
        if self._proxies:
            etcd_proxy = TcpProxy(self.proxy_loop, ("127.0.0.1", self.etcd.client_port))
            listener_proxy = TcpProxy(self.proxy_loop, ("127.0.0.1", port))
        self.brokers[broker_id] = ClusterBroker(self, broker_id, self.root / f"broker-{broker_id}", self.root / "logs",
                                                port, etcd_proxy, listener_proxy)
        return self.brokers[broker_id]

    def add_broker(self, broker_id: int, timeout: float = 40.0) -> ClusterBroker:
        """A new, empty broker joining the running cluster (a scale-out); returned once every
        broker lists it."""
        broker = self._new_broker(broker_id).start(timeout)
        wait_for(self.settled, timeout, f"broker {broker_id} in every broker's view")
        return broker

    def settled(self) -> bool:
        """Every reachable broker's Metadata lists every broker and the same live controller."""
        everyone, controllers = set(self.brokers), set()
        for b in self.reachable():
            try:
                md = self.metadata(b, [])
            except Exception:
                return False
            if {x.node_id for x in md.brokers} != everyone:
                return False
            controllers.add(md.controller_id)
        return len(controllers) == 1 and controllers.pop() in everyone

    def stop(self) -> None:
        """SIGTERM every broker by PID (SIGKILL if it hangs), close proxies, stop etcd."""
        for b in self.brokers.values():   # a broker cut off from etcd would shut down slowly
            for proxy in (b.etcd_proxy, b.listener_proxy):
                if proxy is not None:
                    with contextlib.suppress(Exception):
                        proxy.heal()
        for b in self.brokers.values():
            if b.running:
                try:
                    b.terminate(10)
                except Exception:
                    b.cleanup()
        for b in self.brokers.values():
            b.cleanup()
            for proxy in (b.etcd_proxy, b.listener_proxy):
                if proxy is not None:
                    proxy.close()
        if self.proxy_loop is not None:
            self.proxy_loop.close()
        self.etcd.stop()

    def terminate_all(self) -> None:
        """Clean shutdown of every running broker (etcd keeps running)."""
        for b in self.brokers.values():
            if b.running:
                assert b.terminate() == 0, b.log_text()[-3000:]

    # -- addresses ---------------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """Real listeners of every broker (librdkafka skips the dead ones)."""
        return ",".join(b.address for b in self.brokers.values())

    @property
    def advertised_bootstrap(self) -> str:
        """Advertised listeners (the proxies, if any): a client that a cut proxy also cuts off."""
        return ",".join(b.advertised or b.address for b in self.brokers.values())

    def reachable(self) -> list[ClusterBroker]:
        return [b for b in self.brokers.values() if b.reachable]

    # -- metadata ----------------------------------------------------------------------------------

    def metadata(self, broker: ClusterBroker, topics: list[str] | None = None, timeout: float = 3.0):
        """A Metadata v12 answer of one broker (its own view), through its real port."""
        from kio.schema.metadata.v12.request import MetadataRequest, MetadataRequestTopic

        from kavka.client import Client
        req = MetadataRequest(
            topics=None if topics is None else tuple(MetadataRequestTopic(topic_id=_ZERO_UUID, name=t) for t in topics),
            allow_auto_topic_creation=False, include_topic_authorized_operations=False)
        with Client(broker.address, timeout=timeout) as client:
            return client.request(req)

    def partition_view(self, broker: ClusterBroker, topic: str, partition: int = 0) -> PartitionInfo | None:
        try:
            md = self.metadata(broker, [topic])
        except Exception:
            return None
        for t in md.topics:
            if t.name == topic and t.error_code == 0:
                for p in t.partitions:
                    if p.partition_index == partition and p.error_code in (0, 9):  # 9: replica not available
                        return PartitionInfo(p.leader_id, tuple(p.replica_nodes), tuple(p.isr_nodes),
                                             p.leader_epoch)
        return None

    def live_brokers_seen(self) -> set[int]:
        for b in self.reachable():
            try:
                return {x.node_id for x in self.metadata(b).brokers}
            except Exception:
                continue
        return set()

    def controller(self) -> int | None:
        """The controller id every reachable broker reports alike (a reachable one), or None."""
        ids = set()
        for b in self.reachable():
            try:
                ids.add(self.metadata(b, []).controller_id)
            except Exception:
                return None
        if len(ids) != 1:
            return None
        c = ids.pop()
        return c if c in self.brokers and self.brokers[c].reachable else None

    def agreed(self, topic: str, partition: int = 0, among: list[ClusterBroker] | None = None) -> PartitionInfo | None:
        """The partition's state if every reachable broker (or those in ``among``) reports the
        same leader, a live one; else None."""
        views = []
        for b in among if among is not None else self.reachable():
            v = self.partition_view(b, topic, partition)
            if v is None:
                return None
            views.append(v)
        if not views or len({(v.leader, v.leader_epoch) for v in views}) != 1:
            return None
        v = views[0]
        leader = self.brokers.get(v.leader)
        return v if leader is not None and leader.reachable else None

    def leader_of(self, topic: str, partition: int = 0) -> int | None:
        """The leader as confluent-kafka's AdminClient sees it (Metadata of some live broker)."""
        from confluent_kafka.admin import AdminClient
        admin = AdminClient({"bootstrap.servers": ",".join(b.address for b in self.reachable())})
        md = admin.list_topics(topic, timeout=5)
        p = md.topics[topic].partitions.get(partition)
        return None if p is None or p.leader < 0 else p.leader

    def wait_leader(self, topic: str, partition: int = 0, timeout: float = 20.0, *, not_in=(),
                    among: list[ClusterBroker] | None = None) -> PartitionInfo:
        def check():
            v = self.agreed(topic, partition, among)
            return v if v is not None and v.leader not in not_in else None
        return wait_for(check, timeout, f"an agreed leader of {topic}-{partition} not in {list(not_in)}", 0.05)

    def wait_isr(self, topic: str, partition: int = 0, size: int | None = None, timeout: float = 20.0) -> PartitionInfo:
        size = size or len(self.brokers)

        def check():
            v = self.agreed(topic, partition)
            return v if v is not None and len(v.isr) >= size else None
        return wait_for(check, timeout, f"ISR of {topic}-{partition} with {size} members", 0.1)

    # -- topics --------------------------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int = 1, replication_factor: int = 3, config: dict | None = None,
                     assignment: list[list[int]] | None = None, timeout: float = 20.0) -> None:
        """CreateTopics (to any broker: it forwards to the controller), then wait for leaders.
        With ``assignment`` (replicas per partition, preferred leader first) a raw CreateTopics
        is sent, since confluent-kafka's NewTopic refuses a replica assignment here."""
        if assignment:
            self._create_assigned(name, assignment, config or {})
        else:
            from confluent_kafka.admin import AdminClient, NewTopic
            admin = AdminClient({"bootstrap.servers": self.bootstrap})
            topic = NewTopic(name, partitions, replication_factor, config=config or {})
            admin.create_topics([topic], operation_timeout=10)[name].result(timeout)
        for p in range(len(assignment) if assignment else partitions):
            self.wait_leader(name, p, timeout)

    def _create_assigned(self, name: str, assignment: list[list[int]], config: dict) -> None:
        from kio.schema.create_topics.v5 import request as q

        from kavka.api.responses import make
        from kavka.client import Client
        topic = make(q.CreatableTopic, name=name, num_partitions=-1, replication_factor=-1,
                     assignments=tuple(make(q.CreatableReplicaAssignment, partition_index=p, broker_ids=tuple(r))
                                       for p, r in enumerate(assignment)),
                     configs=tuple(make(q.CreatableTopicConfig, name=k, value=str(v)) for k, v in config.items()))
        body = make(q.CreateTopicsRequest, topics=(topic,), timeout=datetime.timedelta(seconds=10),
                    validate_only=False)
        with Client(self.reachable()[0].address, timeout=20) as client:
            result = client.request(body).topics[0]
        if result.error_code != 0:
            raise ClusterError(f"CreateTopics {name}: {result.error_code} {result.error_message}")




@pytest.fixture
def process_cluster(tmp_path):
    """``process_cluster(size=3, proxies=False, session_timeout_ms=2000, overrides=None)``
    starts a ProcessCluster; everything it started is stopped by PID at teardown."""
    made: list[ProcessCluster] = []

    def make(size: int = 3, **kwargs) -> ProcessCluster:
        cluster = ProcessCluster(tmp_path / f"cluster-{len(made)}", size, **kwargs)
        made.append(cluster)
        return cluster.start()

    yield make
    for cluster in made:
        cluster.stop()


# -- numbered producer load ---------------------------------------------------------------------

def seq_value(seq: int) -> bytes:
    return f"{seq:0{SEQ_WIDTH}d}".encode()


def seq_of(value: bytes) -> int | None:
    try:
        return int(value[:SEQ_WIDTH])
    except (TypeError, ValueError):
        return None


class SeqProducer(threading.Thread):
    """One confluent-kafka producer writing values ``seq_value(0), seq_value(1), ...`` to one
    partition at a bounded rate until ``finish``; keeps every delivery report with the
    monotonic time it was seen."""

    def __init__(self, bootstrap: str, topic: str, partition: int = 0, rate: int = 1000,
                 conf: dict | None = None) -> None:
        super().__init__(name="seq-producer", daemon=True)
        self.topic, self.partition, self.rate = topic, partition, rate
        self.conf = {"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                     "linger.ms": 5, "message.timeout.ms": 120_000, "request.timeout.ms": 5000,
                     # a frozen or cut-off leader never answers: give up on in-flight requests
                     # (and retry them at the new leader) after 5 s rather than 60 s
                     "socket.timeout.ms": 5000,
                     "reconnect.backoff.ms": 20, "reconnect.backoff.max.ms": 250,
                     "retry.backoff.ms": 50, "retry.backoff.max.ms": 250,
                     "topic.metadata.refresh.interval.ms": 1000, **(conf or {})}
        self.acked: list[tuple[int, int, float]] = []      # (offset, seq, seen at)
        self.failed: list[tuple[int, str]] = []            # (seq, error)
        self.produced = 0
        self.errors: list[str] = []                        # error callbacks (informational)
        self._stop_event = threading.Event()
        self._flush_timeout = 60.0
        self.remaining = -1
        self.error: BaseException | None = None
        self.lock = threading.Lock()

    def _report(self, err, msg) -> None:
        seq = seq_of(msg.value())
        if err is None:
            with self.lock:
                self.acked.append((msg.offset(), seq, time.monotonic()))
        else:
            self.failed.append((seq, str(err)))

    def _on_error(self, err) -> None:
        self.errors.append(str(err))

    def run(self) -> None:
        from confluent_kafka import Producer
        try:
            producer = Producer({**self.conf, "error_cb": self._on_error})
            started = time.monotonic()
            seq = 0
            while not self._stop_event.is_set():
                due = int((time.monotonic() - started) * self.rate) + 1
                while seq < due:
                    try:
                        producer.produce(self.topic, value=seq_value(seq), partition=self.partition,
                                         on_delivery=self._report)
                    except BufferError:
                        break
                    seq += 1
                    self.produced = seq
                producer.poll(0.005)
            self.remaining = producer.flush(self._flush_timeout)
        except BaseException as exc:
            self.error = exc

    def acks_after(self, t: float) -> list[tuple[int, int, float]]:
        with self.lock:
            return [a for a in self.acked if a[2] > t]

    def ack_count(self) -> int:
        return len(self.acked)

    def finish(self, flush_timeout: float = 60.0, check: bool = True) -> None:
        """Stop producing and wait (bounded) for every delivery report; ``check=False``
        (after a failure elsewhere) only stops it, without raising."""
        self._flush_timeout = flush_timeout
        self._stop_event.set()
        self.join(flush_timeout + 15)
        if not check:
            return
        assert not self.is_alive(), "producer thread did not finish"
        if self.error is not None:
            raise self.error
        assert self.remaining == 0, f"{self.remaining} records without a delivery report"
        assert len(self.acked) + len(self.failed) == self.produced


# -- reading back ---------------------------------------------------------------------------------

def find_coordinator(cluster: ProcessCluster, key: str, key_type: int = 0) -> int | None:
    """FindCoordinator (v4) of a group (key type 0) or transactional id (1), answered alike by
    every reachable broker: the coordinator's id, if it is reachable."""
    from kio.schema.find_coordinator.v4 import request as q

    from kavka.api.responses import make
    from kavka.client import Client
    answers = set()
    for b in cluster.reachable():
        try:
            with Client(b.address, timeout=3) as client:
                r = client.request(make(q.FindCoordinatorRequest, key_type=key_type, coordinator_keys=(key,)))
        except Exception:
            return None
        c = r.coordinators[0]
        if c.error_code != 0:
            return None
        answers.add(c.node_id)
    if len(answers) != 1:
        return None
    node = answers.pop()
    return node if node in cluster.brokers and cluster.brokers[node].reachable else None


def read_partition(bootstrap: str, topic: str, partition: int = 0, timeout: float = 30.0) -> list[tuple[int, bytes]]:
    """Every record from offset 0 to the high watermark now, through a consumer (assign)."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "faults-reader", "enable.auto.commit": False,
                         "enable.partition.eof": True, "auto.offset.reset": "earliest"})
    got: list[tuple[int, bytes]] = []
    try:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if high <= 0:
            return got
        consumer.assign([TopicPartition(topic, partition, 0)])
        deadline = time.monotonic() + timeout
        while not got or got[-1][0] < high - 1:
            if time.monotonic() > deadline:
                raise ClusterError(f"timed out reading {topic}-{partition}: high {high}, "
                                   f"read up to {got[-1][0] if got else None}")
            for msg in consumer.consume(num_messages=5000, timeout=0.2):
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise ClusterError(f"consume error: {msg.error()}")
                got.append((msg.offset(), msg.value()))
    finally:
        consumer.close()
    return [r for r in got if r[0] < high]


def read_data_dir(data_dir: Path, topic: str, partition: int = 0) -> list[tuple[int, bytes]]:
    """(offset, value) of every record in a *stopped* broker's partition directory."""
    from kavka.protocol.record_codec import decode_records
    from kavka.protocol.records import iter_batches
    pdir = Path(data_dir) / f"{topic}-{partition}"
    out: list[tuple[int, bytes]] = []
    for segment in sorted(pdir.glob("*.log"), key=lambda p: int(p.name.split(".")[0])):
        data = segment.read_bytes()
        for pos, header in iter_batches(data):
            if header.is_control:
                continue
            out.extend((r.offset, r.value) for r in decode_records(data, pos))
    return out


# -- the checks ----------------------------------------------------------------------------------

def check_sequence_log(log: list[tuple[int, bytes]], producer: SeqProducer) -> dict:
    """What a single idempotent producer may leave in a partition:

    * offsets are dense from 0;
    * every acknowledged record is stored exactly once, at the offset its ack named;
    * no sequence number is stored twice, and the sequence numbers read in offset order
      are strictly increasing (no duplicate, no reordering); a record that was never
      acknowledged may be missing or present, but only in its place in that order;
    * nothing is stored that was not produced.
    Returns a few figures."""
    offsets = [o for o, _v in log]
    assert offsets == list(range(len(log))), "offsets are not dense from 0"
    seqs = [seq_of(v) for _o, v in log]
    assert None not in seqs, "a record that is not a sequence number"
    dup = len(seqs) - len(set(seqs))
    assert dup == 0, f"{dup} sequence numbers stored twice"
    disorder = [(offsets[i], seqs[i - 1], seqs[i]) for i in range(1, len(seqs)) if seqs[i] <= seqs[i - 1]]
    assert not disorder, f"{len(disorder)} records out of order, e.g. (offset, previous, this) {disorder[:3]}"
    assert not seqs or seqs[-1] < producer.produced, "a record that was never produced"
    stored = dict(zip(offsets, seqs))
    ack_offsets = [o for o, _s, _t in producer.acked]
    assert len(ack_offsets) == len(set(ack_offsets)), "two acks name the same offset"
    wrong = [(o, s, stored.get(o)) for o, s, _t in producer.acked if stored.get(o) != s]
    assert not wrong, (f"{len(wrong)} of {len(producer.acked)} acknowledged records are not at their acked "
                       f"offset, e.g. (offset, acked seq, stored seq) {wrong[:5]}")
    acked_seqs = {s for _o, s, _t in producer.acked}
    return {"stored": len(log), "acked": len(producer.acked), "failed": len(producer.failed),
            "stored_unacked": len([s for s in seqs if s not in acked_seqs])}


def check_replicas_identical(cluster: ProcessCluster, topic: str, partition: int = 0,
                             replicas: list[int] | None = None) -> list[tuple[int, bytes]]:
    """Stop every broker cleanly, read the partition from each data dir (of ``replicas``, by
    default every broker): all must be equal."""
    cluster.terminate_all()
    logs = {i: read_data_dir(b.data_dir, topic, partition) for i, b in cluster.brokers.items()
            if replicas is None or i in replicas}
    first = next(iter(logs.values()))
    for i, entries in logs.items():
        if entries != first:
            n = next((k for k, (a, b) in enumerate(zip(entries, first)) if a != b), min(len(entries), len(first)))
            raise AssertionError(f"replicas differ: broker {i} holds {len(entries)} records, broker "
                                 f"{next(iter(logs))} {len(first)}; first difference at index {n}: "
                                 f"{entries[n:n + 2]} vs {first[n:n + 2]}")
    return first


def produce_raw(address: str, topic: str, values: list[bytes], acks: int, partition: int = 0,
                timeout_ms: int = 3000) -> tuple[int, int]:
    """One Produce v9 straight to ``address`` (not routed): (error code, base offset).
    A connection that breaks or stays silent counts as error -1."""
    from kio.schema.produce.v9 import request as q

    from kavka.api.responses import make
    from kavka.client import Client, ClientError
    from kavka.protocol.record_codec import encode_batch
    batch = encode_batch([(None, v, int(time.time() * 1000), ()) for v in values])
    body = make(q.ProduceRequest, transactional_id=None, acks=acks,
                timeout=datetime.timedelta(milliseconds=timeout_ms), topic_data=(
                    make(q.TopicProduceData, name=topic, partition_data=(
                        make(q.PartitionProduceData, index=partition, records=batch),)),))
    try:
        with Client(address, timeout=timeout_ms / 1000 + 5) as client:
            r = client.request(body)
    except (ClientError, OSError):
        return -1, -1
    p = r.responses[0].partition_responses[0]
    return p.error_code, p.base_offset


@dataclass
class Timeline:
    """What a fault test measured, printed at the end."""
    events: list[str] = field(default_factory=list)
    failover_s: list[float] = field(default_factory=list)

    def note(self, text: str) -> None:
        self.events.append(text)
        print(text, flush=True)
