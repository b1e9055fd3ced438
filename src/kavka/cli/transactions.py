"""``kavka transactions list|describe|describe-producers|find-hanging|abort``: transactions over
the Kafka protocol, like Kafka's ``kafka-transactions.sh``, with its options and its columns, so
scripts written for one read the other; it works against any Kafka broker.

* ``list``: ListTransactions on every broker (each answers for the ids it coordinates).
* ``describe --transactional-id ID``: DescribeTransactions at the id's coordinator.
* ``describe-producers --topic T --partition P``: DescribeProducers at the partition's leader
  (or ``--broker-id``, any replica).
* ``find-hanging``: transactions a partition holds open for longer than
  ``--max-transaction-timeout`` minutes that their coordinator does not have that partition in
  (or does not know at all): DescribeProducers, then ListTransactions by producer id, then
  DescribeTransactions, as Kafka's tool decides.
* ``abort --topic T --partition P``: ends such a transaction in that partition with an abort
  marker (WriteTxnMarkers to the leader), named by ``--start-offset`` (its producer found with
  DescribeProducers) or by ``--producer-id``, ``--producer-epoch`` and ``--coordinator-epoch``.

kio refuses a negative timestamp, and DescribeTransactions says -1 for an id that has no
transaction yet, so that response is read here (:func:`decode_described`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from kavka.cli.common import CliError, command_actions, print_table, session
from kavka.client_session import (
    DESCRIBE_PRODUCERS,
    DESCRIBE_TRANSACTIONS,
    LIST_TRANSACTIONS,
    TRANSACTION_KEY,
    WRITE_TXN_MARKERS,
    check,
)

TRANSACTIONAL_ID_NOT_FOUND = 105
COORDINATOR_LOAD_IN_PROGRESS = 14
LIST_HEADERS = ("TransactionalId", "Coordinator", "ProducerId", "TransactionState")
DESCRIBE_HEADERS = ("CoordinatorId", "TransactionalId", "ProducerId", "ProducerEpoch", "TransactionState",
                    "TransactionTimeoutMs", "CurrentTransactionStartTimeMs", "TransactionDurationMs",
                    "TopicPartitions")
PRODUCER_HEADERS = ("ProducerId", "ProducerEpoch", "LatestCoordinatorEpoch", "LastSequence", "LastTimestamp",
                    "CurrentTransactionStartOffset")
HANGING_HEADERS = ("Topic", "Partition", "ProducerId", "ProducerEpoch", "CoordinatorEpoch", "StartOffset",
                   "LastTimestamp", "Duration(min)")


def add_parser(commands) -> None:
    parent, actions = command_actions(
        commands, "transactions", help="list, describe or abort transactions",
        description="Inspect transactions and end hanging ones, like kafka-transactions.sh.")
    listing = actions.add_parser("list", parents=[parent], help="the transactional ids of every coordinator")
    listing.add_argument("--duration-filter", type=int, default=-1, metavar="MS",
                         help="only transactions open longer than MS milliseconds (default -1: all)")
    describe = actions.add_parser("describe", parents=[parent], help="the state of a transactional id")
    describe.add_argument("--transactional-id", required=True, metavar="ID")
    producers = actions.add_parser("describe-producers", parents=[parent],
                                   help="the active producers of a partition")
    _partition_options(producers, required=True)
    producers.add_argument("--broker-id", type=int, metavar="N",
                           help="ask this replica instead of the partition's leader")
    hanging = actions.add_parser("find-hanging", parents=[parent],
                                 help="transactions a partition holds open that no coordinator will end",
                                 description="Needs --topic or --broker-id to limit the search.")
    _partition_options(hanging, required=False)
    hanging.add_argument("--broker-id", type=int, metavar="N", help="search the partitions this broker hosts")
    hanging.add_argument("--max-transaction-timeout", type=int, default=15, metavar="MINUTES",
                         help="only transactions idle for longer than this (default 15)")
    abort = actions.add_parser("abort", parents=[parent], help="end a hanging transaction in one partition",
                               description="Name the transaction by --start-offset, or by --producer-id, "
                                           "--producer-epoch and --coordinator-epoch.")
    _partition_options(abort, required=True)
    abort.add_argument("--start-offset", type=int, metavar="OFFSET", help="the transaction's first offset")
    abort.add_argument("--producer-id", type=int, metavar="ID")
    abort.add_argument("--producer-epoch", type=int, metavar="EPOCH")
    abort.add_argument("--coordinator-epoch", type=int, metavar="EPOCH")


def _partition_options(parser, required: bool) -> None:
    parser.add_argument("--topic", required=required, metavar="TOPIC")
    parser.add_argument("--partition", type=int, required=required, metavar="N")


def run(args) -> int:
    with session(args) as s:
        _ACTIONS[args.action](s, args)
    return 0


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# -- list ----------------------------------------------------------------------------------

def listed(s, producer_ids: tuple[int, ...] = (), duration_ms: int = -1) -> list[tuple]:
    """(transactional id, coordinator node id, producer id, state) of every broker's transactions."""
    q = s.builder(LIST_TRANSACTIONS)
    if duration_ms >= 0 and q.version < 1:
        raise CliError(f"the broker at {s.bootstrap} cannot filter transactions by duration "
                       f"(ListTransactions v{q.version})")
    found = []
    for node, client in s.broker_connections():
        request = q.ListTransactionsRequest(state_filters=(), producer_id_filters=producer_ids,
                                            duration_filter=duration_ms)
        response = _while_loading(lambda: s.request(request, client))
        check(response.error_code, None, f"broker {node} cannot list its transactions")
        found.extend((t.transactional_id, node, t.producer_id, t.transaction_state)
                     for t in response.transaction_states)
    return sorted(found)


