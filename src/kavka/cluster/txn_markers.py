"""The transaction coordinator's markers in a cluster: each partition's leader writes them.

The :class:`~kavka.txn.runner.TxnRunner` hands every
:class:`~kavka.txn.coordinator.MarkerJob` to ``write_markers(job)`` and retries the
partitions whose answer is not final.  In a cluster the job's partitions are led by
different brokers, so :class:`ClusterMarkerWriter` groups them by their leader in this
broker's view of etcd:

* partitions led here get the marker at once (``kavka.txn.local_markers.write_marker``;
  one in ``__consumer_offsets`` is told to the group coordinator, which commits or drops the
  producer's pending offsets there), answered after the ISR holds it (``min.insync.replicas`` of the partition, as Kafka writes
  markers with acks=all);
* partitions led elsewhere get one WriteTxnMarkers (v1) per leader, over a connection to it
  kept open between jobs (``kavka.replication.peer``, one request at a time per leader);
  that broker answers each partition as ``kavka.api.write_txn_markers`` does;
* a partition the view does not hold any more (its topic was deleted) is
  UNKNOWN_TOPIC_OR_PARTITION, which needs no marker; one without a leader, a leader that
  cannot be reached, or a leader that answers UNKNOWN_TOPIC_OR_PARTITION for a partition
  the view still holds (its own view lags) is NOT_LEADER_OR_FOLLOWER: the runner retries
  it after its backoff, by when the watch has brought the new leader.

The marker carries the coordinator epoch (the ``__transaction_state`` partition's leader
epoch), so a partition leader refuses a deposed coordinator's late markers
(TRANSACTION_COORDINATOR_FENCED), and the runner gives such a job up.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kavka.cluster.model import NO_LEADER
from kavka.internal_topics import BROKER_CLIENT_PREFIX
from kavka.protocol.builders import make
from kavka.protocol.errors import ErrorCode
from kavka.replication.peer import Peer, PeerError
from kavka.txn.coordinator import MarkerJob
from kavka.txn.local_markers import write_marker
from kavka.txn.model import TopicPartition

if TYPE_CHECKING:
    from kavka.cluster.node import ClusterNode

log = logging.getLogger("kavka.txn")

REQUEST_TIMEOUT_S = 30.0   # a leader answers after replicating the markers (Kafka: request.timeout.ms)
RETRY = ErrorCode.not_leader_or_follower


@dataclass
class _Link:
    """The connection to one leader; the lock keeps its requests one at a time."""
    address: tuple[str, int]
    peer: Peer | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ClusterMarkerWriter:
    def __init__(self, node: "ClusterNode", clock, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.node = node
        self.clock = clock
        self.timeout_s = timeout_s
        self._links: dict[int, _Link] = {}
        self._closed = False

    async def write_markers(self, job: MarkerJob) -> dict[TopicPartition, ErrorCode]:
        results: dict[TopicPartition, ErrorCode] = {}
        by_leader: dict[int, list[TopicPartition]] = {}
        for tp in job.partitions:
            state = self.node.metadata.partition(*tp)
            if state is None:
                results[tp] = ErrorCode.unknown_topic_or_partition
            elif state.leader == NO_LEADER:
                results[tp] = RETRY
            else:
                by_leader.setdefault(state.leader, []).append(tp)
        writes = [self._write_local(job, tps) if leader == self.node.broker_id else self._write_remote(job, leader, tps)
                  for leader, tps in by_leader.items()]
        for answered in await asyncio.gather(*writes):
            results.update(answered)
        return results

    def close(self) -> None:
        """Close the connections; jobs still running get RETRY for their remote partitions."""
        self._closed = True
        for link in self._links.values():
            if link.peer is not None:
                link.peer.close()
        self._links.clear()

    # -- partitions led here ---------------------------------------------------------------------

    async def _write_local(self, job: MarkerJob, tps: list[TopicPartition]) -> dict[TopicPartition, ErrorCode]:
        return dict(zip(tps, await asyncio.gather(*(self._write_one_local(job, tp) for tp in tps))))

    async def _write_one_local(self, job: MarkerJob, tp: TopicPartition) -> ErrorCode:
        replicas, logs = self.node.replicas, self.node.broker.logs
        if replicas.leader_error(tp) != ErrorCode.none:
            return RETRY
        error = write_marker(logs, self.clock, job, tp, self._tell_groups)
        if error != ErrorCode.none:
            return error
        partition = logs.partition(*tp)
        waited = replicas.wait_replicated(tp, partition.log.log_end_offset, partition.config["min.insync.replicas"])
        return await waited if isinstance(waited, asyncio.Future) else waited

    def _tell_groups(self, topic: str, index: int, producer_id: int, commit: bool) -> None:
        """A marker in a ``__consumer_offsets`` partition led here ends the producer's
        pending offsets there (kavka.group.runner.GroupRunner.marker_written)."""
        groups = self.node.broker.groups
        if groups is not None:
            groups.marker_written(topic, index, producer_id, commit)

    # -- partitions led by other brokers ---------------------------------------------------------

    async def _write_remote(self, job: MarkerJob, leader: int,
                            tps: list[TopicPartition]) -> dict[TopicPartition, ErrorCode]:
        address = self.node.address_of(leader)
        if address is None or self._closed:
            return {tp: RETRY for tp in tps}
        link = self._links.get(leader)
        if link is None or link.address != address:
            if link is not None and link.peer is not None:
                link.peer.close()
            link = self._links[leader] = _Link(address)
        async with link.lock:
            try:
                if link.peer is None:
                    link.peer = await Peer.connect(*address, client_id=f"{BROKER_CLIENT_PREFIX}{self.node.broker_id}",
                                                   security=self.node.peer_security)
                response = await link.peer.request(_request(job, tps), self.timeout_s)
            except PeerError as exc:
                log.info("markers of %r to broker %d: %s; retrying", job.transactional_id, leader, exc)
                if link.peer is not None:
                    link.peer.close()
                    link.peer = None
                return {tp: RETRY for tp in tps}
        return self._answers(response, tps)

    def _answers(self, response, tps: list[TopicPartition]) -> dict[TopicPartition, ErrorCode]:
        answered = {(topic.name, int(p.partition_index)): ErrorCode(p.error_code)
                    for marker in response.markers for topic in marker.topics for p in topic.partitions}
        results = {}
        for tp in tps:
            error = answered.get(tp, RETRY)
            if error == ErrorCode.unknown_topic_or_partition and self.node.metadata.partition(*tp) is not None:
                error = RETRY   # the leader's view lags this one's: it will know the partition shortly
            results[tp] = error
        return results


def _request(job: MarkerJob, tps: list[TopicPartition]):
    from kio.schema.write_txn_markers.v1 import request as q
    topics: dict[str, list[int]] = {}
    for topic, index in sorted(tps):
        topics.setdefault(topic, []).append(index)
    return make(q.WriteTxnMarkersRequest, markers=(make(
        q.WritableTxnMarker, producer_id=job.producer_id, producer_epoch=job.producer_epoch,
        transaction_result=job.commit, coordinator_epoch=job.coordinator_epoch,
        topics=tuple(make(q.WritableTxnMarkerTopic, name=name, partition_indexes=tuple(indexes))
                     for name, indexes in topics.items())),))
