"""kavka.log.dir_move: the copy and swap of a partition directory between log dirs, and
the recovery of every state a crash can leave (the cases the module doc lists)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kavka.log import dir_move
from kavka.log.dir_move import copy_to_future, resolve_futures, swap_in


def make_partition(root: Path, name: str = "t-0") -> Path:
    path = root / name
    path.mkdir(parents=True)
    (path / "00000000000000000000.log").write_bytes(os.urandom(5000))
    (path / "00000000000000000000.index").write_bytes(b"\0" * 80)
    (path / "leader-epoch-checkpoint").write_text("0\n1\n0 0\n")
    return path


def contents(path: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in path.iterdir()}


@pytest.fixture
def roots(tmp_path) -> tuple[Path, Path]:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    return a, b


def test_copy_then_swap_moves_every_file(roots):
    a, b = roots
    source = make_partition(a)
    original = contents(source)
    future = copy_to_future(source, b)
    assert dir_move._FUTURE.fullmatch(future.name).group(1) == "t-0" and future.parent == b
    assert contents(future) == original and contents(source) == original
    final = swap_in(source, future)
    assert final == b / "t-0" and contents(final) == original
    assert sorted(os.listdir(a)) == [] and sorted(os.listdir(b)) == ["t-0"]


def test_a_failed_copy_leaves_no_future(roots, monkeypatch):
    a, b = roots
    source = make_partition(a)

    def fail(path):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(dir_move, "sync_file_system", fail)
    with pytest.raises(OSError):
        copy_to_future(source, b)
    assert os.listdir(b) == [] and (source / "00000000000000000000.log").exists()


def test_crash_during_the_copy_keeps_the_source(roots):
    """A future (perhaps partial) while <topic>-<p> still exists: the future goes."""
    a, b = roots
    source = make_partition(a)
    original = contents(source)
    future = copy_to_future(source, b)
    (future / "00000000000000000000.log").write_bytes(b"partial")
    resolve_futures([a, b])
    assert os.listdir(b) == [] and contents(source) == original


def test_crash_after_the_copy_before_the_swap_keeps_the_source(roots):
    a, b = roots
    source = make_partition(a)
    original = contents(source)
    copy_to_future(source, b)
    resolve_futures([b, a])  # the order of the roots does not matter
    assert os.listdir(b) == [] and contents(source) == original


def test_crash_after_the_source_was_renamed_aside_completes_the_move(roots):
    """No <topic>-<p> anywhere: the synced future is complete and is renamed into place;
    the source's -delete directory is left for the load's removal of -delete dirs."""
    a, b = roots
    source = make_partition(a)
    original = contents(source)
    future = copy_to_future(source, b)
    doomed = source.with_name(f"t-0.{'0' * 32}{dir_move.DELETE_SUFFIX}")
    os.rename(source, doomed)
    resolve_futures([a, b])
    assert contents(b / "t-0") == original and not future.exists()
    assert os.listdir(a) == [doomed.name]


def test_crash_after_the_swap_before_the_source_was_removed_keeps_the_new_copy(roots):
    a, b = roots
    source = make_partition(a)
    original = contents(source)
    future = copy_to_future(source, b)
    os.rename(source, source.with_name(f"t-0.{'1' * 32}{dir_move.DELETE_SUFFIX}"))
    os.rename(future, b / "t-0")
    resolve_futures([a, b])
    assert contents(b / "t-0") == original and sorted(os.listdir(b)) == ["t-0"]


def test_resolve_ignores_what_is_not_a_future(roots):
    a, b = roots
    (b / "t-0.notahex-future").mkdir()
    (b / f"t-0.{'2' * 32}-future").write_bytes(b"a file, not a directory")
    resolve_futures([a, b])
    assert sorted(os.listdir(b)) == [f"t-0.{'2' * 32}-future", "t-0.notahex-future"]


def test_copy_to_future_catches_a_precopy_up_with_appends_rewrites_and_deletions(tmp_path):
    source, dest = tmp_path / "a" / "t-0", tmp_path / "b"
    source.mkdir(parents=True)
    dest.mkdir()
    (source / "00.log").write_bytes(b"x" * 10_000)
    (source / "00.index").write_bytes(b"i" * 100)
    (source / "gone.snapshot").write_bytes(b"s")
    future = dir_move.precopy(source, dest)
    with open(source / "00.log", "ab") as f:
        f.write(b"y" * 500)                                            # appended
    (source / "00.index").write_bytes(b"j" * 100)                      # rewritten, same size
    os.utime(source / "00.index", ns=(1, 1))
    (source / "gone.snapshot").unlink()
    (source / "10.log").write_bytes(b"z" * 7)                          # new
    assert dir_move.copy_to_future(source, dest, future) == future
    assert {p.name: p.read_bytes() for p in future.iterdir()} == {
        p.name: p.read_bytes() for p in source.iterdir()}


def test_a_file_rewritten_shorter_then_longer_is_copied_again_not_appended(tmp_path):
    source, dest = tmp_path / "a" / "t-0", tmp_path / "b"
    source.mkdir(parents=True)
    dest.mkdir()
    (source / "00.log").write_bytes(b"a" * 5000)
    future = dir_move.precopy(source, dest)
    (source / "00.log").write_bytes(b"b" * 6000)                       # truncated and refilled
    dir_move.copy_to_future(source, dest, future)
    assert (future / "00.log").read_bytes() == b"b" * 6000
