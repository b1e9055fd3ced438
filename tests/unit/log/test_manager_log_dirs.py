"""LogManager with several log dirs (``log.dirs``): placement of new partitions, finding
them again at load, moves between dirs (and a move a crash interrupted), per-dir health."""

from __future__ import annotations

import errno
import os
import shutil
from contextlib import closing

import pytest

from kavka.cli.main import main
from kavka.clock import ManualClock
from kavka.config import BrokerConfig
from kavka.log import dir_move
from kavka.log import log_manager as lm
from kavka.log.errors import DataDirUnusable, LogDirOffline, StorageError
from kavka.log.log_manager import LogManager
from kavka.protocol.record_codec import decode_records, encode_batch
from kavka.protocol.records import iter_batches

NOW = 1_700_000_000_000
V = 9  # produce version


@pytest.fixture
def dirs(tmp_path):
    return [tmp_path / "a", tmp_path / "b", tmp_path / "c"]


def open_manager(dirs) -> LogManager:
    """A loaded LogManager whose log.dirs are ``dirs`` (the first is its data dir)."""
    manager = LogManager(dirs[0], BrokerConfig.from_strings({"log.dirs": ",".join(map(str, dirs))}), ManualClock(NOW))
    manager.load()
    return manager


@pytest.fixture
def manager(dirs):
    with closing(open_manager(dirs)) as m:
        yield m


def home(manager, topic, index):
    return manager.partition(topic, index).log.path.parent


def produce(partition, start: int, count: int) -> None:
    for i in range(start, start + count):
        batch = bytearray(encode_batch([(b"k%d" % i, b"v%d" % i, NOW, ())]))
        partition.append_records(batch, V, NOW)


def values(partition) -> list[bytes]:
    plog = partition.log
    data = b"".join(s.read() for s in plog.read(plog.log_start_offset, 10**7).slices)
    return [r.value for p, _h in iter_batches(data) for r in decode_records(data, p)]


def test_new_partitions_go_to_the_dir_holding_fewest_first_in_order(manager, dirs):
    a, b, c = dirs
    manager.create_topic("t", 4)
    assert [home(manager, "t", i) for i in range(4)] == [a, b, c, a]
    manager.create_topic("u", 2)
    assert [home(manager, "u", i) for i in range(2)] == [b, c]
    manager.delete_topic("t")  # a: 0, b: 1, c: 1
    manager.create_partitions("u", 4)
    assert [home(manager, "u", i) for i in range(2, 4)] == [a, a]
    assert all(d.path in dirs for d in manager.log_dirs()) and [d.path for d in manager.log_dirs()] == dirs


def test_only_the_first_dir_holds_the_catalog_and_every_dir_is_locked_and_identified(manager, dirs):
    a, b, c = dirs
    assert (a / lm.META_DIR).is_dir() and not (b / lm.META_DIR).exists()
    ids = {(d / lm.META_PROPERTIES).read_text() for d in dirs}
    assert len(ids) == 1 and f"cluster.id={manager.cluster_id}" in ids.pop()
    with pytest.raises(lm.DataDirLocked, match=str(c)):
        LogManager(c, BrokerConfig.from_strings({"log.dirs": str(c)}), ManualClock(NOW)).load()


def test_partitions_are_found_in_whichever_dir_holds_them(dirs):
    a, b, c = dirs
    m = open_manager(dirs)
    m.create_topic("t", 3)
    for i in range(3):
        produce(m.partition("t", i), 0, 2 + i)
    m.close()
    shutil.move(str(a / "t-0"), str(c / "t-0"))  # an operator moved it while the broker was stopped
    m = open_manager(dirs)
    try:
        assert [home(m, "t", i) for i in range(3)] == [c, b, c]
        assert [values(m.partition("t", i)) for i in range(3)] == [
            [b"v0", b"v1"], [b"v0", b"v1", b"v2"], [b"v0", b"v1", b"v2", b"v3"]]
        m.create_topic("u", 1)
        assert home(m, "u", 0) == a  # a holds none now
    finally:
        m.close()


def test_one_partition_in_two_dirs_is_refused(dirs):
    a, b, _c = dirs
    m = open_manager(dirs)
    m.create_topic("t", 1)
    m.close()
    shutil.copytree(a / "t-0", b / "t-0")
    with pytest.raises(DataDirUnusable, match="t-0 is in both"):
        open_manager(dirs)


