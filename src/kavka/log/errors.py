"""Domain errors of the log package.

The ``api/`` layer maps these to Kafka error codes; storage code raises them
and never knows about error codes itself.
"""


class LogError(Exception):
    """Base class of every error the log package raises on purpose."""


class OffsetOutOfRange(LogError):
    """A read asked for an offset outside [log_start_offset, log_end_offset]."""


class LogCorrupted(LogError):
    """Bytes on disk do not form a valid log and could not be repaired."""


# -- Domain errors added for the log manager, validator and producer state. --
# Each maps to one Kafka error code in api/errors.py (looked up by class name),
# so renaming a class here is a wire-visible change.


class UnknownTopicOrPartition(LogError):
    """No such topic, or the topic has fewer partitions than the index asked for."""


class TopicAlreadyExists(LogError):
    """CreateTopics for a name that is already taken."""


class InvalidPartitions(LogError):
    """A partition count below 1, or CreatePartitions that would not increase it."""


class PolicyViolation(LogError):
    """A creation that would pass ``max.partitions.per.request`` or
    ``max.partitions.per.broker`` (Kafka's KRaft controller answers an oversized
    operation with POLICY_VIOLATION too)."""


class InvalidTopic(LogError):
    """A topic name Kafka would refuse: empty, longer than 249 characters, "." or
    "..", a character outside [a-zA-Z0-9._-], or a collision with an existing
    topic once '.' and '_' are treated alike (their metric names would clash)."""


class RecordTooLarge(LogError):
    """A batch larger than the topic's ``max.message.bytes``."""


class CorruptRecord(LogError):
    """A batch whose CRC-32C does not match, or whose bytes do not frame as batches."""


class InvalidRecord(LogError):
    """A well-framed batch that breaks a produce rule (offsets, counts, control
    batches, sequences, null keys on compacted topics, batch count per partition).

    When the rule is one each record keeps or breaks (a key on a compacted topic),
    ``record_indexes`` names the records that break it (their positions in the
    batch) and ``record_reason`` says why, so the answer can list them (KIP-467)."""

    def __init__(self, message: str, record_indexes: tuple[int, ...] = (), record_reason: str = "") -> None:
        super().__init__(message)
        self.record_indexes = record_indexes
        self.record_reason = record_reason


class InvalidTimestamp(LogError):
    """A CreateTime timestamp outside message.timestamp.{before,after}.max.ms of now."""


class OutOfOrderSequence(LogError):
    """An idempotent producer's batch does not continue its last sequence, or a
    new epoch does not start at sequence 0."""


class InvalidProducerEpoch(LogError):
    """A batch from an older epoch than the newest this partition has seen (a
    zombie producer instance)."""


class InvalidTxnState(LogError):
    """A non-transactional batch from a producer whose transaction in this partition
    is still open (Kafka's InvalidTxnStateException)."""


class TransactionCoordinatorFenced(LogError):
    """A transaction marker from an older coordinator epoch than the producer's last
    marker in this partition (a zombie coordinator)."""


class UnknownProducerId(LogError):
    """Kept for the api error map; since KIP-360 the broker accepts a producer it
    has no state for at any sequence, so producer_state never raises it."""


class UnsupportedCompression(LogError):
    """zstd in a Produce request older than v7, or a codec id outside 0-4."""


class InvalidConfig(LogError):
    """A topic config override Kafka would refuse; wraps config.ConfigError."""

    def __init__(self, message: str, cause: Exception | None = None) -> None:
        super().__init__(message)
        self.cause = cause


class DataDirLocked(LogError):
    """Another broker process holds the data directory's lock file."""


class DataDirUnusable(LogError):
    """The data directory cannot be created, written or holds unreadable metadata."""


# -- Storage (disk) failures: KAFKA_STORAGE_ERROR (kavka.log.log_dir decides which). --


class StorageError(LogError):
    """An OSError while writing or reading the data directory.  ``errno`` is the
    OS error number; ``transient`` says whether the log directory stays online."""

    transient = False

    def __init__(self, message: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class StorageFull(StorageError):
    """No space (ENOSPC, EDQUOT) or no descriptor (EMFILE, ENFILE) left: the write
    was undone and refused; the directory stays online and the next write tries again."""

    transient = True


class LogDirOffline(StorageError):
    """The filesystem failed (EIO, EROFS, ...): the data directory was taken offline,
    every partition on it refuses reads and writes until the broker restarts."""
