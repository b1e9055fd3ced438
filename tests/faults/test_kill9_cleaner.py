"""kill -9 of a real broker while the log cleaner or retention is at work.

The unit tests (tests/unit/log/test_cleaner_crash.py) stop a cleaning after
each step in-process.  Here a real ``kavka serve`` process is SIGKILLed while it
cleans or deletes, then restarted on the same data directory, repeatedly:

* at moments found by watching it: while the cleaner's child process runs,
  when ``*.cleaned`` files appear, when a ``*.swap`` appears (the install), or
  after a random delay;
* at exact steps, with ``strace`` fault injection: SIGKILL delivered on entry
  to the broker's N-th ``rename`` after attaching, i.e. just before that step
  of the install (cleaned -> swap, old segment -> deleted, swap -> final,
  checkpoint) or of a retention deletion (log-start-offset checkpoint,
  segment -> deleted).  Skipped where strace cannot attach.

Records are produced with acks=all and every delivery report is awaited before
a kill, so every stored record was acknowledged.  What a compacted partition
must look like after each restart (``delete.retention.ms`` is an hour, so a
tombstone is never dropped here, only superseded values are):

* offsets strictly increase, the high watermark is the acknowledged end;
* every record is the acknowledged one at its offset (key and value);
* for every key written, the last record in the log is the last acknowledged
  write of that key at its offset (a tombstone if the last write was one).
  An older value of a key may be there or not, depending on whether that
  cleaning committed: nothing else is allowed to vary.

For retention: the log start offset never goes back, and the records from it
to the high watermark are exactly the acknowledged ones, densely.

A cleaner child orphaned by the kill is found by its command line and the
data directory its open files point into; it must exit by itself (it watches
its parent) within a few seconds, and is killed by PID if it does not, before
the restart.
"""

from __future__ import annotations

import functools
import os
import random
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

import broker_process
from broker_process import RECOVERED_PHRASE, create_topic, read_all, watermarks

pytestmark = pytest.mark.slow  # kill -9 of broker processes at each cleaner/retention step (~7-9 s each)

TOPIC = "compacted"
KEYS = 150
CLEANER_ARG = b"kavka.log.cleaner_process"
BROKER_SETTINGS = {"num.partitions": 1, "log.cleaner.backoff.ms": 50}
COMPACTED = {"cleanup.policy": "compact", "segment.bytes": "16384", "min.cleanable.dirty.ratio": "0.01",
             "delete.retention.ms": "3600000", "min.compaction.lag.ms": "0"}
PAD = b"~" * 48


# -- processes -----------------------------------------------------------------------------

def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _ppid(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2:].split()[1])


def _alive(pid: int) -> bool:
    """Running (not a zombie) and still a cleaner process (the PID was not reused)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z" and CLEANER_ARG in _cmdline(pid)


def cleaner_children(broker_pid: int) -> list[int]:
    """PIDs of the broker's cleaner child processes now."""
    try:  # the kernel's list of the main thread's children (CONFIG_PROC_CHILDREN)
        listed = Path(f"/proc/{broker_pid}/task/{broker_pid}/children").read_text().split()
        return [int(pid) for pid in listed if CLEANER_ARG in _cmdline(int(pid))]
    except FileNotFoundError:
        if not Path(f"/proc/{broker_pid}").exists():
            return []
    except OSError:
        pass
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit() and _ppid(int(name)) == broker_pid and CLEANER_ARG in _cmdline(int(name)):
            pids.append(int(name))
    return pids


def orphaned_cleaners(data_dir: Path, known: set[int]) -> list[int]:
    """Cleaner processes still alive that belong to this test's broker: the PIDs seen as its
    children, plus any cleaner process whose open files lie in ``data_dir`` (one spawned
    between the last look and the kill)."""
    found = {pid for pid in known if _alive(pid)}
    prefix = str(data_dir.resolve())
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in found or CLEANER_ARG not in _cmdline(int(name)):
            continue
        try:
            fds = os.listdir(f"/proc/{name}/fd")
            links = [os.readlink(f"/proc/{name}/fd/{fd}") for fd in fds]
        except OSError:
            continue
        if any(link.startswith(prefix) for link in links) and _alive(int(name)):
            found.add(int(name))
    return sorted(found)


