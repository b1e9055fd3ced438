"""LogManager: topic lifecycle, names, persistence, locking and crash recovery."""

from __future__ import annotations

import json
import uuid

import pytest

from kavka.clock import ManualClock
from kavka.config import BrokerConfig
from kavka.log import log_manager as lm
from kavka.log.errors import (
    DataDirLocked, DataDirUnusable, InvalidConfig, InvalidPartitions, InvalidTopic, LogError,
    TopicAlreadyExists, UnknownTopicOrPartition,
)
from kavka.log.log_manager import LogManager
from kavka.log.partition_log import PartitionLog
from kavka.protocol.record_codec import encode_batch

NOW = 1_700_000_000_000


def batch(n: int = 1, **kwargs) -> bytearray:
    return bytearray(encode_batch([(b"k", b"v%d" % i, NOW, ()) for i in range(n)], **kwargs))


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


def open_manager(data_dir, **broker) -> LogManager:
    config = BrokerConfig.from_strings({k.replace("_", "."): str(v) for k, v in broker.items()})
    manager = LogManager(data_dir, config, ManualClock(NOW))
    manager.load()
    return manager


@pytest.fixture
def manager(data_dir):
    m = open_manager(data_dir)
    yield m
    m.close()


# -- creating, listing, deleting -------------------------------------------------------------

def test_create_list_and_look_up_topics(manager):
    info = manager.create_topic("orders", 3, {"retention.ms": "1000"})
    manager.create_topic("events", 1)
    assert sorted(manager.topics()) == ["events", "orders"]
    assert manager.topic("orders") == info and manager.topic("nope") is None
    assert manager.topic_by_id(info.topic_id) is info
    assert info.partitions == 3 and info.overrides == {"retention.ms": "1000"}
    assert info.config["retention.ms"] == 1000 and info.config["segment.bytes"] == 1073741824
    assert [manager.partition("orders", i).index for i in range(3)] == [0, 1, 2]
    assert manager.partition("orders", 3) is None and manager.partition("nope", 0) is None


def test_create_topic_with_a_given_id(manager):
    topic_id = uuid.uuid4()
    assert manager.create_topic("t", 1, topic_id=topic_id).topic_id == topic_id
    with pytest.raises(TopicAlreadyExists):
        manager.create_topic("u", 1, topic_id=topic_id)


def test_existing_topic_cannot_be_created_again(manager):
    manager.create_topic("t", 1)
    with pytest.raises(TopicAlreadyExists):
        manager.create_topic("t", 2)


def test_validate_only_changes_nothing(manager, data_dir):
    info = manager.create_topic("t", 2, {"retention.ms": "5"}, validate_only=True)
    assert info.partitions == 2 and manager.topic("t") is None and not (data_dir / "t-0").exists()


def test_delete_topic_removes_its_directories(manager, data_dir):
    info = manager.create_topic("t", 2)
    manager.partition("t", 0).append_records(batch(), 9, NOW)
    manager.delete_topic("t")
    assert manager.topic("t") is None and manager.topic_by_id(info.topic_id) is None
    assert manager.partition("t", 0) is None
    assert not list(data_dir.glob("t-*"))
    again = manager.create_topic("t", 1)
    assert again.topic_id != info.topic_id and manager.partition("t", 0).log.log_end_offset == 0


def test_unknown_topic_operations_raise(manager):
    with pytest.raises(UnknownTopicOrPartition):
        manager.delete_topic("nope")
    with pytest.raises(UnknownTopicOrPartition):
        manager.create_partitions("nope", 3)
    with pytest.raises(UnknownTopicOrPartition):
        manager.alter_topic_config("nope", {})


@pytest.mark.parametrize("count", [0, -1])
def test_partition_count_must_be_positive(manager, count):
    with pytest.raises(InvalidPartitions):
        manager.create_topic("t", count)


