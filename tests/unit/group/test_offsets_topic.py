"""The journal on a real LogManager: created on first use, compacted, read back after a restart."""

from __future__ import annotations

import itertools

from kavka.clock import ManualClock
from kavka.config import BrokerConfig
from kavka.group.coordinator import GroupCoordinator
from kavka.group.env import GroupConfig
from kavka.group.join import JoinRequest
from kavka.group.log_format import OffsetValue, partition_for
from kavka.group.membership import SyncRequest
from kavka.group.offsets import OffsetCommit
from kavka.group.offsets_topic import TOPIC, OffsetsTopic
from kavka.log.log_manager import LogManager
from kavka.protocol.record_codec import encode_batch


def open_broker(path, clock, partitions=4):
    logs = LogManager(path, BrokerConfig.from_strings({}), clock)
    logs.load()
    config = GroupConfig(initial_rebalance_delay_ms=0, min_session_timeout_ms=1000, offsets_partitions=partitions)
    ids = itertools.count(1)
    coordinator = GroupCoordinator(config, clock, OffsetsTopic(logs, partitions, 1 << 20, clock),
                                   new_uuid=lambda: str(next(ids)))
    coordinator.load()
    return logs, coordinator


def test_created_on_first_write_with_compaction(tmp_path):
    clock = ManualClock()
    logs, coordinator = open_broker(tmp_path, clock)
    assert logs.topic(TOPIC) is None
    assert coordinator.fetch_offsets("g", None)[1] == [], "reading creates nothing"
    assert logs.topic(TOPIC) is None
    coordinator.commit_offsets("g", -1, "", None, [OffsetCommit("t", 0, 5, 2, "meta")])
    info = logs.topic(TOPIC)
    assert info.partitions == 4 and info.config.compacted
    assert logs.partition(TOPIC, partition_for("g", 4)).log.log_end_offset == 1
    logs.close()


def test_restart_rebuilds_the_same_state(tmp_path):
    clock = ManualClock()
    logs, coordinator = open_broker(tmp_path, clock)
    join = JoinRequest("g", "", None, "c", "/127.0.0.1", 10_000, 20_000, "consumer", (("range", b"m"),),
                       require_known_member_id=False)
    reply = coordinator.join(join).replies[0][1]
    coordinator.sync(_sync(reply))
    coordinator.commit_offsets("g", reply.generation, reply.member_id, None, [OffsetCommit("t", 1, 9, -1, None)])
    for n in range(5):
        coordinator.commit_offsets(f"s{n}", -1, "", None, [OffsetCommit("t", 0, n, -1, "")])
    live = coordinator.snapshot()
    logs.close()
    logs, reloaded = open_broker(tmp_path, clock, partitions=7)  # the existing count wins
    assert reloaded.snapshot() == live
    assert reloaded.offsets.get("g", "t", 1) == OffsetValue(9, -1, "", clock.now_ms())
    logs.close()


def test_unknown_record_types_are_skipped(tmp_path, caplog):
    clock = ManualClock()
    logs, coordinator = open_broker(tmp_path, clock, partitions=1)
    coordinator.commit_offsets("g", -1, "", None, [OffsetCommit("t", 0, 5, -1, "")])
    junk = encode_batch([(b"\x00\x09future", b"value", clock.now_ms(), ())])
    logs.partition(TOPIC, 0).append_records(bytearray(junk), 9, clock.now_ms())
    coordinator.commit_offsets("g", -1, "", None, [OffsetCommit("t", 0, 6, -1, "")])
    logs.close()
    logs, reloaded = open_broker(tmp_path, clock, partitions=1)
    assert reloaded.offsets.get("g", "t", 0).offset == 6
    assert "skipping" in caplog.text
    logs.close()


def _sync(reply):
    return SyncRequest("g", reply.generation, reply.member_id, None, None, None, {reply.member_id: b"a"})



def test_transactional_offsets_and_their_markers_replay_from_the_log(tmp_path):
    """TxnOffsetCommit's batch is the producer's (it holds the partition's last stable
    offset); a restart finds committed offsets committed and open ones still pending."""
    clock = ManualClock()
    logs, coordinator = open_broker(tmp_path, clock)
    coordinator.commit_txn_offsets("g", 7, 0, -1, "", None, [OffsetCommit("t", 0, 5, -1, "")])
    coordinator.commit_txn_offsets("h", 8, 0, -1, "", None, [OffsetCommit("t", 0, 6, -1, "")])
    index = partition_for("g", 4)
    logs.partition(TOPIC, index).append_marker(7, 0, True, 0, clock.now_ms())
    coordinator.transaction_ended(index, 7, True)
    open_log = logs.partition(TOPIC, partition_for("h", 4)).log
    assert open_log.last_stable_offset < open_log.log_end_offset
    live = coordinator.snapshot()
    assert live["pending_offsets"] == {8: {"h": {("t", 0): OffsetValue(6, -1, "", clock.now_ms())}}}
    logs.close()
    logs, reloaded = open_broker(tmp_path, clock)
    assert reloaded.snapshot() == live
    assert reloaded.offsets.get("g", "t", 0).offset == 5 and reloaded.offsets.get("h", "t", 0) is None
    logs.close()


def test_a_fenced_producers_transactional_commit_is_refused_by_the_partition(tmp_path):
    """The partition's producer table knows a newer epoch (the abort that fenced it): the
    late TxnOffsetCommit of the old epoch is INVALID_PRODUCER_EPOCH and leaves nothing."""
    from kavka.protocol.errors import ErrorCode
    clock = ManualClock()
    logs, coordinator = open_broker(tmp_path, clock)
    commit = [OffsetCommit("t", 0, 5, -1, "")]
    assert coordinator.commit_txn_offsets("g", 7, 0, -1, "", None, commit).reply == {("t", 0): ErrorCode.none}
    index = partition_for("g", 4)
    logs.partition(TOPIC, index).append_marker(7, 1, False, 0, clock.now_ms())
    coordinator.transaction_ended(index, 7, False)
    end = logs.partition(TOPIC, index).log.log_end_offset
    late = coordinator.commit_txn_offsets("g", 7, 0, -1, "", None, commit)
    assert late.reply == {("t", 0): ErrorCode.invalid_producer_epoch}
    assert logs.partition(TOPIC, index).log.log_end_offset == end
    assert not coordinator.offsets.has_pending("g")
    logs.close()
