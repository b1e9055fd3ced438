"""``__transaction_state`` on a real LogManager: created compacted on first write, the
existing partition count kept, state rebuilt after a restart, damaged records skipped."""

from __future__ import annotations

from kavka.clock import ManualClock
from kavka.config import BrokerConfig
from kavka.internal_topics import coordinator_partition
from kavka.log.log_manager import LogManager
from kavka.protocol.record_codec import encode_batch
from kavka.txn.coordinator import TransactionCoordinator, TxnConfig
from kavka.txn.model import TxnState
from kavka.txn.state_topic import TOPIC, TransactionStateTopic

from txn_helpers import CountingIds, offsets_partition


def open_broker(path, clock, partitions=5):
    logs = LogManager(path, BrokerConfig.from_strings({}), clock)
    logs.load()
    journal = TransactionStateTopic(logs, partitions, 1 << 20, clock)
    coordinator = TransactionCoordinator(TxnConfig(), clock, journal, CountingIds(), offsets_partition)
    for index in range(journal.partitions):
        coordinator.load_partition(index)
    return logs, coordinator


def test_created_compacted_on_first_write_and_rebuilt_after_a_restart(tmp_path):
    clock = ManualClock()
    logs, coordinator = open_broker(tmp_path, clock)
    assert logs.topic(TOPIC) is None
    reply = coordinator.init_producer_id("t1", 60_000).reply
    coordinator.add_partitions("t1", reply.producer_id, 0, [("orders", 3)])
    coordinator.init_producer_id("t2", 1000)
    info = logs.topic(TOPIC)
    assert info.partitions == 5 and info.config.compacted
    assert logs.partition(TOPIC, coordinator_partition("t1", 5)).log.log_end_offset >= 2
    live = dict(coordinator.ids)
    logs.close()
    logs, reloaded = open_broker(tmp_path, clock, partitions=9)   # the existing count wins
    assert reloaded.ids == live
    assert reloaded.ids["t1"].state == TxnState.ONGOING
    logs.close()


def test_an_unreadable_record_is_skipped_and_the_others_load(tmp_path, caplog):
    clock = ManualClock()
    logs, coordinator = open_broker(tmp_path, clock, partitions=1)
    coordinator.init_producer_id("t1", 60_000)
    garbage = encode_batch([(b"\x00\x09junk", b"??", clock.now_ms(), ())])
    logs.partition(TOPIC, 0).append_internal(bytearray(garbage), clock.now_ms())
    coordinator.init_producer_id("t2", 60_000)
    logs.close()
    logs, reloaded = open_broker(tmp_path, clock, partitions=1)
    assert set(reloaded.ids) == {"t1", "t2"}
    assert any("skipping unreadable record at __transaction_state-0" in r.getMessage() for r in caplog.records)
    logs.close()


def test_nothing_is_written_while_the_partition_is_not_writable(tmp_path):
    """A cluster's partition whose ISR is below min.insync.replicas takes no record: the
    coordinator changes nothing and answers NOT_COORDINATOR (the client retries)."""
    from kavka.protocol.errors import ErrorCode
    clock = ManualClock()
    logs = LogManager(tmp_path, BrokerConfig.from_strings({}), clock)
    logs.load()
    writable = {"ok": True}
    journal = TransactionStateTopic(logs, 3, 1 << 20, clock, writable=lambda _index: writable["ok"])
    coordinator = TransactionCoordinator(TxnConfig(), clock, journal, CountingIds(), offsets_partition)
    for index in range(3):
        coordinator.load_partition(index)
    first = coordinator.init_producer_id("t1", 60_000).reply
    end = logs.partition(TOPIC, coordinator_partition("t1", 3)).log.log_end_offset
    writable["ok"] = False
    refused = coordinator.add_partitions("t1", first.producer_id, 0, [("orders", 0)])
    assert refused.reply == {("orders", 0): ErrorCode.not_coordinator} and not refused.written
    assert coordinator.ids["t1"].state == TxnState.EMPTY
    assert logs.partition(TOPIC, coordinator_partition("t1", 3)).log.log_end_offset == end
    writable["ok"] = True
    assert coordinator.add_partitions("t1", first.producer_id, 0, [("orders", 0)]).written
    logs.close()
