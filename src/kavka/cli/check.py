"""``kavka check LOG_DIR... [--repair]``: verify every segment of a stopped broker's log dirs.

Reads every ``.log`` file of every partition directory batch by batch and checks
what the broker's crash recovery checks (kavka.log.segment.scan_log_file): that
the batches frame (a batch length that fits in the file), their magic byte, their
CRC-32C and that base offsets increase.  It prints one line per problem (file,
byte position, what is wrong, how many bytes and later segments lie after it) and
a summary; the exit status is 1 when anything is corrupt, 0 when all is well.

A broker with several log dirs (``log.dirs``) is checked with all of them, in
``log.dirs`` order: a repair run on the first alone would not find the
partitions the others hold.

``--repair`` then opens the log dirs the way the broker does after a crash but
with every segment re-validated (``LogManager.load(verify_all=True)``): each
damaged partition is cut at its first bad batch and the segments after it are
deleted, exactly as a broker start would (crash-safe for the same reasons).
The records after the bad batch are lost; on a lone broker there is no replica
to fetch them from (Kafka's recovery does the same; in a cluster the follower
then re-fetches from the leader).

Each log dir's lock (the broker's ``.lock`` flock) is taken first: a running
broker makes the command refuse.  A progress line is shown on a terminal.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from kavka.cli.common import CliError, Progress


def add_parser(commands) -> None:
    p = commands.add_parser(
        "check", help="verify the CRC and framing of every stored batch of a stopped broker",
        description="Scan every segment in the LOG_DIRs (framing, magic, CRC-32C, offset order) and report "
                    "corruption; exit status 1 when any was found.")
    p.add_argument("data_dirs", metavar="LOG_DIR", nargs="+",
                   help="the broker's data directory, then its other log.dirs in order (the broker must be stopped)")
    p.add_argument("--repair", action="store_true",
                   help="cut each damaged partition at its first bad batch (the records after it are lost), "
                        "as the broker's crash recovery does")


@dataclass
class Report:
    partitions: int = 0
    segments: int = 0
    batches: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)


def partition_dirs(data_dir: Path) -> list[Path]:
    """Directories named ``<topic>-<index>`` that hold segment files."""
    found = []
    for entry in sorted(os.scandir(data_dir), key=lambda e: e.name):
        topic, dash, index = entry.name.rpartition("-")
        if dash and topic and index.isdigit() and entry.is_dir():
            found.append(Path(entry.path))
    return found


def scan(data_dir: Path, progress: Progress | None = None) -> Report:
    from kavka.log.partition_dir import segment_bases
    from kavka.log.segment import LOG_SUFFIX, scan_log_file, segment_path
    report = Report()
    for directory in partition_dirs(data_dir):
        report.partitions += 1
        bases = segment_bases(directory)
        for i, base in enumerate(bases):
            report.segments += 1
            result = scan_log_file(segment_path(directory, base, LOG_SUFFIX), base)
            report.batches += result.batches
            report.bytes += result.valid_bytes
            if progress:
                progress.update(f"{report.partitions} partitions, {report.batches} batches, "
                                f"{report.bytes / 1e6:.1f} MB checked ({directory.name})")
            if result.problem:
                later = len(bases) - i - 1
                report.problems.append(
                    f"{directory.name}/{result.path.name} at byte {result.valid_bytes}: {result.problem} "
                    f"({result.file_size - result.valid_bytes} bytes to the end of the file"
                    f"{f', {later} later segments' if later else ''})")
                break  # the broker's recovery drops everything after the first bad batch
    return report


def _lock(data_dir: Path) -> int:
    from kavka.log.log_manager import LOCK_FILE
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise CliError(f"cannot open {data_dir / LOCK_FILE}: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise CliError(f"{data_dir} is in use by a running broker (its {LOCK_FILE} is locked); stop it first") from None
    return fd


def repair(data_dirs: list[Path]) -> None:
    """The broker's own load with every segment re-validated, then a clean close."""
    from kavka.clock import Clock
    from kavka.config import BrokerConfig
    from kavka.log.errors import LogError
    from kavka.log.log_manager import LogManager
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="kavka check: %(message)s")
    config = BrokerConfig.from_strings({"log.dirs": ",".join(str(d) for d in data_dirs)})
    manager = LogManager(data_dirs[0], config, Clock())
    try:
        manager.load(verify_all=True)
    except LogError as exc:
        raise CliError(str(exc)) from None
    manager.close()


def scan_all(data_dirs: list[Path], progress: Progress | None = None) -> Report:
    """Every log dir's scan, added up."""
    total = Report()
    for data_dir in data_dirs:
        report = scan(data_dir, progress)
        total.partitions += report.partitions
        total.segments += report.segments
        total.batches += report.batches
        total.bytes += report.bytes
        total.problems.extend(report.problems)
    return total


def run(args) -> int:
    data_dirs = [Path(d) for d in args.data_dirs]
    for data_dir in data_dirs:
        if not data_dir.is_dir():
            raise CliError(f"{data_dir} is not a directory")
    progress = Progress()
    fds: list[int] = []
    try:
        for data_dir in data_dirs:
            fds.append(_lock(data_dir))
        report = scan_all(data_dirs, progress)
    finally:
        progress.clear()
        for fd in fds:
            os.close(fd)  # released before a repair, which takes the locks itself
    for problem in report.problems:
        print(f"CORRUPT {problem}")
    print(f"checked {report.partitions} partitions, {report.segments} segments, {report.batches} batches, "
          f"{report.bytes} bytes: {len(report.problems) or 'no'} corrupt partition"
          f"{'' if len(report.problems) == 1 else 's'}")
    if not report.problems:
        return 0
    if args.repair:
        repair(data_dirs)
        left = scan_all(data_dirs).problems
        if left:
            raise CliError(f"repair left {len(left)} corrupt partitions: {left[0]}")
        print("repaired: each corrupt partition was cut at its first bad batch")
    else:
        print("run again with --repair to cut each corrupt partition at its first bad batch")
    return 1
