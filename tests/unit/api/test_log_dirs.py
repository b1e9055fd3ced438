"""DescribeLogDirs (and AlterReplicaLogDirs) through the dispatcher, against a real LogManager:
sizes are checked against the segment files on disk, not against what the broker says."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kavka.protocol.errors import ErrorCode
from kavka.protocol.record_codec import encode_batch

DESCRIBE_LOG_DIRS, ALTER_REPLICA_LOG_DIRS, API_VERSIONS = 35, 34, 18
NOW = 1_700_000_000_000


@pytest.fixture
def h(admin):
    harness = admin()
    harness.logs.create_topic("a", 2)
    harness.logs.create_topic("b", 1)
    _append(harness, "a", 0, 5)
    _append(harness, "a", 0, 3)
    _append(harness, "b", 0, 1)
    return harness


def _append(h, topic: str, index: int, count: int) -> None:
    batch = encode_batch([(b"k", b"v" * 100, NOW, ()) for _ in range(count)])
    h.logs.partition(topic, index).append_records(bytearray(batch), 9, NOW)


def _on_disk(h, topic: str, index: int) -> int:
    """The bytes of the partition's segment files, read from the filesystem."""
    directory = h.logs.partition(topic, index).log.path
    return sum(f.stat().st_size for f in Path(directory).glob("*.log"))


def describe(h, topics=None, version=4):
    q = h.req(DESCRIBE_LOG_DIRS, version)
    asked = None if topics is None else tuple(
        q.DescribableLogDirTopic(topic=name, partitions=tuple(parts)) for name, parts in topics.items())
    return h.call(q.DescribeLogDirsRequest(topics=asked))


def sizes(result) -> dict[tuple[str, int], tuple[int, int, bool]]:
    return {(t.name, p.partition_index): (p.partition_size, p.offset_lag, p.is_future_key)
            for t in result.topics for p in t.partitions}


def test_advertised_in_api_versions(h):
    q = h.req(API_VERSIONS, 3)
    keys = {k.api_key: (k.min_version, k.max_version) for k in h.call(
        q.ApiVersionsRequest(client_software_name="t", client_software_version="1")).api_keys}
    assert (keys[DESCRIBE_LOG_DIRS], keys[ALTER_REPLICA_LOG_DIRS]) == ((1, 4), (1, 2))


@pytest.mark.parametrize("version", range(1, 5))
def test_every_partition_with_its_size_on_disk(h, version):
    response = describe(h, version=version)
    (result,) = response.results
    assert result.error_code == ErrorCode.none
    assert result.log_dir == os.path.abspath(h.logs.data_dir)
    got = sizes(result)
    user = {k: v for k, v in got.items() if not k[0].startswith("__")}
    assert user == {("a", 0): (_on_disk(h, "a", 0), 0, False), ("a", 1): (0, 0, False),
                    ("b", 0): (_on_disk(h, "b", 0), 0, False)}
    assert got[("a", 0)][0] > got[("b", 0)][0] > 0
    if version >= 3:
        assert response.error_code == ErrorCode.none


def test_v4_reports_the_volume(h):
    (result,) = describe(h).results
    usage = shutil.disk_usage(h.logs.data_dir)
    assert result.total_bytes == usage.total
    assert 0 < result.usable_bytes <= result.total_bytes


def test_v3_has_no_volume_fields(h):
    (result,) = describe(h, version=3).results
    assert not hasattr(result, "total_bytes")


def test_only_the_partitions_asked_for(h):
    (result,) = describe(h, {"a": [1], "b": [0, 7], "missing": [0]}).results
    assert sizes(result) == {("a", 1): (0, 0, False), ("b", 0): (_on_disk(h, "b", 0), 0, False)}


def test_an_empty_topic_list_describes_no_partition(h):
    (result,) = describe(h, {}).results
    assert (result.error_code, result.topics) == (ErrorCode.none, ())


def test_size_follows_appends(h):
    before = sizes(describe(h, {"b": [0]}).results[0])[("b", 0)][0]
    _append(h, "b", 0, 10)
    after = sizes(describe(h, {"b": [0]}).results[0])[("b", 0)][0]
    assert after == _on_disk(h, "b", 0) > before


def test_an_offline_dir_answers_storage_error(h):
    h.logs.health.go_offline("EIO", "a test")
    (result,) = describe(h).results
    assert result.error_code == ErrorCode.kafka_storage_error
    assert result.topics == ()
    assert result.log_dir == os.path.abspath(h.logs.data_dir)


# -- AlterReplicaLogDirs --------------------------------------------------------------------

def alter(h, moves: dict[str, dict[str, list[int]]], version=2) -> dict[tuple[str, int], ErrorCode]:
    """moves: {path: {topic: [partitions]}} -> {(topic, partition): error code}."""
    q = h.req(ALTER_REPLICA_LOG_DIRS, version)
    dirs = tuple(q.AlterReplicaLogDir(path=path, topics=tuple(
        q.AlterReplicaLogDirTopic(name=name, partitions=tuple(parts)) for name, parts in topics.items()))
        for path, topics in moves.items())
    response = h.call(q.AlterReplicaLogDirsRequest(dirs=dirs))
    return {(t.topic_name, p.partition_index): p.error_code for t in response.results for p in t.partitions}


@pytest.mark.parametrize("version", (1, 2))
def test_moving_a_replica_to_its_own_dir_succeeds_and_keeps_it(h, version):
    here = os.path.abspath(h.logs.data_dir)
    before = _on_disk(h, "a", 0)
    assert alter(h, {here: {"a": [0, 1], "b": [0]}}, version) == {
        ("a", 0): ErrorCode.none, ("a", 1): ErrorCode.none, ("b", 0): ErrorCode.none}
    assert h.logs.partition("a", 0).log.path.parent == h.logs.data_dir
    assert sizes(describe(h, {"a": [0]}).results[0])[("a", 0)][0] == before


def test_an_unknown_dir_is_log_dir_not_found(h, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    relative = os.path.relpath(h.logs.data_dir)
    assert alter(h, {str(other): {"a": [0]}, relative: {"b": [0]}}) == {
        ("a", 0): ErrorCode.log_dir_not_found, ("b", 0): ErrorCode.log_dir_not_found}


def test_an_unknown_partition(h):
    here = os.path.abspath(h.logs.data_dir)
    assert alter(h, {here: {"a": [2], "nope": [0]}}) == {
        ("a", 2): ErrorCode.unknown_topic_or_partition, ("nope", 0): ErrorCode.unknown_topic_or_partition}


def test_a_dir_is_checked_before_the_partition(h):
    assert alter(h, {"/no/such/dir": {"nope": [0]}}) == {("nope", 0): ErrorCode.log_dir_not_found}


def test_a_too_long_topic_name_is_invalid(h):
    name = "x" * 249
    h.logs.create_topic(name, 1)
    here = os.path.abspath(h.logs.data_dir)
    assert alter(h, {here: {name: [0], "a": [0]}}) == {
        (name, 0): ErrorCode.invalid_topic_exception, ("a", 0): ErrorCode.none}


def test_an_offline_dir_is_a_storage_error(h):
    h.logs.health.go_offline("EIO", "a test")
    here = os.path.abspath(h.logs.data_dir)
    assert alter(h, {here: {"a": [0]}}) == {("a", 0): ErrorCode.kafka_storage_error}