def test_create_partitions_only_grows(manager):
    manager.create_topic("t", 2)
    for bad in (1, 2):
        with pytest.raises(InvalidPartitions):
            manager.create_partitions("t", bad)
    assert manager.create_partitions("t", 4).partitions == 4
    assert manager.partition("t", 3) is not None and manager.topic("t").partitions == 4


# -- names -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["", ".", "..", "a" * 250, "with space", "slash/x", "ünï", "a:b"])
def test_invalid_topic_names(manager, name):
    with pytest.raises(InvalidTopic):
        manager.create_topic(name, 1)


@pytest.mark.parametrize("name", ["a" * 249, "a.b-c_D9", "...", "-"])
def test_valid_topic_names(manager, name):
    assert manager.create_topic(name, 1).name == name


def test_names_colliding_after_dot_underscore_unification_are_invalid(manager):
    manager.create_topic("metrics.cpu", 1)
    with pytest.raises(InvalidTopic, match="collides"):
        manager.create_topic("metrics_cpu", 1)
    manager.create_topic("metrics-cpu", 1)  # '-' is not unified


def test_invalid_topic_is_a_log_error():
    assert issubclass(InvalidTopic, LogError) and issubclass(InvalidConfig, LogError)


# -- configs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides", [{"no.such.config": "1"}, {"retention.ms": "soon"},
                                       {"cleanup.policy": "shred"}, {"segment.bytes": "1"}])
def test_bad_config_overrides_are_invalid_config(manager, overrides):
    with pytest.raises(InvalidConfig):
        manager.create_topic("t", 1, overrides)
    assert manager.topic("t") is None


def test_topic_config_defaults_come_from_the_broker(data_dir):
    m = open_manager(data_dir, log_retention_hours=1, message_max_bytes=1000)
    try:
        info = m.create_topic("t", 1)
        assert info.config["retention.ms"] == 3_600_000 and info.config.max_message_bytes == 1000
    finally:
        m.close()


def test_alter_config_sets_and_removes_overrides_and_persists(data_dir):
    m = open_manager(data_dir)
    m.create_topic("t", 2, {"retention.ms": "1000", "segment.bytes": "100000"})
    altered = m.alter_topic_config("t", {"retention.ms": None, "cleanup.policy": "compact"})
    assert altered.overrides == {"segment.bytes": "100000", "cleanup.policy": "compact"}
    assert m.partition("t", 1).config.compacted and m.partition("t", 1).log.config is altered.config
    with pytest.raises(InvalidConfig):
        m.alter_topic_config("t", {"retention.ms": "x"})
    assert m.topic("t") == altered
    m.close()
    m = open_manager(data_dir)
    assert m.topic("t").overrides == altered.overrides and m.topic("t").config.compacted
    m.close()


# -- persistence and the data directory ------------------------------------------------------

def test_topics_survive_a_restart(data_dir):
    m = open_manager(data_dir)
    created = [m.create_topic("a", 2, {"retention.ms": "1000"}), m.create_topic("b.c", 1)]
    m.partition("a", 1).append_records(batch(3), 9, NOW)
    cluster_id = m.cluster_id
    m.close()
    m = open_manager(data_dir)
    assert {t.name: t for t in m.topics().values()} == {t.name: t for t in created}
    assert m.cluster_id == cluster_id and len(cluster_id) == 22
    assert m.partition("a", 1).log.log_end_offset == 3
    m.close()


def test_metadata_files_are_written(data_dir, manager):
    manager.create_topic("t", 1, {"retention.ms": "7"})
    body = json.loads((data_dir / lm.META_DIR / lm.TOPICS_FILE).read_text())
    assert body["topics"][0]["overrides"] == {"retention.ms": "7"}
    props = (data_dir / lm.META_PROPERTIES).read_text()
    assert f"cluster.id={manager.cluster_id}" in props and "node.id=0" in props


def test_cluster_ids_are_random_22_character_ids():
    ids = {lm.new_cluster_id() for _ in range(50)}
    assert len(ids) == 50 and all(len(i) == 22 and not i.startswith("-") for i in ids)


