"""A client session over the Kafka protocol: what the CLI and :mod:`kavka.export` share.

A :class:`Session` opens a bootstrap connection with :class:`kavka.client.Client`,
asks ApiVersions once and then builds every request at the highest version both
sides know (capped at the versions this code was written against), so a broker
that is too old or not a Kafka broker gets one clear line instead of a dropped
connection.  Partition requests go to the partition's leader; with a single
broker that is the bootstrap connection itself.  It talks to kavka and to
Apache Kafka alike.

Failures raise :class:`ToolError`, one line naming Kafka error codes by their
Kafka names: ``TOPIC_ALREADY_EXISTS: Topic 'x' already exists.``.  The command
line prints it and exits with status 1 (``kavka.cli.main.CliError`` is this
class); :mod:`kavka.export` raises it as ``ExportError``.

This module sits below both: it imports neither ``kavka.cli`` nor
``kavka.export``, and loads kio only when a session is opened (``kavka --help``
stays fast).
"""

from __future__ import annotations

import base64
import collections
import datetime
import re
import socket
import time
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from kavka.protocol.builders import field_names, make

if TYPE_CHECKING:
    from kavka.client import Client, Decode


class ToolError(Exception):
    """A problem the user can fix, said in one line (the CLI exits with status 1)."""


METADATA, CREATE_TOPICS, DELETE_TOPICS, CREATE_PARTITIONS = 3, 19, 20, 37
DESCRIBE_CONFIGS, INCREMENTAL_ALTER_CONFIGS, LIST_OFFSETS, PRODUCE, FETCH, API_VERSIONS = 32, 44, 2, 0, 1, 18
# The versions each request is built for: (oldest, newest).  Fetch stops at 12
# because v13 names topics by id.
VERSION_RANGES = {METADATA: (4, 12), CREATE_TOPICS: (2, 7), DELETE_TOPICS: (1, 6), CREATE_PARTITIONS: (0, 3),
                  DESCRIBE_CONFIGS: (1, 4), INCREMENTAL_ALTER_CONFIGS: (0, 1), LIST_OFFSETS: (1, 7),
                  PRODUCE: (3, 9), FETCH: (4, 12)}
# Consumer groups.  OffsetFetch and OffsetCommit stop at 9 because v10 names topics by id.
FIND_COORDINATOR, LIST_GROUPS, DESCRIBE_GROUPS, DELETE_GROUPS = 10, 16, 15, 42
OFFSET_FETCH, OFFSET_COMMIT, CONSUMER_GROUP_DESCRIBE = 9, 8, 69
VERSION_RANGES.update({FIND_COORDINATOR: (0, 6), LIST_GROUPS: (0, 5), DESCRIBE_GROUPS: (0, 6),
                       DELETE_GROUPS: (0, 2), OFFSET_FETCH: (2, 9), OFFSET_COMMIT: (2, 9),
                       CONSUMER_GROUP_DESCRIBE: (0, 1)})
DESCRIBE_LOG_DIRS = 35
VERSION_RANGES[DESCRIBE_LOG_DIRS] = (1, 4)
ELECT_LEADERS = 43
VERSION_RANGES[ELECT_LEADERS] = (0, 2)
# Feature flags (KIP-584): ApiVersions from v3 carries them, v4 also those with minimum 0.
UPDATE_FEATURES = 57
VERSION_RANGES.update({API_VERSIONS: (3, 4), UPDATE_FEATURES: (0, 2)})
# Partition reassignment (KIP-455).
ALTER_PARTITION_REASSIGNMENTS, LIST_PARTITION_REASSIGNMENTS = 45, 46
VERSION_RANGES.update({ALTER_PARTITION_REASSIGNMENTS: (0, 1), LIST_PARTITION_REASSIGNMENTS: (0, 0)})
# Transactions (KIP-98, KIP-664).
WRITE_TXN_MARKERS, DESCRIBE_PRODUCERS, DESCRIBE_TRANSACTIONS, LIST_TRANSACTIONS = 27, 61, 65, 66
VERSION_RANGES.update({WRITE_TXN_MARKERS: (1, 2), DESCRIBE_PRODUCERS: (0, 0), DESCRIBE_TRANSACTIONS: (0, 0),
                       LIST_TRANSACTIONS: (0, 1)})
