"""Three in-process brokers replicating one another, with an in-memory store for the
partition states (what etcd holds in cluster mode), so the replication path —
follower fetches, the high watermark, acks=all, ISR changes, truncation — is
tested on its own, over real sockets, with the real Fetch and Produce handlers.

``LocalStore`` keeps one Assignment per partition with a version; ``propose_isr``
is the leader's compare-and-swap; ``set`` is what the controller would write.
Every change is applied on each broker's own event loop, as a watch would.
"""

from __future__ import annotations

import threading
import time
import uuid

from kavka.api.responses import make
from kavka.client import Client
from kavka.protocol.record_codec import encode_batch
from kavka.replication.manager import Assignment, ReplicaManager


class LocalStore:
    def __init__(self) -> None:
        self.states: dict[tuple[str, int], Assignment] = {}
        self.managers: dict[int, tuple] = {}     # broker id -> (broker, manager)
        self.lock = threading.Lock()
        self.refused = 0
        self.history: list[tuple] = []   # (partition, ISR) of every accepted change, in order

    def set(self, tp, replicas, leader, leader_epoch, isr) -> Assignment:
        with self.lock:
            old = self.states.get(tp)
            a = Assignment(tuple(replicas), leader, leader_epoch, tuple(isr), (old.version + 1) if old else 1)
            self.states[tp] = a
        self._publish(tp, a)
        return a

    async def propose_isr(self, tp, isr, leader_epoch: int, version: int):
        with self.lock:
            old = self.states[tp]
            if old.version != version or old.leader_epoch != leader_epoch:
                self.refused += 1
                return None
            a = Assignment(old.replicas, old.leader, old.leader_epoch, tuple(isr), old.version + 1)
            self.states[tp] = a
            self.history.append((tp, a.isr))
        self._publish(tp, a)
        return a.version

    def _publish(self, tp, a) -> None:
        for broker, manager in list(self.managers.values()):
            if broker._loop is not None and broker._loop.is_running():
                broker._loop.call_soon_threadsafe(manager.apply, tp, a)


def attach(store: LocalStore, brokers: dict, lag_max_ms: int = 1000, only=None) -> None:
    """Give each broker (or those in ``only``) a ReplicaManager wired to ``store`` and to
    the others' addresses (looked up in ``brokers`` at each connect), with the store's
    current states applied."""
    def address_of(broker_id):
        b = brokers.get(broker_id)
        return None if b is None or b.port is None else ("127.0.0.1", b.port)

    for broker_id in only or list(brokers):
        broker = brokers[broker_id]

        def make_manager(broker_id=broker_id, broker=broker):
            manager = ReplicaManager(broker_id, broker.logs, broker._clock, address_of=address_of,
                                     propose_isr=store.propose_isr, lag_max_ms=lag_max_ms,
                                     fetch_max_wait_ms=100, backoff_ms=50)
            manager.start()
            broker.context.replicas = manager
            for tp, a in list(store.states.items()):
                manager.apply(tp, a)
            return manager
        store.managers[broker_id] = (broker, broker.call(make_manager))


def create_topic(brokers: dict, name: str, partitions: int = 1, config: dict | None = None) -> uuid.UUID:
    topic_id = uuid.uuid4()
    for broker in brokers.values():
        broker.call(lambda b=broker: b.logs.create_topic(name, partitions, config or {}, topic_id=topic_id))
    return topic_id


def produce(broker, topic: str, values, acks: int = -1, partition: int = 0, timeout_ms: int = 5000):
    """One Produce v9 of ``values``: (error code, base offset)."""
    from kio.schema.produce.v9 import request as q
    batch = encode_batch([(None, v, int(time.time() * 1000), ()) for v in values])
    body = make(q.ProduceRequest, transactional_id=None, acks=acks, timeout=_ms(timeout_ms), topic_data=(
        make(q.TopicProduceData, name=topic, partition_data=(
            make(q.PartitionProduceData, index=partition, records=batch),)),))
    with Client(broker.bootstrap_servers, timeout=timeout_ms / 1000 + 10) as client:
        r = client.request(body)
    if r is None:
        return 0, -1
    p = r.responses[0].partition_responses[0]
    return p.error_code, p.base_offset


def consumer_fetch(broker, topic: str, offset: int = 0, partition: int = 0):
    """One consumer Fetch v12: (error code, high watermark, records bytes)."""
    from kio.schema.fetch.v12 import request as q
    body = make(q.FetchRequest, cluster_id=None, replica_id=-1, max_wait=_ms(0), min_bytes=0,
                max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1, topics=(
                    make(q.FetchTopic, topic=topic, partitions=(make(
                        q.FetchPartition, partition=partition, current_leader_epoch=-1, fetch_offset=offset,
                        last_fetched_epoch=-1, log_start_offset=-1, partition_max_bytes=1 << 20),)),),
                forgotten_topics_data=(), rack_id="")
    with Client(broker.bootstrap_servers) as client:
        p = client.request(body).responses[0].partitions[0]
    return p.error_code, p.high_watermark, p.records


def log_of(broker, topic: str, partition: int = 0):
    return broker.logs.partition(topic, partition).log


def stored(broker, topic: str, partition: int = 0) -> bytes:
    """Every byte of the partition's log, read on the broker's loop."""
    def read():
        plog = log_of(broker, topic, partition)
        out, offset = [], plog.log_start_offset
        while offset < plog.log_end_offset:
            r = plog.read(offset, 1 << 20, min_one_batch=True)
            data = b"".join(s.read() for s in r.slices)
            if not data:
                break
            out.append(data)
            from kavka.protocol.records import iter_batches
            offset = max(h.next_offset for _, h in iter_batches(data))
        return b"".join(out)
    return broker.call(read)


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"{what} not reached within {timeout}s")


def _ms(n: int):
    import datetime
    return datetime.timedelta(milliseconds=n)