def reap_orphans(data_dir: Path, known: set[int], grace: float = 5.0) -> tuple[int, list[int]]:
    """Cleaner children that outlived the broker's kill -9.  They must notice and exit on
    their own (kavka.log.cleaner_process watches its parent); wait ``grace`` seconds for
    that, then SIGKILL (by PID) any still alive.  Returns (how many outlived the broker,
    those that had to be killed)."""
    orphans = orphaned_cleaners(data_dir, known)
    deadline = time.monotonic() + grace
    while any(_alive(pid) for pid in orphans) and time.monotonic() < deadline:
        time.sleep(0.01)
    stuck = [pid for pid in orphans if _alive(pid)]
    for pid in stuck:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in stuck):
        assert time.monotonic() < deadline, f"cleaner processes {stuck} survived SIGKILL"
        time.sleep(0.01)
    return len(orphans), stuck


# Polls fast: the moments this file kills at (a file appearing, a rename) are short.
wait_for = functools.partial(broker_process.wait_for, interval=0.001)


def leftovers(partition_dir: Path) -> list[str]:
    """Files of unfinished operations: what a kill left for the next start to finish."""
    try:
        names = os.listdir(partition_dir)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.endswith((".cleaned", ".swap", ".deleted", ".tmp")))


def _strace_works() -> bool:
    if shutil.which("strace") is None:
        return False
    try:
        probe = subprocess.run(["strace", "-q", "-o", "/dev/null", "-e", "trace=getpid", "true"],
                               capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


class RenameKiller:
    """Attach strace to the broker's main thread; SIGKILL it on entry to its ``n``-th rename
    from now on (the rename does not happen).  ``renames`` lists what it saw."""

    def __init__(self, pid: int, n: int, out: Path) -> None:
        self.pid, self.n, self.out = pid, n, out
        calls = "rename,renameat,renameat2"
        self.proc = subprocess.Popen(["strace", "-o", str(out), "-e", f"trace={calls}",
                                      "-e", f"inject={calls}:signal=KILL:when={n}", "-p", str(pid)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(lambda: self._traced() or self.proc.poll() is not None, 10, "strace to attach")
        assert self.proc.poll() is None, f"strace exited with {self.proc.returncode}"

    def _traced(self) -> bool:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return False
        return re.search(r"^TracerPid:\s*(\d+)", status, re.M).group(1) == str(self.proc.pid)

    def stop(self) -> None:
        """Detach (SIGTERM to our strace) if it is still attached, and reap it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    @property
    def renames(self) -> list[str]:
        try:
            lines = self.out.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [line for line in lines if line.startswith("rename")]

    @property
    def killed_at(self) -> str | None:
        """The rename the broker was killed on (its call, which never completed)."""
        last = self.renames[-1:]
        return last[0] if last and last[0].rstrip().endswith("= ?") else None


# -- producing and checking ----------------------------------------------------------------

class Ledger:
    """Every acknowledged write of one partition: offset -> (key, value)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.acked: dict[int, tuple[bytes, bytes | None]] = {}
        self.rounds = 0

    def produce(self, bootstrap: str, rng: random.Random, count: int, *, keyed: bool = True) -> None:
        """``count`` writes, all acknowledged before returning: keyed ones go to a few hot keys
        and about one in seven to a key never written again; about one in eight is a tombstone."""
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 2,
                             "batch.num.messages": 25, "enable.idempotence": False,
                             "message.timeout.ms": 20000})
        errors = []

        def on_delivery(err, msg) -> None:
            if err is not None:
                errors.append(err)
            elif msg.offset() in self.acked:
                errors.append(f"two acks for offset {msg.offset()}")
            else:
                self.acked[msg.offset()] = (msg.key(), msg.value())

        tag = self.rounds
        self.rounds += 1
        for seq in range(count):
            if not keyed:
                key = f"r{tag}-{seq}".encode()
            elif rng.random() < 0.15:  # written once: survives every cleaning where it is
                key = f"once-{tag}-{seq}".encode()
            else:
                key = f"key-{rng.randrange(KEYS):03d}".encode()
            value = None if keyed and rng.random() < 0.125 else f"r{tag}-{seq}:".encode() + PAD
            producer.produce(self.topic, key=key, value=value, partition=0, on_delivery=on_delivery)
            if seq % 500 == 499:
                producer.poll(0)
        assert producer.flush(30) == 0, "records without a delivery report"
        assert not errors, errors[:3]

    @property
    def end(self) -> int:
        return max(self.acked) + 1 if self.acked else 0

    def latest(self) -> dict[bytes, tuple[int, bytes | None]]:
        out = {}
        for offset in sorted(self.acked):
            key, value = self.acked[offset]
            out[key] = (offset, value)
        return out


def check_compacted(entries: list, ledger: Ledger, low: int, high: int, when: str) -> int:
    """The contract of the module doc for a compacted partition; returns how many superseded
    records are gone (cleaned away)."""
    assert low == 0, f"{when}: log start offset {low} on a compact-only topic"
    assert high == ledger.end, f"{when}: high watermark {high}, acknowledged end {ledger.end}"
    offsets = [offset for offset, _k, _v in entries]
    assert all(a < b for a, b in zip(offsets, offsets[1:])), f"{when}: offsets do not increase"
    wrong = [(o, k, v, ledger.acked.get(o)) for o, k, v in entries if ledger.acked.get(o) != (k, v)]
    assert not wrong, (f"{when}: {len(wrong)} records are not what was acknowledged at their offset, "
                       f"e.g. (offset, key, value, acknowledged) {wrong[:3]}")
    last = {}
    for offset, key, value in entries:
        last[key] = (offset, value)
    expected = ledger.latest()
    lost = sorted((k, o) for k, (o, v) in expected.items() if last.get(k) != (o, v))
    assert not lost, (f"{when}: {len(lost)} keys do not end with their last acknowledged write, e.g. "
                      f"{[(k, o, last.get(k)) for k, o in lost[:3]]}")
    assert last.keys() == expected.keys()
    return len(ledger.acked) - len(entries)


def check_no_errors(broker, when: str) -> None:
    """The current start of the broker logged no error and no traceback (so far)."""
    log = broker.log_text()
    bad = [line for line in log.splitlines() if "Traceback" in line or " ERROR " in line or " CRITICAL " in line]
    assert not bad, f"{when}: the broker logged errors:\n{log}"


def check_clean_start(broker, when: str) -> None:
    assert RECOVERED_PHRASE in broker.log_text(), f"{when}: the restart did not recover:\n{broker.log_text()}"
    check_no_errors(broker, when)


def segment_span(path: Path) -> tuple[int, int] | None:
    """(first base offset, last offset) of the batches in a segment file; None if empty or gone."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:  # swapped or deleted meanwhile by the running cleaner
        return None
    pos, first, last = 0, None, None
    while pos + 27 <= len(data):
        base = int.from_bytes(data[pos:pos + 8], "big")
        first = base if first is None else first
        last = base + int.from_bytes(data[pos + 23:pos + 27], "big", signed=True)
        pos += 12 + int.from_bytes(data[pos + 8:pos + 12], "big")
    return None if first is None else (first, last)


def _segment_files(partition_dir: Path) -> tuple[list[int], bool]:
    names = os.listdir(partition_dir)
    bases = sorted(int(n[:20]) for n in names if n.endswith(".log") and n[:20].isdigit())
    return bases, any(n.endswith(".swap") for n in names)


def check_segments(partition_dir: Path, when: str) -> None:
    """The segment files on disk do not overlap: each one's batches lie between its own
    base offset and the next segment's (what a completed swap or deletion leaves).  The
    running broker may be installing a cleaning meanwhile: judged on a listing that did
    not change while the files were read."""
    for _attempt in range(100):
        bases, swapping = _segment_files(partition_dir)
        spans = {base: segment_span(partition_dir / f"{base:020d}.log") for base in bases}
        if not swapping and _segment_files(partition_dir) == (bases, False):
            break
        time.sleep(0.01)
    else:
        raise AssertionError(f"{when}: the segment files kept changing")
    for base, upper in zip(bases, bases[1:] + [None]):
        span = spans[base]
        if span is None:
            continue
        assert span[0] >= base and (upper is None or span[1] < upper), \
            f"{when}: segment {base} holds offsets {span[0]}..{span[1]}, overlapping segment {upper}"


def read_partition(broker, topic: str) -> tuple[list, int, int]:
    """The partition's records from its log start offset, and the watermarks they were read at.
    Retention keeps running after a restart: when it deletes the segment being read (offset out
    of range from the old start), the read starts again from the new one."""
    for attempt in range(5):
        low, high = watermarks(broker.bootstrap_servers, topic, 1)[0]
        try:
            entries = read_all(broker.bootstrap_servers, topic, 1, start={0: low})[0] if high > low else []
        except AssertionError as exc:
            if "_AUTO_OFFSET_RESET" not in str(exc) or attempt == 4:
                raise
            continue
        return entries, low, high


# -- kill -9 at moments found by watching the broker ---------------------------------------

MODES = ["child", "cleaned", "swap", "random", "swap", "child", "cleaned", "swap"]


def kill_while_cleaning(broker, partition_dir: Path, mode: str, rng: random.Random) -> tuple[str, set[int]]:
    """kill -9 at a moment chosen by ``mode``; returns (what was going on, cleaner PIDs seen)."""
    seen: set[int] = set()
    pid = broker.pid

    def look(predicate):
        def check():
            children = cleaner_children(pid)
            seen.update(children)
            return predicate(children)
        return check

    if mode == "random":
        deadline = time.monotonic() + rng.uniform(0.0, 0.6)
        while time.monotonic() < deadline:
            look(lambda _c: False)()
            time.sleep(0.005)
    elif mode == "child":
        wait_for(look(bool), 10, "a cleaner child process")
        time.sleep(rng.uniform(0.0, 0.08))
    else:
        suffix = ".cleaned" if mode == "cleaned" else ".swap"
        wait_for(look(lambda _c: any(n.endswith(suffix) for n in os.listdir(partition_dir))), 10,
                 f"{suffix} files in {partition_dir}")
    alive = bool(cleaner_children(pid))
    broker.kill9()
    state = ",".join(sorted({n.rsplit(".", 1)[1] for n in leftovers(partition_dir)})) or "no leftovers"
    return f"{mode}: {'child running' if alive else 'no child'}, {state}", seen


def test_kill9_while_cleaning(broker_process_factory):
    broker = broker_process_factory(overrides=BROKER_SETTINGS)
    create_topic(broker.bootstrap_servers, TOPIC, 1, COMPACTED)
    partition_dir = broker.data_dir / f"{TOPIC}-0"
    rng = random.Random(20261125)
    ledger = Ledger(TOPIC)
    moments, orphans, cleaned_away = [], 0, 0
    for cycle, mode in enumerate(MODES):
        ledger.produce(broker.bootstrap_servers, rng, 1500)
        check_no_errors(broker, f"cycle {cycle}, before the kill")
        moment, seen = kill_while_cleaning(broker, partition_dir, mode, rng)
        at_kill = set(leftovers(partition_dir))
        outlived, stuck = reap_orphans(broker.data_dir, seen)
        assert not stuck, f"cycle {cycle}: cleaner processes {stuck} kept running after the broker died"
        orphans += outlived
        written = sorted(set(leftovers(partition_dir)) - at_kill)
        assert not written, f"cycle {cycle}: an orphaned cleaner wrote {written} after the broker died"
        moments.append(moment)
        broker.restart()
        when = f"cycle {cycle} (killed at {moment})"
        check_clean_start(broker, when)
        check_segments(partition_dir, when)
        entries, low, high = read_partition(broker, TOPIC)
        cleaned_away = check_compacted(entries, ledger, low, high, when)
        print(f"{when}: {len(entries)} records of {len(ledger.acked)} acknowledged")
    print(f"cleaner processes that outlived the broker (and then exited): {orphans}")
    busy = [m for m in moments if "child running" in m or "cleaned" in m or "swap" in m]
    assert len(busy) >= 4, f"too few kills hit a cleaning: {moments}"
    # the cleaner still works after all this: it cleans everything closed, and below its
    # checkpoint every key is left once
    wait_for(lambda: not cleaner_children(broker.pid) and _checkpoint(partition_dir) == _active_base(partition_dir),
             15, "the cleaner to catch up", interval=0.02)
    checkpoint = _checkpoint(partition_dir)
    entries, low, high = read_partition(broker, TOPIC)
    cleaned_away = check_compacted(entries, ledger, low, high, "after the last cleaning")
    below = [key for offset, key, _v in entries if offset < checkpoint]
    assert len(below) == len(set(below)), "a key appears twice below the cleaner checkpoint"
    assert cleaned_away > len(ledger.acked) // 2, "the cleaner removed (almost) nothing"
    check_segments(partition_dir, "after the last cleaning")
    check_no_errors(broker, "after the last cleaning")
    assert broker.terminate() == 0


def _checkpoint(partition_dir: Path) -> int | None:
    try:
        return int((partition_dir / "cleaner-offset-checkpoint").read_text())
    except (OSError, ValueError):
        return None


def _active_base(partition_dir: Path) -> int:
    return max(int(n[:20]) for n in os.listdir(partition_dir) if n.endswith(".log") and n[:20].isdigit())


# -- kill -9 at exact steps (strace fault injection) ---------------------------------------

needs_strace = pytest.mark.skipif(not _strace_works(), reason="strace cannot trace here (missing or no ptrace)")

# The N-th rename of the broker's main thread after the cleaner child is seen.  An install
# renames, per cleaned group: its index, time index and log to *.swap (the log last: the
# commit point); each replaced segment's log, index and time index to *.deleted; the swap
# files to their final names (log last); then the cleaner-offset-checkpoint.
STEPS = [1, 3, 4, 5, 6, 7, 8, 9, 10, 13, 16]


@needs_strace
def test_kill9_at_install_steps(broker_process_factory, tmp_path):
    broker = broker_process_factory(overrides=BROKER_SETTINGS)
    create_topic(broker.bootstrap_servers, TOPIC, 1, COMPACTED)
    partition_dir = broker.data_dir / f"{TOPIC}-0"
    rng = random.Random(1125)
    ledger = Ledger(TOPIC)
    crashed_states = []
    for n in STEPS:
        ledger.produce(broker.bootstrap_servers, rng, 1200)
        check_no_errors(broker, f"before the kill at rename {n}")
        seen = set(wait_for(lambda: cleaner_children(broker.pid), 10, "a cleaner child process"))
        killer = RenameKiller(broker.pid, n, tmp_path / f"strace-{n}.txt")
        try:
            child_alive = any(_alive(pid) for pid in seen)
            try:
                wait_for(lambda: not broker.running, 10, f"the kill at rename {n}", interval=0.005)
            except AssertionError:
                pass  # fewer renames than n: no kill happened
        finally:
            killer.stop()
        killed_at = killer.killed_at
        broker.kill9()  # reaps it (or kills it if strace never did)
        assert not reap_orphans(broker.data_dir, seen)[1], "a cleaner process kept running"
        state = leftovers(partition_dir)
        crashed_states.append((n, child_alive, killed_at, state))
        broker.restart()
        when = f"kill at rename {n} ({killed_at}; leftovers {state})"
        check_clean_start(broker, when)
        check_segments(partition_dir, when)
        entries, low, high = read_partition(broker, TOPIC)
        check_compacted(entries, ledger, low, high, when)
        print(when)
    wait_for(lambda: not cleaner_children(broker.pid), 15, "the last cleaning to end", interval=0.02)
    check_no_errors(broker, "after the last restart")
    # the kills hit the install: before the commit point, with a swap and the replaced
    # segments intact, and with the replaced segments partly deleted
    swaps = [s for s in crashed_states if any(name.endswith(".log.swap") for name in s[3])]
    assert any(s[2] and ".cleaned" in s[2] for s in crashed_states), crashed_states
    assert len(swaps) >= 3, f"too few kills between the commit point and the final rename: {crashed_states}"
    assert any(s[2] and "cleaner-offset-checkpoint" in s[2] for s in crashed_states) or \
        any(s[2] and ".deleted" in s[2] for s in crashed_states), crashed_states


# -- kill -9 during retention --------------------------------------------------------------

RETAINED = {"cleanup.policy": "delete", "segment.bytes": "16384", "retention.ms": "800"}


def check_retained(entries: list, ledger: Ledger, low: int, high: int, floor: int, when: str) -> None:
    assert low >= floor, f"{when}: log start offset went back from {floor} to {low}"
    assert high == ledger.end, f"{when}: high watermark {high}, acknowledged end {ledger.end}"
    expected = [(o, *ledger.acked[o]) for o in range(low, high)]
    assert entries == expected, (f"{when}: records [{low}, {high}) differ from the acknowledged ones: "
                                 f"{len(entries)} read, {len(expected)} expected")


def _stored_log_start(partition_dir: Path) -> int:
    try:
        return int((partition_dir / "log-start-offset").read_text())
    except (OSError, ValueError):
        return 0


@pytest.mark.parametrize("how", ["watching", pytest.param("strace", marks=needs_strace)])
def test_kill9_during_retention(broker_process_factory, tmp_path, how):
    broker = broker_process_factory(overrides={**BROKER_SETTINGS, "log.retention.check.interval.ms": 100})
    topic = "retained"
    create_topic(broker.bootstrap_servers, topic, 1, RETAINED)
    partition_dir = broker.data_dir / f"{topic}-0"
    rng = random.Random(f"retention-{how}")
    ledger = Ledger(topic)
    floor, deletions, states = 0, 0, []
    # watching: kill when the log start offset file changes (a deletion is under way or
    # just done), or at random; strace: kill on the 1st..4th rename of a deletion (before
    # the log-start-offset checkpoint is renamed in, then before each file goes to *.deleted)
    plan = ["moved", "random", "moved", "random", "moved", "moved"] if how == "watching" else [1, 2, 3, 4, 5, 2]
    for cycle, step in enumerate(plan):
        ledger.produce(broker.bootstrap_servers, rng, 1200, keyed=False)
        check_no_errors(broker, f"cycle {cycle}, before the kill")
        before = max(floor, _stored_log_start(partition_dir))
        if step == "random":
            time.sleep(rng.uniform(0.5, 1.5))
            broker.kill9()
            killed_at = "random"
        elif step == "moved":
            wait_for(lambda: _stored_log_start(partition_dir) > before or
                     any(n.endswith(".deleted") for n in os.listdir(partition_dir)), 10, "a deletion")
            broker.kill9()
            killed_at = "after a deletion began"
        else:
            killer = RenameKiller(broker.pid, step, tmp_path / f"strace-{cycle}.txt")
            try:
                wait_for(lambda: not broker.running, 10, f"the kill at rename {step}", interval=0.005)
            finally:
                killer.stop()
            killed_at = killer.killed_at
            assert killed_at, f"no rename was interrupted: {killer.renames}"
            broker.kill9()
        state = leftovers(partition_dir)
        states.append((step, killed_at, state))
        floor = max(floor, _stored_log_start(partition_dir))  # persisted before any file went
        broker.restart()
        when = f"cycle {cycle} (killed at {killed_at}; leftovers {state})"
        check_clean_start(broker, when)
        check_segments(partition_dir, when)
        entries, low, high = read_partition(broker, topic)
        check_retained(entries, ledger, low, high, floor, when)
        deletions += low > floor
        floor = low
        print(when, f"log start offset {low}, high watermark {high}")
    assert floor > 0, "retention deleted nothing"
    if how == "strace":
        assert any(".deleted" in (k or "") for _s, k, _l in states), states
        assert any("log-start-offset" in (k or "") for _s, k, _l in states), states