API_NAMES = {API_VERSIONS: "ApiVersions", UPDATE_FEATURES: "UpdateFeatures", METADATA: "Metadata",
             CREATE_TOPICS: "CreateTopics", DELETE_TOPICS: "DeleteTopics",
             CREATE_PARTITIONS: "CreatePartitions", DESCRIBE_CONFIGS: "DescribeConfigs",
             INCREMENTAL_ALTER_CONFIGS: "IncrementalAlterConfigs", LIST_OFFSETS: "ListOffsets",
             PRODUCE: "Produce", FETCH: "Fetch", FIND_COORDINATOR: "FindCoordinator", LIST_GROUPS: "ListGroups",
             DESCRIBE_GROUPS: "DescribeGroups", DELETE_GROUPS: "DeleteGroups", OFFSET_FETCH: "OffsetFetch",
             OFFSET_COMMIT: "OffsetCommit", CONSUMER_GROUP_DESCRIBE: "ConsumerGroupDescribe",
             DESCRIBE_LOG_DIRS: "DescribeLogDirs", ELECT_LEADERS: "ElectLeaders",
             ALTER_PARTITION_REASSIGNMENTS: "AlterPartitionReassignments",
             LIST_PARTITION_REASSIGNMENTS: "ListPartitionReassignments", WRITE_TXN_MARKERS: "WriteTxnMarkers",
             DESCRIBE_PRODUCERS: "DescribeProducers", DESCRIBE_TRANSACTIONS: "DescribeTransactions",
             LIST_TRANSACTIONS: "ListTransactions"}

EARLIEST, LATEST = -2, -1  # ListOffsets timestamps
READ_UNCOMMITTED, READ_COMMITTED = 0, 1  # ListOffsets and Fetch isolation levels
GROUP_KEY, TRANSACTION_KEY = 0, 1  # FindCoordinator key types
LEADER_NOT_AVAILABLE, UNKNOWN_TOPIC = 5, 3
_COORDINATOR_WAIT = (14, 15)  # COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE
_TOPIC_ERRORS = {17: "'{}' is not a valid topic name", 29: "not authorized to access topic '{}'"}


def error_name(code: int) -> str:
    from kio.schema.errors import ErrorCode
    try:
        return ErrorCode(int(code)).name.upper()
    except ValueError:
        return f"ERROR_{int(code)}"


def check(code: int, message: str | None, fallback: str) -> None:
    """Raise ``NAME: message`` for a non-zero Kafka error code."""
    if code:
        raise ToolError(f"{error_name(code)}: {message or fallback}")