def _while_loading(ask, attempts: int = 50):
    """``ask()`` again while the coordinator loads its state (COORDINATOR_LOAD_IN_PROGRESS)."""
    for _ in range(attempts - 1):
        response = ask()
        if response.error_code != COORDINATOR_LOAD_IN_PROGRESS:
            return response
        time.sleep(0.1)
    return ask()


def _list(s, args) -> None:
    print_table(listed(s, duration_ms=args.duration_filter), LIST_HEADERS)


# -- describe ------------------------------------------------------------------------------

@dataclass
class Described:
    """One transactional id of a DescribeTransactions response."""
    error_code: int
    transactional_id: str
    state: str
    timeout_ms: int
    start_ms: int  # -1: no transaction yet
    producer_id: int
    producer_epoch: int
    partitions: list[tuple[str, int]]


class _Reader:
    """The flexible-version primitives of a response, over kio's native readers."""

    def __init__(self, data: bytes, offset: int) -> None:
        from kio import _kio_native as native
        self.native, self.data, self.offset = native, data, offset

    def _read(self, name: str):
        value, size = getattr(self.native, name)(self.data, self.offset)
        self.offset += size
        return value

    def int16(self) -> int:
        return self._read("read_int16")

    def int32(self) -> int:
        return self._read("read_int32")

    def int64(self) -> int:
        return self._read("read_int64")

    def string(self) -> str:
        return self._read("read_compact_string")

    def count(self) -> int:
        return self._read("read_compact_array_length") or 0

    def skip_tags(self) -> None:
        for _ in range(self._read("read_unsigned_varint")):
            self._read("read_unsigned_varint")
            self.offset += self._read("read_unsigned_varint")


def decode_described(data: bytes, offset: int) -> list[Described]:
    """DescribeTransactions v0's response body (the layout of Kafka's
    DescribeTransactionsResponse.json), start times as plain milliseconds."""
    r = _Reader(data, offset)
    r.int32()  # throttle time
    states = []
    for _ in range(r.count()):
        error, tid, state, timeout, start, pid, epoch = (r.int16(), r.string(), r.string(), r.int32(),
                                                         r.int64(), r.int64(), r.int16())
        partitions = []
        for _ in range(r.count()):
            topic = r.string()
            partitions.extend((topic, r.int32()) for _ in range(r.count()))
            r.skip_tags()
        r.skip_tags()
        states.append(Described(error, tid, state, timeout, start, pid, epoch, partitions))
    r.skip_tags()
    return states


