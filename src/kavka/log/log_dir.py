"""Health of the data directory: online, full (refusing writes for now), or offline.

Theory of operation
-------------------
Every storage write path (segment appends and rolls, index entries, fsyncs,
checkpoints, producer snapshots, ``topics.json``) lets its ``OSError`` reach
the owner of the write, which hands it to :meth:`LogDirHealth.failed` and
raises the domain error it returns (kavka.log.errors; the api layer answers
KAFKA_STORAGE_ERROR).  The write itself was undone first (kavka.log.segment:
a batch is all or nothing), so the log stays as it was before the request.

Two kinds of failure, by ``errno``:

* **full** — ENOSPC, EDQUOT (no space), EMFILE, ENFILE (no descriptor).  Not
  the disk's fault and over when space comes back: writes are refused with
  :class:`StorageFull`, reads go on, and every write simply tries again, so
  the first one that fits ends the episode (no probe thread is needed: a
  refused append costs one failed ``write`` and an ``ftruncate``).  Logged
  once when the episode starts (with the count of refusals when it ends).
* **offline** — anything else (EIO, EROFS, ENODEV, EUCLEAN, ...): the
  filesystem can no longer be trusted to hold what it acknowledged, and an
  undo may itself have failed.  As Kafka's LogDirFailureChannel does, the
  directory goes offline for good: every partition refuses produce, fetch and
  list-offsets with :class:`LogDirOffline`, Metadata shows them leaderless,
  and it stays so until the broker restarts (and recovers the logs from what
  the disk really holds).  Kafka halts a broker whose last log dir failed; a
  lone kavka broker keeps answering Metadata and ApiVersions instead, so
  clients and operators see why.  Logged once; ``on_offline`` callbacks run
  once (a cluster broker gives up leadership there).

Single-threaded (the broker's event loop), except :meth:`failed`, which the
group-commit flusher may call from its worker thread: it only sets fields.
"""

from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import Callable

from kavka.log.errors import LogDirOffline, StorageError, StorageFull

log = logging.getLogger("kavka.log")

TRANSIENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EMFILE, errno.ENFILE})


class LogDirHealth:
    """One data directory's state; see the module doc."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.offline_reason: str | None = None
        self.full_reason: str | None = None
        self.refused = 0  # writes refused in the current full episode
        self.on_offline: list[Callable[[], None]] = []

    @property
    def offline(self) -> bool:
        return self.offline_reason is not None

    @property
    def degraded(self) -> bool:
        """Full or offline: the hot path checks only this."""
        return self.offline_reason is not None or self.full_reason is not None

    def check(self, what: str) -> None:
        """Raise LogDirOffline when the directory is offline (before any I/O for ``what``)."""
        if self.offline_reason is not None:
            raise LogDirOffline(f"{what}: log directory {self.path} is offline ({self.offline_reason})")

    def failed(self, exc: OSError, what: str) -> StorageError:
        """Classify ``exc`` (raised while working on ``what``), log it once, and return
        the domain error the caller raises."""
        reason = f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")
        if exc.errno in TRANSIENT_ERRNOS and self.offline_reason is None:
            self.refused += 1
            if self.full_reason is None:
                self.full_reason = reason
                log.error("cannot write to %s (%s, while writing %s): refusing writes with KAFKA_STORAGE_ERROR "
                          "until it succeeds again; reads go on", self.path, reason, what)
            return StorageFull(f"{what}: {reason}", exc.errno)
        self.go_offline(reason, what)
        return LogDirOffline(f"{what}: log directory {self.path} is offline ({self.offline_reason})", exc.errno)

    def go_offline(self, reason: str, what: str) -> None:
        if self.offline_reason is not None:
            return
        self.offline_reason = reason
        self.full_reason = None
        log.error("log directory %s failed (%s, while working on %s): taking it offline; its partitions answer "
                  "KAFKA_STORAGE_ERROR until the broker is restarted", self.path, reason, what)
        for callback in self.on_offline:
            try:
                callback()
            except Exception:  # one listener's bug must not stop the others
                log.exception("log-dir offline callback %r failed", callback)

    def succeeded(self) -> None:
        """A write went through: a full episode is over."""
        if self.full_reason is not None and self.offline_reason is None:
            log.warning("writes to %s succeed again (%d refused while it was full)", self.path, self.refused)
            self.full_reason = None
            self.refused = 0

    def __repr__(self) -> str:
        state = "offline" if self.offline else "full" if self.full_reason else "online"
        return f"LogDirHealth({self.path}, {state})"