_AGO = re.compile(r"-?(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)(?:\s+ago)?")
_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_time(text: str, now_ms: int, option: str = "--from") -> int:
    """Epoch milliseconds of a TIME argument (consume --from, export --from/--to): ISO 8601
    (local time unless it has a zone), epoch milliseconds, an age such as 15m, -2h or
    1.5d ago, or ``now``."""
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    if text.lower() == "now":
        return now_ms
    ago = _AGO.fullmatch(text)
    if ago:
        return now_ms - int(float(ago.group(1)) * _UNITS[ago.group(2)])
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ToolError(f"{option} wants a time such as 2024-05-01T12:00, 1714564800000 or 15m, "
                        f"not {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time
    return int(moment.timestamp() * 1000)


def json_bytes(data: bytes | None):
    """A key, value or header value for JSON output: text when it is UTF-8, else
    ``{"base64": "..."}``; None stays null."""
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


# -- transactions in fetched data ---------------------------------------------------------

# Kafka's isolation.level names -> the isolation level of ListOffsets and Fetch.
ISOLATION_LEVELS = {"read_uncommitted": READ_UNCOMMITTED, "read_committed": READ_COMMITTED}


def isolation_level(name: str) -> int:
    try:
        return ISOLATION_LEVELS[name]
    except KeyError:
        raise ToolError(f"the isolation level is read_uncommitted or read_committed, not {name!r}") from None


class AbortedTransactions:
    """Which batches of one partition's read_committed Fetch answer are aborted data, by
    Kafka's consumer rule (``kavka export`` and ``kavka consume`` use it): ``aborted`` is the
    answer's (producer id, first offset) list, and from its first offset on a transactional
    batch of that producer is aborted until the producer's abort marker.  One per answer; the
    batches must be shown in offset order, every one of them, control batches included."""

    def __init__(self, aborted: Iterable[tuple[int, int]]) -> None:
        self.pending = collections.deque(sorted(aborted, key=lambda a: a[1]))
        self.aborting: set[int] = set()  # producers inside an aborted transaction

    def drops(self, data: bytes, pos: int, header) -> bool:
        """Whether the batch at ``pos`` holds aborted records; a control batch is never data
        (it ends its producer's aborted transaction when it is an abort marker)."""
        while self.pending and self.pending[0][1] <= header.last_offset:
            self.aborting.add(self.pending.popleft()[0])
        if header.is_control:
            if header.producer_id in self.aborting and _is_abort_marker(data, pos, header):
                self.aborting.discard(header.producer_id)
            return True
        return header.is_transactional and header.producer_id in self.aborting


def _is_abort_marker(data: bytes, pos: int, header) -> bool:
    from kavka.protocol.control_records import read_marker
    from kavka.protocol.records import InvalidBatch
    try:
        marker = read_marker(data[pos:pos + header.size])
    except InvalidBatch as exc:
        raise ToolError(f"the marker at offset {header.base_offset} does not decode: {exc}") from None
    return marker is not None and not marker.commit


# -- requests at negotiated versions -------------------------------------------------------

class Builder:
    """``Builder(key, version).SomeClass(**fields)``: fields the version lacks are dropped,
    so callers pass the union of the fields of every version they accept."""

    def __init__(self, api_key: int, version: int) -> None:
        from kio.index import load_entity_module
        from kio.schema.index import api_key_map
        from kio.static.constants import EntityType
        self.version = version
        self._module = load_entity_module(api_key_map[api_key], version, EntityType.request)

    def __getattr__(self, name: str):
        cls = getattr(self._module, name)
        return lambda **values: make(cls, **values)

    def has(self, class_name: str, field_name: str) -> bool:
        return field_name in field_names(getattr(self._module, class_name))


def _check_address(address: str) -> None:
    _host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ToolError(f"the broker address must be HOST:PORT, got {address!r}")


class Session:
    """A bootstrap connection, the broker's API versions, and leader connections."""

    def __init__(self, bootstrap: str, timeout: float = 30.0) -> None:
        """``bootstrap``: HOST:PORT, or several separated by commas, tried in order until
        one answers (as Kafka's bootstrap.servers): a dead first broker is skipped."""
        addresses = [a.strip() for a in bootstrap.split(",") if a.strip()]
        if not addresses:
            raise ToolError("no broker address given")
        for address in addresses:
            _check_address(address)
        self.timeout = timeout
        self.client = self._connect_any(addresses)
        self.bootstrap = "{}:{}".format(*self.client.address)
        self._leaders: dict[int, "Client"] = {}
        self._brokers: dict[int, str] = {}
        self.versions = self._api_versions()

    def _connect_any(self, addresses: list[str]) -> Client:
        failures = []
        for address in addresses:
            try:
                return self._connect(address)
            except ToolError as exc:
                failures.append(str(exc))
        if len(failures) == 1:
            raise ToolError(failures[0])
        raise ToolError(f"none of the {len(addresses)} brokers answered: " + "; ".join(failures))

    def _connect(self, address: str) -> Client:
        _check_address(address)
        from kavka.client import Client, ClientError  # kio loads in ~0.2 s: not for --help
        try:
            return Client(address, timeout=self.timeout)
        except ClientError as exc:
            raise ToolError(str(exc)) from None
        except OSError as exc:  # e.g. an unknown host name
            raise ToolError(f"cannot connect to {address}: {exc.strerror or exc}") from None

    def _api_versions(self) -> dict[int, tuple[int, int]]:
        from kio.schema.api_versions.v3.request import ApiVersionsRequest
        request = ApiVersionsRequest(client_software_name="kavka-cli", client_software_version="1")
        try:
            response = self.request(request)
        except (ValueError, IndexError, KeyError, TypeError) as exc:
            raise ToolError(f"{self.bootstrap} does not answer like a Kafka broker ({exc})") from None
        check(response.error_code, None, "the broker refused ApiVersions v3")
        return {int(k.api_key): (int(k.min_version), int(k.max_version)) for k in response.api_keys}

    def builder(self, api_key: int) -> Builder:
        return Builder(api_key, self.version(api_key))

    def version(self, api_key: int) -> int:
        low, high = VERSION_RANGES[api_key]
        name = API_NAMES[api_key]
        if api_key not in self.versions:
            raise ToolError(f"the broker at {self.bootstrap} does not support {name}")
        broker_low, broker_high = self.versions[api_key]
        version = min(high, broker_high)
        if version < max(low, broker_low):
            raise ToolError(f"the broker at {self.bootstrap} supports {name} v{broker_low}-{broker_high}, "
                            f"this tool speaks v{low}-{high}")
        return version

    def request(self, obj: Any, client: "Client | None" = None, decode: "Decode | None" = None) -> Any:
        """The response to ``obj``, decoded by kio or by ``decode`` (see :meth:`Client.request`)."""
        from kavka.client import ClientError
        client = client or self.client
        where = "{}:{}".format(*client.address)
        try:
            return client.request(obj, decode)
        except socket.timeout:
            raise ToolError(f"no answer from {where} within {self.timeout:.0f} s") from None
        except ClientError as exc:
            raise ToolError(f"{where}: {exc}") from None
        except OSError as exc:
            raise ToolError(f"connection to {where} failed: {exc.strerror or exc}") from None

    # -- metadata and leaders ------------------------------------------------------------

    def metadata(self, topics: Sequence[str] | None, auto_create: bool = False) -> Any:
        q = self.builder(METADATA)
        wanted = None if topics is None else tuple(q.MetadataRequestTopic(name=t, topic_id=None) for t in topics)
        response = self.request(q.MetadataRequest(
            topics=wanted, allow_auto_topic_creation=auto_create, include_topic_authorized_operations=False,
            include_cluster_authorized_operations=False))
        self._brokers = {b.node_id: f"{b.host}:{b.port}" for b in response.brokers}
        return response

    def topic(self, name: str, auto_create: bool = False) -> Any:
        """One topic's metadata once every partition has a leader; unknown topics fail."""
        topic = self.find_topic(name, auto_create)
        if topic is None:
            raise ToolError(f"UNKNOWN_TOPIC_OR_PARTITION: topic '{name}' does not exist")
        return topic

    def find_topic(self, name: str, auto_create: bool = False, attempts: int = 50) -> Any:
        """Like :meth:`topic`, but None for a topic that does not exist."""
        for _ in range(attempts):
            (topic,) = self.metadata([name], auto_create).topics
            leaderless = any(p.leader_id < 0 for p in topic.partitions)
            if topic.error_code != LEADER_NOT_AVAILABLE and not (topic.error_code == 0 and leaderless):
                break
            time.sleep(0.1)
        else:
            raise ToolError(f"LEADER_NOT_AVAILABLE: topic '{name}' has partitions without a leader")
        if topic.error_code == UNKNOWN_TOPIC:
            return None
        check(topic.error_code, None, _TOPIC_ERRORS.get(topic.error_code, "topic '{}'").format(name))
        return topic

    def leader(self, node_id: int) -> "Client":
        """The connection to a partition leader (the bootstrap one on a single broker)."""
        address = self._brokers.get(node_id)
        if len(self._brokers) <= 1 or address is None or address == self.bootstrap:
            return self.client
        if node_id not in self._leaders:
            self._leaders[node_id] = self._connect(address)
        return self._leaders[node_id]

    def list_offsets(self, topic: Any, partitions: Iterable[int], timestamp: int,
                     isolation: int = READ_UNCOMMITTED) -> dict[int, int]:
        """partition -> offset for a timestamp (EARLIEST, LATEST or ms); -1 when no record is that new.
        With READ_COMMITTED, LATEST is the last stable offset and no answer lies above it."""
        leaders: dict[int, list[int]] = {}
        by_index = {p.partition_index: p for p in topic.partitions}
        for index in partitions:
            leaders.setdefault(by_index[index].leader_id, []).append(index)
        offsets = {}
        for leader, indexes in leaders.items():
            q = self.builder(LIST_OFFSETS)
            response = self.request(q.ListOffsetsRequest(replica_id=-1, isolation_level=isolation, topics=(
                q.ListOffsetsTopic(name=topic.name, partitions=tuple(
                    q.ListOffsetsPartition(partition_index=i, current_leader_epoch=-1, timestamp=timestamp)
                    for i in indexes)),)), self.leader(leader))
            for t in response.topics:
                for p in t.partitions:
                    check(p.error_code, None, f"partition {p.partition_index} of '{topic.name}'")
                    offsets[p.partition_index] = p.offset
        return offsets

    # -- group coordinators ---------------------------------------------------------------

    def supports(self, api_key: int) -> bool:
        """Whether the broker and this tool share a version of an API."""
        if api_key not in self.versions:
            return False
        low, high = VERSION_RANGES[api_key]
        broker_low, broker_high = self.versions[api_key]
        return max(low, broker_low) <= min(high, broker_high)

    def broker_clients(self) -> list["Client"]:
        """A connection to every broker of the cluster (ListGroups is answered per coordinator)."""
        return [client for _node_id, client in self.broker_connections()] or [self.client]

    def broker_connections(self) -> list[tuple[int, "Client"]]:
        """(node id, connection) of every broker of the cluster, by node id."""
        self.metadata([])
        return [(node_id, self.leader(node_id)) for node_id in sorted(self._brokers)]

    def coordinator(self, group: str, attempts: int = 50, key_type: int = GROUP_KEY) -> tuple[int, str, "Client"]:
        """(node id, HOST:PORT, connection) of a group's coordinator (with ``key_type``
        TRANSACTION_KEY, a transactional id's), waiting while it loads."""
        if not self._brokers:
            self.metadata([])
        q = self.builder(FIND_COORDINATOR)
        batched = q.has("FindCoordinatorRequest", "coordinator_keys")
        for _ in range(attempts):
            response = self.request(q.FindCoordinatorRequest(key=group, key_type=key_type, coordinator_keys=(group,)))
            found = response.coordinators[0] if batched else response
            if found.error_code not in _COORDINATOR_WAIT:
                break
            time.sleep(0.1)
        what = "transactional id" if key_type == TRANSACTION_KEY else "group"
        check(found.error_code, getattr(found, "error_message", None), f"no coordinator for {what} '{group}'")
        address = f"{found.host}:{found.port}"
        self._brokers.setdefault(found.node_id, address)
        return found.node_id, address, self.leader(found.node_id)

    def close(self) -> None:
        for client in self._leaders.values():
            client.close()
        self.client.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