def described(s, transactional_id: str) -> tuple[int, Described | None]:
    """(coordinator node id, the id's state), None for an id its coordinator does not know."""
    node, _, client = s.coordinator(transactional_id, key_type=TRANSACTION_KEY)
    q = s.builder(DESCRIBE_TRANSACTIONS)
    request = q.DescribeTransactionsRequest(transactional_ids=(transactional_id,))
    (state,) = s.request(request, client, decode=decode_described)
    if state.error_code == TRANSACTIONAL_ID_NOT_FOUND:
        return node, None
    check(state.error_code, None, f"cannot describe transactional id '{transactional_id}'")
    return node, state


def _describe(s, args) -> None:
    node, state = described(s, args.transactional_id)
    if state is None:
        raise CliError(f"TRANSACTIONAL_ID_NOT_FOUND: transactional id '{args.transactional_id}' does not exist")
    started = state.start_ms >= 0
    print_table([(node, state.transactional_id, state.producer_id, state.producer_epoch, state.state,
                  state.timeout_ms, state.start_ms if started else "None",
                  now_ms() - state.start_ms if started else "None",
                  ",".join(f"{t}-{p}" for t, p in state.partitions))], DESCRIBE_HEADERS)


# -- describe-producers --------------------------------------------------------------------

def producers(s, partitions: list[tuple[str, int]], broker_id: int | None = None) -> dict:
    """(topic, partition) -> its active producers, asked of each partition's leader or of
    ``broker_id``."""
    by_node: dict[int, list[tuple[str, int]]] = {}
    for topic, index in partitions:
        by_node.setdefault(broker_id if broker_id is not None else _leader(s, topic, index), []).append(
            (topic, index))
    clients = dict(s.broker_connections())
    found = {}
    for node, wanted in by_node.items():
        if node not in clients:
            raise CliError(f"there is no broker {node} in the cluster (brokers: {sorted(clients)})")
        found.update(_describe_producers(s, clients[node], node, wanted))
    return found


def _leader(s, topic: str, index: int) -> int:
    partitions = {p.partition_index: p for p in s.topic(topic).partitions}
    if index not in partitions:
        raise CliError(f"UNKNOWN_TOPIC_OR_PARTITION: topic '{topic}' has no partition {index}")
    return partitions[index].leader_id


def _describe_producers(s, client, node: int, wanted: list[tuple[str, int]]) -> dict:
    by_topic: dict[str, list[int]] = {}
    for topic, index in wanted:
        by_topic.setdefault(topic, []).append(index)
    q = s.builder(DESCRIBE_PRODUCERS)
    response = s.request(q.DescribeProducersRequest(topics=tuple(
        q.TopicRequest(name=topic, partition_indexes=tuple(indexes)) for topic, indexes in by_topic.items())),
        client)
    found = {}
    for t in response.topics:
        for p in t.partitions:
            check(p.error_code, p.error_message,
                  f"cannot describe the producers of {t.name}-{p.partition_index} on broker {node}")
            found[(t.name, p.partition_index)] = list(p.active_producers)
    return found


def _describe_producers_action(s, args) -> None:
    key = (args.topic, args.partition)
    rows = [(p.producer_id, p.producer_epoch, p.coordinator_epoch, p.last_sequence, p.last_timestamp,
             p.current_txn_start_offset if p.current_txn_start_offset >= 0 else "None")
            for p in producers(s, [key], args.broker_id)[key]]
    print_table(rows, PRODUCER_HEADERS)


# -- find-hanging --------------------------------------------------------------------------