def test_a_dir_of_another_cluster_is_refused(dirs):
    _a, b, _c = dirs
    open_manager(dirs).close()
    (b / lm.META_PROPERTIES).write_text("version=1\ncluster.id=someoneelse\nnode.id=0\n")
    with pytest.raises(DataDirUnusable, match="another cluster"):
        open_manager(dirs)


def test_a_stray_in_a_second_dir_is_set_aside(dirs):
    _a, b, _c = dirs
    m = open_manager(dirs)
    m.create_topic("t", 1)
    m.close()
    (b / "gone-0").mkdir()
    m = open_manager(dirs)
    try:
        assert [p.name.endswith(lm.STRAY_SUFFIX) for p in b.glob("gone-0*")] == [True]
        m.create_topic("v", 2)
        assert [home(m, "v", i) for i in range(2)] == [b, dirs[2]]  # the stray counts for nothing
    finally:
        m.close()


def test_move_keeps_every_record_and_serves_from_the_new_dir(manager, dirs):
    a, _b, c = dirs
    manager.create_topic("t", 1)
    produce(manager.partition("t", 0), 0, 5)
    target = manager.log_dirs()[2]
    manager.move_partition("t", 0, target)
    moved = manager.partition("t", 0)
    assert moved.health is target and moved.log.path == c / "t-0" and not (a / "t-0").exists()
    assert values(moved) == [b"v%d" % i for i in range(5)]
    produce(moved, 5, 2)
    assert moved.log.log_end_offset == 7 and values(moved)[-1] == b"v6"
    manager.move_partition("t", 0, target)  # already there: nothing happens
    assert manager.partition("t", 0) is moved
    manager.create_topic("u", 2)
    assert [home(manager, "u", i) for i in range(2)] == [a, dirs[1]]  # the move changed the counts


def test_a_precopied_move_keeps_what_was_written_and_deleted_meanwhile(dirs):
    """The pre-copy runs while the partition serves: records appended after it, a segment
    rolled, and a segment retention deleted meanwhile all end up as in the source."""
    m = open_manager(dirs)
    try:
        m.create_topic("t", 1, {"segment.bytes": "2048"})
        partition = m.partition("t", 0)
        produce(partition, 0, 40)
        target = m.log_dirs()[1]
        future = m.precopy_move("t", 0, target)
        assert future.parent == dirs[1] and future.name.endswith("-future")
        first = sorted(partition.log.path.glob("*.log"))[0]
        produce(partition, 40, 40)                                  # grows and rolls segments
        assert partition.log.delete_oldest_segment()                # as retention would
        start = partition.log.log_start_offset
        m.move_partition("t", 0, target, future)
        moved = m.partition("t", 0)
        assert moved.log.path == dirs[1] / "t-0" and not future.exists()
        assert moved.log.log_start_offset == start > 0
        assert values(moved) == [b"v%d" % i for i in range(start, 80)]
        assert not (moved.log.path / first.name).exists()
    finally:
        m.close()


def test_a_precopy_of_a_partition_already_there_or_deleted_is_dropped(manager, dirs):
    manager.create_topic("t", 1)
    target = manager.log_dirs()[1]
    future = manager.precopy_move("t", 0, target)
    manager.move_partition("t", 0, target)                           # another request moved it first
    manager.move_partition("t", 0, target, future)
    assert not future.exists() and manager.partition("t", 0).log.path == dirs[1] / "t-0"


def test_a_moved_partition_is_found_there_after_a_restart(dirs):
    m = open_manager(dirs)
    m.create_topic("t", 1)
    produce(m.partition("t", 0), 0, 3)
    m.move_partition("t", 0, m.log_dirs()[1])
    m.close()
    m = open_manager(dirs)
    try:
        assert home(m, "t", 0) == dirs[1] and values(m.partition("t", 0)) == [b"v0", b"v1", b"v2"]
    finally:
        m.close()


def test_a_parked_fetch_is_woken_by_a_move(manager):
    manager.create_topic("t", 1)
    old = manager.partition("t", 0).log
    woken = []
    old.listeners.append(woken.append)
    manager.move_partition("t", 0, manager.log_dirs()[1])
    assert woken == [old] and old.is_closed


