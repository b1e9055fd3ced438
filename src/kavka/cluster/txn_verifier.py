"""Transaction verification in a cluster (KIP-890): a partition leader asks the broker that
coordinates the transactional id, as Kafka's AddPartitionsToTxnManager does.

:class:`ClusterTxnVerifier` is the cluster's ``BrokerContext.txn_verifier``
(kavka.txn.verifier).  The coordinator of an id is the leader of its ``__transaction_state``
partition in this broker's view; when that is this broker, its own coordinator answers
(``LocalTxnVerifier``); otherwise the question goes to that broker as AddPartitionsToTxn v5,
the broker form (several transactional ids per request, ``verify_only`` true for a question,
false for a transactions-V2 implicit add), over one connection per coordinator broker
(``kavka.replication.peer``) with one request in flight at a time:

* checks arriving while a request is in flight wait in that broker's next batch, one entry per
  transactional id; the same (id, partition) asked again by the same producer and epoch shares
  the waiting answer (de-duplication; never an answer already on its way, which was asked
  before the new check's VerificationGuard existed).  A waiting entry of another producer epoch
  or mode for the same id gives way as in Kafka: the older epoch is answered
  INVALID_PRODUCER_EPOCH, an equal one NETWORK_EXCEPTION (the producer retries);
* at most ``max_pending`` partitions wait per broker; more are answered NETWORK_EXCEPTION at
  once, so a slow coordinator never grows an unbounded queue;
* a request is bounded by ``timeout_s`` (Kafka's ``request.timeout.ms``): a broker that cannot
  be reached, closes the connection or does not answer in time answers NETWORK_EXCEPTION for
  every partition of the batch, and the connection is opened again for the next one;
* no live leader of the id's partition: COORDINATOR_NOT_AVAILABLE; the whole request refused
  with CLUSTER_AUTHORIZATION_FAILED: INVALID_TXN_STATE; another whole-request error: that error
  for each partition; otherwise each partition's own answer (NOT_COORDINATOR when the
  coordinator moved meanwhile: the produce path answers it as the retriable
  NOT_ENOUGH_REPLICAS, and the retry resolves the coordinator again from the view).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Union

from kavka.metadata.model import BrokerEndpoint
from kavka.protocol.builders import make
from kavka.protocol.errors import ErrorCode
from kavka.replication.peer import Peer, PeerError
from kavka.txn.model import TopicPartition
from kavka.txn.verifier import TxnVerifier, Verdicts

log = logging.getLogger("kavka.txn")

REQUEST_TIMEOUT_S = 30.0   # Kafka's request.timeout.ms for the AddPartitionsToTxnManager
MAX_PENDING = 10_000       # partitions waiting per coordinator broker
UNREACHABLE = ErrorCode.network_exception

Connect = Callable[[str, int], Awaitable[Any]]   # -> a Peer-like object: request(obj, timeout), close()


@dataclass
class _Txn:
    """One transactional id's checks in the next request to its coordinator."""
    producer_id: int
    producer_epoch: int
    add: bool
    partitions: dict[TopicPartition, asyncio.Future] = field(default_factory=dict)


class _Channel:
    """The checks bound for one coordinator broker, and the connection to it."""

    def __init__(self, owner: "ClusterTxnVerifier", broker_id: int, address: tuple[str, int]) -> None:
        self.owner = owner
        self.broker_id = broker_id
        self.address = address
        self.pending: dict[str, _Txn] = {}
        self.waiting = 0   # partitions in ``pending``
        self.peer: Any = None
        self.sender: asyncio.Task | None = None

    def enqueue(self, transactional_id: str, producer_id: int, producer_epoch: int,
                partitions: list[TopicPartition], add: bool) -> Union[Verdicts, Awaitable[Verdicts]]:
        if self.waiting + len(partitions) > self.owner.max_pending:
            return dict.fromkeys(partitions, UNREACHABLE)
        txn = self.pending.get(transactional_id)
        if txn is not None and (txn.producer_id, txn.producer_epoch, txn.add) != (producer_id, producer_epoch, add):
            if producer_epoch < txn.producer_epoch:
                return dict.fromkeys(partitions, ErrorCode.invalid_producer_epoch)
            self._drop(transactional_id, ErrorCode.invalid_producer_epoch if txn.producer_epoch < producer_epoch
                       else UNREACHABLE)
            txn = None
        if txn is None:
            txn = self.pending[transactional_id] = _Txn(producer_id, producer_epoch, add)
        loop = asyncio.get_running_loop()
        futures = []
        for tp in partitions:
            future = txn.partitions.get(tp)
            if future is None:
                future = txn.partitions[tp] = loop.create_future()
                self.waiting += 1
            futures.append(future)
        if self.sender is None:
            self.sender = loop.create_task(self._send_all(), name=f"kavka-txn-verify-{self.broker_id}")
        return _collect(partitions, futures)

    def _drop(self, transactional_id: str, error: ErrorCode) -> None:
        txn = self.pending.pop(transactional_id)
        self.waiting -= len(txn.partitions)
        _answer(txn, {}, error)

    async def _send_all(self) -> None:
        try:
            while self.pending:
                batch, self.pending, self.waiting = self.pending, {}, 0
                answers: dict[str, dict[TopicPartition, ErrorCode]] = {}
                try:
                    answers = await self._send(batch)
                except Exception:   # a bug must not leave the produce requests waiting
                    log.exception("verifying transactions with broker %d failed", self.broker_id)
                finally:   # cancelled too: every check of the batch gets an answer
                    for tid, txn in batch.items():
                        _answer(txn, answers.get(tid, {}), UNREACHABLE)
        finally:
            self.sender = None

    async def _send(self, batch: dict[str, _Txn]) -> dict[str, dict[TopicPartition, ErrorCode]]:
        try:
            response = await asyncio.wait_for(self._exchange(_request(batch)), self.owner.timeout_s)
        except (PeerError, asyncio.TimeoutError) as exc:
            log.info("verifying %d transactions with broker %d: %s", len(batch), self.broker_id,
                     type(exc).__name__ if isinstance(exc, asyncio.TimeoutError) else exc)
            self.close()
            return {tid: dict.fromkeys(txn.partitions, UNREACHABLE) for tid, txn in batch.items()}
        return _answers(response, batch)

    async def _exchange(self, request) -> Any:
        if self.peer is None:
            self.peer = await self.owner.connect(*self.address)
        return await self.peer.request(request, self.owner.timeout_s)

    def close(self) -> None:
        if self.peer is not None:
            self.peer.close()
            self.peer = None

    def cancel(self) -> None:
        """Stop: the connection closes, everything waiting is answered NETWORK_EXCEPTION."""
        if self.sender is not None:
            self.sender.cancel()
        for tid in list(self.pending):
            self._drop(tid, UNREACHABLE)
        self.close()


