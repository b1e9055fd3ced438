"""TopicCatalog on its own: the name rules, pending entries, and its file round trip."""

from __future__ import annotations

import json
import uuid

import pytest

from kavka.config import BrokerConfig
from kavka.log.errors import DataDirUnusable, InvalidConfig, InvalidTopic, TopicAlreadyExists
from kavka.log.log_dir import LogDirHealth
from kavka.log.topic_catalog import TopicCatalog


@pytest.fixture
def catalog(tmp_path):
    return TopicCatalog(tmp_path / "topics.json", BrokerConfig(), LogDirHealth(tmp_path))


def reopened(catalog: TopicCatalog) -> TopicCatalog:
    return TopicCatalog(catalog.path, catalog.broker_config, catalog.health)


def test_a_committed_topic_is_written_and_read_back_with_its_overrides(catalog):
    info = catalog.check_new("events", 3, {"retention.ms": "1000"})
    catalog.commit(info)
    catalog.write()
    (read, adding), = reopened(catalog).read()
    assert (read.name, read.topic_id, read.partitions, dict(read.overrides), adding) == \
        ("events", info.topic_id, 3, {"retention.ms": "1000"}, 0)
    assert read.config["retention.ms"] == 1000


def test_pending_creations_and_growths_are_written_as_pending(catalog):
    grown = catalog.check_new("grown", 2)
    catalog.commit(grown)
    catalog.begin_creation([catalog.check_new("new", 4)])
    catalog.set_growing("grown", 3)
    catalog.write()
    entries = {e["name"]: e for e in json.loads(catalog.path.read_text())["topics"]}
    assert (entries["new"]["partitions"], entries["new"]["pending"]) == (0, 4)
    assert (entries["grown"]["partitions"], entries["grown"]["pending"]) == (2, 3)
    assert catalog.get("new") is None and catalog.pending_partitions() == 4


def test_a_pending_name_is_taken_and_collides_until_forgotten(catalog):
    catalog.begin_creation([catalog.check_new("a.b", 1)])
    with pytest.raises(TopicAlreadyExists):
        catalog.check_new("a.b", 1)
    with pytest.raises(InvalidTopic, match="collides"):
        catalog.check_new("a_b", 1)
    catalog.forget_pending("a.b")
    catalog.check_new("a_b", 1)


def test_removal_frees_the_name_and_the_id(catalog):
    info = catalog.check_new("gone", 1)
    catalog.commit(info)
    catalog.remove("gone")
    assert catalog.by_id(info.topic_id) is None
    catalog.check_new("gone", 1, topic_id=info.topic_id)
    catalog.check_new("gone_", 1)


@pytest.mark.parametrize("name", ["", ".", "..", "bad name", "x" * 250, "é"])
def test_illegal_names_are_refused(catalog, name):
    with pytest.raises(InvalidTopic):
        catalog.check_new(name, 1)


def test_client_overrides_below_the_segment_floor_are_refused(catalog):
    with pytest.raises(InvalidConfig, match="segment.bytes"):
        catalog.check_new("t", 1, {"segment.bytes": "1000"}, client=True)
    assert catalog.check_new("t", 1, {"segment.bytes": "1000"}).config.segment_bytes == 1000


def test_with_overrides_sets_and_removes_without_storing(catalog):
    catalog.commit(catalog.check_new("t", 1, {"retention.ms": "5", "cleanup.policy": "compact"}))
    changed = catalog.with_overrides("t", {"retention.ms": None, "segment.ms": "60000"})
    assert dict(changed.overrides) == {"cleanup.policy": "compact", "segment.ms": "60000"}
    assert dict(catalog.get("t").overrides) == {"retention.ms": "5", "cleanup.policy": "compact"}


def test_an_unreadable_file_makes_the_directory_unusable(catalog):
    catalog.path.write_text('{"format": 1, "topics": [{"name": "t"}]}')
    with pytest.raises(DataDirUnusable):
        catalog.read()
    catalog.path.write_text(json.dumps({"format": 2, "topics": []}))
    with pytest.raises(DataDirUnusable, match="format"):
        catalog.read()


def test_a_topic_id_in_use_is_refused(catalog):
    topic_id = uuid.uuid4()
    catalog.commit(catalog.check_new("one", 1, topic_id=topic_id))
    with pytest.raises(TopicAlreadyExists, match="topic id"):
        catalog.check_new("two", 1, topic_id=topic_id)