def test_a_failed_copy_leaves_the_partition_where_it_was(manager, dirs, monkeypatch):
    manager.create_topic("t", 1)
    produce(manager.partition("t", 0), 0, 3)

    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(dir_move, "sync_file_system", full)
    target = manager.log_dirs()[1]
    with pytest.raises(StorageError):
        manager.move_partition("t", 0, target)
    p = manager.partition("t", 0)
    assert p.log.path == dirs[0] / "t-0" and not p.log.is_closed and values(p) == [b"v0", b"v1", b"v2"]
    assert sorted(os.listdir(dirs[1])) == sorted([lm.LOCK_FILE, lm.META_PROPERTIES])
    assert target.full_reason is not None and not target.offline
    produce(p, 3, 1)
    assert p.log.log_end_offset == 4


def test_a_failed_swap_takes_the_partitions_dir_offline_and_the_next_load_finishes(dirs, monkeypatch):
    m = open_manager(dirs)
    m.create_topic("t", 1)
    m.create_topic("other", 1)  # in b, untouched by a's failure
    produce(m.partition("t", 0), 0, 3)
    real_rename = os.rename

    def rename(src, dst):
        if str(src).endswith(dir_move.FUTURE_SUFFIX):
            raise OSError(errno.EIO, "Input/output error", str(src))
        real_rename(src, dst)

    monkeypatch.setattr(dir_move.os, "rename", rename)
    with pytest.raises(LogDirOffline):
        m.move_partition("t", 0, m.log_dirs()[2])
    monkeypatch.undo()
    assert m.partition("t", 0).offline and not m.partition("other", 0).offline
    m.close()
    m = open_manager(dirs)  # the source was renamed aside after the copy was synced: completed
    try:
        assert home(m, "t", 0) == dirs[2] and values(m.partition("t", 0)) == [b"v0", b"v1", b"v2"]
        assert not list(dirs[0].glob("t-0*")) and not list(dirs[2].glob("*-future"))
    finally:
        m.close()


def test_an_interrupted_copy_is_undone_at_load(dirs):
    m = open_manager(dirs)
    m.create_topic("t", 1)
    produce(m.partition("t", 0), 0, 2)
    m.close()
    future = dir_move.copy_to_future(dirs[0] / "t-0", dirs[1])
    m = open_manager(dirs)
    try:
        assert not future.exists() and home(m, "t", 0) == dirs[0]
        assert values(m.partition("t", 0)) == [b"v0", b"v1"]
    finally:
        m.close()


def test_one_dir_offline_leaves_the_others_online(manager, dirs):
    manager.create_topic("t", 2)
    a_dir, b_dir = manager.log_dirs()[:2]
    b_dir.go_offline("EIO", "a test")
    assert not manager.partition("t", 0).offline and manager.partition("t", 1).offline
    manager.create_topic("u", 2)
    assert [home(manager, "u", i) for i in range(2)] == [dirs[2], dirs[0]]  # never the offline dir
    assert a_dir.offline is False


def test_kavka_check_scans_and_repairs_every_log_dir(dirs, capsys):
    m = open_manager(dirs)
    m.create_topic("t", 2)  # t-1 in the second dir
    produce(m.partition("t", 1), 0, 10)
    m.close()
    log_file = dirs[1] / "t-1" / f"{0:020d}.log"
    data = bytearray(log_file.read_bytes())
    first_batch_size = len(data) // 10
    data[first_batch_size * 6 + 30] ^= 0xFF  # inside the 7th batch
    log_file.write_bytes(bytes(data))
    assert main(["check", *map(str, dirs)]) == 1
    out = capsys.readouterr().out
    assert f"CORRUPT t-1/{log_file.name} at byte {first_batch_size * 6}" in out and "checked 2 partitions" in out
    assert main(["check", "--repair", *map(str, dirs)]) == 1
    assert main(["check", *map(str, dirs)]) == 0
    m = open_manager(dirs)
    try:
        assert home(m, "t", 1) == dirs[1] and values(m.partition("t", 1)) == [b"v%d" % i for i in range(6)]
    finally:
        m.close()