class ClusterTxnVerifier:
    """``verify`` by the coordinator of the id: this broker's own, or another's over the network."""

    def __init__(self, broker_id: int, coordinator_of: Callable[[str], BrokerEndpoint | None],
                 local: Callable[[], TxnVerifier | None], connect: Connect,
                 timeout_s: float = REQUEST_TIMEOUT_S, max_pending: int = MAX_PENDING) -> None:
        """``coordinator_of(transactional_id)``: the leader of its ``__transaction_state``
        partition (kavka.cluster.metadata); ``local()``: the verifier of this broker's own
        coordinator (None while it has none)."""
        self.broker_id = broker_id
        self.coordinator_of = coordinator_of
        self.local = local
        self.connect = connect
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self._channels: dict[int, _Channel] = {}

    def verify(self, transactional_id: str, producer_id: int, producer_epoch: int,
               partitions: Iterable[TopicPartition], add: bool) -> Union[Verdicts, Awaitable[Verdicts]]:
        wanted = list(partitions)
        endpoint = self.coordinator_of(transactional_id)
        if endpoint is None:
            return dict.fromkeys(wanted, ErrorCode.coordinator_not_available)
        if endpoint.broker_id == self.broker_id:
            local = self.local()
            if local is None:
                return dict.fromkeys(wanted, ErrorCode.coordinator_not_available)
            return local.verify(transactional_id, producer_id, producer_epoch, wanted, add)
        return self._channel(endpoint).enqueue(transactional_id, producer_id, producer_epoch, wanted, add)

    def close(self) -> None:
        for channel in self._channels.values():
            channel.cancel()
        self._channels.clear()

    def _channel(self, endpoint: BrokerEndpoint) -> _Channel:
        address = (endpoint.host, endpoint.port)
        channel = self._channels.get(endpoint.broker_id)
        if channel is not None and channel.address != address:
            channel.close()   # the broker came back elsewhere: its next request connects there
            channel.address = address
        if channel is None:
            channel = self._channels[endpoint.broker_id] = _Channel(self, endpoint.broker_id, address)
        return channel


def peer_connector(client_id: str, security=None) -> Connect:
    """Connections to other brokers as ``client_id``, secured by ``security`` (kavka.replication.peer)."""
    async def connect(host: str, port: int) -> Peer:
        return await Peer.connect(host, port, client_id=client_id, security=security)
    return connect


async def _collect(partitions: list[TopicPartition], futures: list[asyncio.Future]) -> Verdicts:
    return dict(zip(partitions, await asyncio.gather(*(asyncio.shield(f) for f in futures))))


def _answer(txn: _Txn, errors: dict[TopicPartition, ErrorCode], missing: ErrorCode) -> None:
    for tp, future in txn.partitions.items():
        if not future.done():
            future.set_result(errors.get(tp, missing))


def _request(batch: dict[str, _Txn]):
    from kio.schema.add_partitions_to_txn.v5 import request as q
    transactions = []
    for tid, txn in batch.items():
        topics: dict[str, list[int]] = {}
        for topic, index in sorted(txn.partitions):
            topics.setdefault(topic, []).append(index)
        transactions.append(make(
            q.AddPartitionsToTxnTransaction, transactional_id=tid, producer_id=txn.producer_id,
            producer_epoch=txn.producer_epoch, verify_only=not txn.add,
            topics=tuple(make(q.AddPartitionsToTxnTopic, name=name, partitions=tuple(indexes))
                         for name, indexes in topics.items())))
    return make(q.AddPartitionsToTxnRequest, transactions=tuple(transactions))


def _answers(response, batch: dict[str, _Txn]) -> dict[str, dict[TopicPartition, ErrorCode]]:
    """Each id's partitions with their error (module doc: whole-request errors)."""
    error = ErrorCode(response.error_code)
    if error != ErrorCode.none:
        every = ErrorCode.invalid_txn_state if error == ErrorCode.cluster_authorization_failed else error
        return {tid: dict.fromkeys(txn.partitions, every) for tid, txn in batch.items()}
    return {result.transactional_id: {(topic.name, int(p.partition_index)): ErrorCode(p.partition_error_code)
                                      for topic in result.topic_results for p in topic.results_by_partition}
            for result in response.results_by_transaction}