def _search_scope(s, args) -> list[tuple[str, int]]:
    if args.topic is None and args.broker_id is None:
        raise CliError("find-hanging needs --topic or --broker-id to limit the search")
    if args.partition is not None:
        if args.topic is None:
            raise CliError("--partition needs --topic")
        return [(args.topic, args.partition)]
    topics = [s.topic(args.topic)] if args.topic is not None else s.metadata(None).topics
    return [(t.name, p.partition_index) for t in topics for p in t.partitions
            if args.broker_id is None or args.broker_id in p.replica_nodes]


def hanging(s, partitions: list[tuple[str, int]], broker_id: int | None, max_idle_ms: int) -> list[tuple]:
    """(topic, partition, producer state) of the transactions Kafka's find-hanging reports."""
    now = now_ms()
    open_ = [(key, p) for key, states in producers(s, partitions, broker_id).items() for p in states
             if p.current_txn_start_offset >= 0 and now - p.last_timestamp > max_idle_ms]
    if not open_:
        return []
    ids = {pid: tid for tid, _, pid, _ in listed(s, tuple(sorted({p.producer_id for _, p in open_})))}
    states = {tid: described(s, tid)[1] for tid in set(ids.values())}
    result = []
    for key, p in open_:
        state = states.get(ids.get(p.producer_id))
        if state is None or key not in state.partitions:
            result.append((*key, p))
    return result


def _find_hanging(s, args) -> None:
    now = now_ms()
    found = hanging(s, _search_scope(s, args), args.broker_id, args.max_transaction_timeout * 60_000)
    print_table([(topic, index, p.producer_id, p.producer_epoch, p.coordinator_epoch, p.current_txn_start_offset,
                  p.last_timestamp, (now - p.last_timestamp) // 60_000) for topic, index, p in found],
                HANGING_HEADERS)


# -- abort ---------------------------------------------------------------------------------

def _abort_target(s, args) -> tuple[int, int, int]:
    """(producer id, producer epoch, coordinator epoch) of the transaction to abort."""
    key = (args.topic, args.partition)
    if args.start_offset is not None:
        for p in producers(s, [key])[key]:
            if p.current_txn_start_offset == args.start_offset:
                return p.producer_id, p.producer_epoch, max(p.coordinator_epoch, 0)
        raise CliError(f"no open transaction starts at offset {args.start_offset} in {args.topic}-{args.partition}")
    if args.producer_id is None:
        raise CliError("name the transaction to abort with --start-offset, or with --producer-id, "
                       "--producer-epoch and --coordinator-epoch")
    for option in ("producer_epoch", "coordinator_epoch"):
        if getattr(args, option) is None:
            raise CliError(f"--producer-id needs --{option.replace('_', '-')} too")
    # A transaction hanging before its producer's first marker has coordinator epoch -1; 0 is
    # never above the partition's, as Kafka's tool reasons.
    return args.producer_id, args.producer_epoch, max(args.coordinator_epoch, 0)


def _abort(s, args) -> None:
    producer_id, epoch, coordinator_epoch = _abort_target(s, args)
    q = s.builder(WRITE_TXN_MARKERS)
    marker = q.WritableTxnMarker(producer_id=producer_id, producer_epoch=epoch, transaction_result=False,
                                 coordinator_epoch=coordinator_epoch, transaction_version=0, topics=(
                                     q.WritableTxnMarkerTopic(name=args.topic, partition_indexes=(args.partition,)),))
    client = s.leader(_leader(s, args.topic, args.partition))
    response = s.request(q.WriteTxnMarkersRequest(markers=(marker,)), client)
    for result in response.markers:
        for t in result.topics:
            for p in t.partitions:
                check(p.error_code, None, f"cannot abort the transaction of producer {producer_id} "
                                          f"in {t.name}-{p.partition_index}")
    print(f"Aborted the transaction of producer {producer_id} (epoch {epoch}) in {args.topic}-{args.partition}.")


_ACTIONS = {"list": _list, "describe": _describe, "describe-producers": _describe_producers_action,
            "find-hanging": _find_hanging, "abort": _abort}