def test_a_different_broker_id_is_refused(data_dir):
    open_manager(data_dir).close()
    with pytest.raises(DataDirUnusable, match="broker.id"):
        open_manager(data_dir, broker_id=5)


def test_a_second_manager_cannot_share_the_directory(data_dir):
    first = open_manager(data_dir)
    with pytest.raises(DataDirLocked):
        open_manager(data_dir)
    first.close()
    open_manager(data_dir).close()


def test_unusable_data_directory_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(DataDirUnusable):
        open_manager(blocker / "data")


def test_unreadable_topic_metadata_is_reported(data_dir):
    open_manager(data_dir).close()
    (data_dir / lm.META_DIR / lm.TOPICS_FILE).write_text("{not json")
    with pytest.raises(DataDirUnusable, match="topic metadata"):
        open_manager(data_dir)
    (data_dir / lm.META_DIR / lm.TOPICS_FILE).write_text('{"format": 1, "topics": []}')
    open_manager(data_dir).close()  # the failed load released its lock


def test_partition_directories_without_a_topic_are_set_aside(data_dir, caplog):
    m = open_manager(data_dir)
    m.create_topic("t", 1)
    m.close()
    (data_dir / "ghost-0").mkdir()
    (data_dir / "ghost-0" / "00000000000000000000.log").write_bytes(b"")
    (data_dir / "t-1").mkdir()  # beyond the topic's partition count
    m = open_manager(data_dir)
    assert list(m.topics()) == ["t"]
    assert sorted(p.name.split(".")[0] for p in data_dir.glob("*-stray")) == ["ghost-0", "t-1"]
    assert "belongs to no topic" in caplog.text
    m.close()


def test_interrupted_deletions_are_finished_at_load(data_dir):
    open_manager(data_dir).close()
    (data_dir / "t-0.abc-delete").mkdir()
    open_manager(data_dir).close()
    assert not (data_dir / "t-0.abc-delete").exists()


# -- clean and unclean shutdown --------------------------------------------------------------

@pytest.fixture
def opened_with(monkeypatch):
    calls = []
    real = PartitionLog.open.__func__

    def spy(cls, path, topic, partition, config, clock, recover, **kw):
        calls.append((topic, partition, recover))
        return real(cls, path, topic, partition, config, clock, recover, **kw)

    monkeypatch.setattr(PartitionLog, "open", classmethod(spy))
    return calls


def crash(manager: LogManager) -> None:
    """What kill -9 leaves: files as written, no flush, no marker; the lock dies with the process."""
    manager._release_lock()


def test_clean_close_writes_the_marker_and_load_removes_it(data_dir, opened_with):
    m = open_manager(data_dir)
    assert not (data_dir / lm.CLEAN_SHUTDOWN_FILE).exists()
    m.create_topic("t", 2)
    m.close()
    assert (data_dir / lm.CLEAN_SHUTDOWN_FILE).exists()
    opened_with.clear()
    m = open_manager(data_dir)
    assert opened_with == [("t", 0, False), ("t", 1, False)]
    assert not (data_dir / lm.CLEAN_SHUTDOWN_FILE).exists()
    m.close()


def test_unclean_restart_recovers_every_partition(data_dir, opened_with):
    m = open_manager(data_dir)
    m.create_topic("t", 1)
    m.partition("t", 0).append_records(batch(2), 9, NOW)
    crash(m)
    segment = data_dir / "t-0" / "00000000000000000000.log"
    size = segment.stat().st_size
    with open(segment, "ab") as fh:
        fh.write(b"\x00\x00\x00\x00\x00\x00\x00\x02torn")  # half a batch
    opened_with.clear()
    m = open_manager(data_dir)
    assert opened_with == [("t", 0, True)]
    assert m.partition("t", 0).log.log_end_offset == 2 and segment.stat().st_size == size
    m.close()
