"""Builds of the test clients written in other languages, cached between runs.

Each directory beside this file (``java/``, ``go/``, ``js/`` ...) holds one client
project and a ``build.sh OUT`` that builds it into the empty directory OUT with its
own package manager (Maven, Go modules, npm).  A build is kept under
``$KAVKA_TEST_CLIENTS_CACHE`` (default ``~/.cache/kavka/test-clients``) by the
hash of its directory's files, so a rerun reuses it and a change rebuilds it (builds of
other sources, e.g. another worktree's, stay until unused for a week);
the package managers' own caches (~/.m2, the Go module cache, npm's) make a
rebuild cheap too.  ``scripts/test`` builds every client before pytest runs, so
download time is not counted against a test's timeout; a test asks
:func:`built` for its client's directory (building it if need be).

    python3 tests/clients/builds.py            # build all (what scripts/test does)
    python3 tests/clients/builds.py java go    # some
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("KAVKA_TEST_CLIENTS_CACHE", Path.home() / ".cache" / "kavka" / "test-clients"))
BUILD_TIMEOUT = 1200   # seconds; a first Maven build downloads the Kafka jars
UNUSED_DAYS = 7       # a build no run has used for this long is removed when another is built
IGNORED = {"node_modules", "target", "__pycache__", ".gradle"}

# The command each client's build needs: without it the client's tests are skipped (with the reason).
TOOLCHAINS = {"java": "mvn", "go": "go", "js": "npm"}


class BuildFailed(RuntimeError):
    pass


def clients() -> list[str]:
    return sorted(p.parent.name for p in HERE.glob("*/build.sh"))


def source_hash(name: str) -> str:
    """Of every file of the client's directory (paths and contents) except build outputs."""
    digest = hashlib.sha256()
    root = HERE / name
    for path in sorted(root.rglob("*")):
        if not path.is_file() or IGNORED.intersection(path.relative_to(root).parts):
            continue
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def missing_toolchain(name: str) -> str | None:
    tool = TOOLCHAINS.get(name)
    if tool is not None and shutil.which(tool) is None:
        return f"{tool} is not installed"
    return None


def built(name: str, log=None) -> Path:
    """The directory of the client's build, built now unless the cache holds it."""
    target = CACHE / f"{name}-{source_hash(name)}"
    if (target / ".complete").exists():
        (target / ".complete").touch()         # in use: kept by _prune
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)        # one build at a time per client
        if (target / ".complete").exists():
            return target
        work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=CACHE))
        started = time.monotonic()
        if log:
            log(f"building the {name} test client (tests/clients/{name}) ...")
        try:
            result = subprocess.run(["bash", str(HERE / name / "build.sh"), str(work)], cwd=HERE / name,
                                    capture_output=True, text=True, timeout=BUILD_TIMEOUT)
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(work, ignore_errors=True)
            raise BuildFailed(f"building the {name} client took more than {BUILD_TIMEOUT} s") from exc
        if result.returncode != 0:
            shutil.rmtree(work, ignore_errors=True)
            raise BuildFailed(f"building the {name} client failed (exit {result.returncode}):\n"
                              f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        (work / ".complete").write_text(f"{time.monotonic() - started:.1f} s\n")
        shutil.rmtree(target, ignore_errors=True)
        work.rename(target)
        _prune(name, keep=target)
        if log:
            log(f"built the {name} test client in {time.monotonic() - started:.0f} s")
        return target


def _prune(name: str, keep: Path) -> None:
    """Drop the client's other builds unused for ``UNUSED_DAYS``: checkouts of other sources
    (another branch's worktree) keep theirs while they use them."""
    cutoff = time.time() - UNUSED_DAYS * 86400
    for old in CACHE.glob(f"{name}-*"):
        marker = old / ".complete"
        if old != keep and old.is_dir() and marker.exists() and marker.stat().st_mtime < cutoff:
            shutil.rmtree(old, ignore_errors=True)


def main(argv: list[str]) -> int:
    failed = 0
    for name in argv or clients():
        reason = missing_toolchain(name)
        if reason is not None:
            print(f"skipping the {name} test client: {reason} (its tests will be skipped)", file=sys.stderr)
            continue
        try:
            built(name, log=lambda line: print(line, file=sys.stderr, flush=True))
        except BuildFailed as exc:
            print(exc, file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
