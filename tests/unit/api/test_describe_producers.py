"""DescribeProducers through the dispatcher: a producer with an open transaction shows its
first offset, the marker ends it (start offset -1, the marker's coordinator epoch), an
idempotent producer is listed too, partitions that are not here are named as Kafka names
them, and ApiVersions advertises key 61 v0."""

from __future__ import annotations

from kavka.protocol.errors import ErrorCode as E
from kavka.protocol.record_codec import encode_batch
from test_group_apis import req
from test_txn_apis import run, wire  # noqa: F401 (the fixture)
from test_write_txn_markers import write

DESCRIBE_PRODUCERS, API_VERSIONS = 61, 18


async def describe(link, partitions):
    response = await link.call(req(DESCRIBE_PRODUCERS, 0, "DescribeProducersRequest", topics=tuple(
        req(DESCRIBE_PRODUCERS, 0, "TopicRequest", name=t, partition_indexes=tuple(p))
        for t, p in partitions.items())))
    return {(t.name, p.partition_index): (p.error_code, {s.producer_id: s for s in p.active_producers})
            for t in response.topics for p in t.partitions}


def append_idempotent(link, pid: int, records: int, partition: int = 0) -> None:
    """An idempotent (not transactional) producer's batch, straight into the partition."""
    now = link.context.clock.now_ms()
    batch = encode_batch([(b"k", b"v%d" % n, now, ()) for n in range(records)], producer_id=pid,
                         producer_epoch=0, base_sequence=0)
    link.context.logs.partition("t", partition).append_records(bytearray(batch), 9, now)


def test_an_open_transaction_shows_its_start_offset_until_its_marker(wire):  # noqa: F811
    async def scenario():
        append_idempotent(wire, 4242, 2)
        pid = (await wire.init("tx")).producer_id
        await wire.add("tx", pid, 0, [("t", 0)])
        assert await wire.produce("tx", pid, 0, 0, b"a") == E.none
        assert await wire.produce("tx", pid, 0, 1, b"b") == E.none
        open_ = await describe(wire, {"t": [0]})
        assert await write(wire, pid, 0, False, {"t": [0]}, coordinator_epoch=7) == {("t", 0): E.none}
        return pid, open_, await describe(wire, {"t": [0]})
    pid, open_, closed = run(scenario())
    error, producers = open_[("t", 0)]
    assert error == E.none and set(producers) == {4242, pid}
    txn = producers[pid]
    assert (txn.producer_epoch, txn.last_sequence, txn.current_txn_start_offset) == (0, 1, 2)
    assert txn.last_timestamp == wire.context.clock.now_ms()
    idempotent = producers[4242]
    assert (idempotent.last_sequence, idempotent.current_txn_start_offset, idempotent.coordinator_epoch) == (1, -1, -1)
    error, producers = closed[("t", 0)]
    assert error == E.none
    assert (producers[pid].current_txn_start_offset, producers[pid].coordinator_epoch) == (-1, 7)


def test_partitions_not_here_are_named_as_kafka_names_them(wire):  # noqa: F811
    answered = run(describe(wire, {"t": [1, 9], "nope": [0]}))
    assert answered == {("t", 1): (E.none, {}), ("t", 9): (E.unknown_topic_or_partition, {}),
                        ("nope", 0): (E.unknown_topic_or_partition, {})}


def test_a_partition_the_cluster_has_but_this_broker_does_not_host(wire, monkeypatch):  # noqa: F811
    """As in a cluster where partition 1 has its replicas on other brokers: the metadata knows
    it, this broker's log manager does not."""
    logs, metadata = wire.context.logs, wire.context.metadata
    real = logs.partition
    monkeypatch.setattr(logs, "partition", lambda topic, index: None if index == 1 else real(topic, index))
    monkeypatch.setattr(metadata, "has_partition", lambda topic, index: topic == "t" and index in (0, 1))
    answered = run(describe(wire, {"t": [0, 1]}))
    assert answered == {("t", 0): (E.none, {}), ("t", 1): (E.not_leader_or_follower, {})}


def test_api_versions_advertises_describe_producers_v0(wire):  # noqa: F811
    response = run(wire.call(req(API_VERSIONS, 3, "ApiVersionsRequest", client_software_name="t",
                                 client_software_version="1")))
    [entry] = [k for k in response.api_keys if k.api_key == DESCRIBE_PRODUCERS]
    assert (entry.min_version, entry.max_version) == (0, 0)
