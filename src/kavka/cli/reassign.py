"""``kavka cluster reassign`` and ``kavka cluster rebalance``: move partitions' replicas.

Both speak only the Kafka protocol (AlterPartitionReassignments, ListPartitionReassignments
and Metadata, KIP-455), to kavka or Apache Kafka alike; any broker is asked (kavka forwards
to its controller, as KRaft brokers do).

``reassign`` takes one partition (``--topic T --partition P --replicas 1,2,4``) or a
kafka-reassign-partitions JSON plan (``--plan FILE``), prints the current assignment of
what it moves (the plan to roll back with), starts the moves and, with ``--wait``, prints a
progress line whenever a partition's state changes (and every few seconds while nothing
does) until none is listed as reassigning, then checks that the metadata shows each target.
``--list`` prints the reassignments in progress, ``--cancel`` cancels the selected ones
(every one in progress when nothing is selected).

``rebalance`` plans, with :func:`kavka.cli.reassign_plan.balance`, an even spread of every
partition's replicas over the live brokers (or ``--brokers``: leaving a broker out drains
it), prints the moves and the brokers' loads before and after, and executes the plan
unless ``--dry-run``.
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path

from kavka.cli.common import CliError, bootstrap_parent, print_table, session
from kavka.cli.reassign_plan import Plan, balance, loads, parse_ids, parse_plan, plan_json
from kavka.client_session import ALTER_PARTITION_REASSIGNMENTS, LIST_PARTITION_REASSIGNMENTS, check, error_name

DEFAULT_WAIT_TIMEOUT = 300.0
POLL_INTERVAL = 0.5
QUIET_PROGRESS = 5.0        # seconds between progress lines while nothing changes
REQUEST_TIMEOUT = datetime.timedelta(seconds=30)


def add_actions(actions) -> None:
    reassign = actions.add_parser(
        "reassign", parents=[bootstrap_parent()], help="move partitions' replicas between brokers",
        description="Start, list or cancel partition reassignments (KIP-455), from --topic/--partition/--replicas "
                    "or a kafka-reassign-partitions JSON plan.")
    reassign.add_argument("--topic", metavar="TOPIC", help="the topic of the partition to move (or to list, cancel)")
    reassign.add_argument("--partition", type=int, metavar="P", help="the partition to move")
    reassign.add_argument("--replicas", metavar="IDS", help="its new replicas, the preferred leader first: 1,2,4")
    reassign.add_argument("--plan", metavar="FILE",
                          help='a JSON plan: {"version":1,"partitions":[{"topic":..,"partition":..,"replicas":[..]}]}')
    what = reassign.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true", help="list the reassignments in progress")
    what.add_argument("--cancel", action="store_true",
                      help="cancel the selected reassignments (all in progress when none is selected)")
    _wait_options(reassign)

    rebalance = actions.add_parser(
        "rebalance", parents=[bootstrap_parent()], help="spread every partition's replicas evenly over the brokers",
        description="Plan an even spread of every partition's replicas (and preferred leaders) over the live brokers, "
                    "moving as few replicas as it can, print it and execute it.")
    rebalance.add_argument("--brokers", metavar="IDS",
                           help="the brokers to spread over (default: every live broker); one left out is drained")
    rebalance.add_argument("--topic", action="append", default=[], metavar="TOPIC",
                           help="only this topic (repeatable; default every topic)")
    rebalance.add_argument("--dry-run", action="store_true", help="print the plan only")
    rebalance.add_argument("--output", metavar="FILE", help="also write the plan there, as a JSON plan file")
    _wait_options(rebalance)


def _wait_options(parser) -> None:
    parser.add_argument("--wait", action="store_true", help="wait until the moves are done, printing progress")
    parser.add_argument("--timeout", type=float, default=DEFAULT_WAIT_TIMEOUT, metavar="SECONDS",
                        help=f"how long --wait waits (default {DEFAULT_WAIT_TIMEOUT:.0f}); then exit status 1")


def run_reassign(args) -> int:
    with session(args) as s:
        if args.partition is not None and not args.topic:
            raise CliError("--partition needs --topic")
        if args.list:
            return _print_listed({tp: r for tp, r in _listed(s).items() if args.topic in (None, tp[0])})
        if args.cancel:
            return _cancel(s, args)
        plan = _requested_plan(args)
        if not plan:
            raise CliError("the plan moves nothing")
        return _execute(s, plan, args)


def run_rebalance(args) -> int:
    with session(args) as s:
        moving = _listed(s)
        if moving:
            raise CliError(f"REASSIGNMENT_IN_PROGRESS: {len(moving)} partitions are being reassigned; wait for them "
                           f"or cancel them (kavka cluster reassign --list / --cancel)")
        live = sorted(b.node_id for b in s.metadata([]).brokers)
        brokers = parse_ids(args.brokers, "--brokers") if args.brokers else live
        absent = sorted(set(brokers) - set(live))
        if absent:
            raise CliError(f"broker {', '.join(map(str, absent))} is not a live broker (live: {_ids(live)})")
        current = _assignment(s, args.topic or None)
        plan = balance(current, brokers)
        _print_plan(current, plan, brokers)
        if args.output:
            Path(args.output).write_text(plan_json(plan) + "\n")
        if args.dry_run or not plan:
            return 0
        return _execute(s, plan, args, current)


# -- what to move ---------------------------------------------------------------------------

def _requested_plan(args) -> Plan:
    if args.plan:
        if args.topic or args.partition is not None or args.replicas:
            raise CliError("give either --plan or --topic/--partition/--replicas, not both")
        try:
            text = Path(args.plan).read_text()
        except OSError as exc:
            raise CliError(f"cannot read {args.plan}: {exc.strerror or exc}") from None
        return parse_plan(text, args.plan)
    if not args.topic or args.partition is None or not args.replicas:
        raise CliError("give --topic, --partition and --replicas (or --plan FILE, --list, --cancel)")
    return {(args.topic, args.partition): parse_ids(args.replicas, "--replicas")}


def _assignment(s, topics: list[str] | None) -> Plan:
    """(topic, partition) -> replicas of the named topics (every topic by default)."""
    response = s.metadata(topics)
    out: Plan = {}
    for t in response.topics:
        if t.error_code == 3:
            raise CliError(f"UNKNOWN_TOPIC_OR_PARTITION: topic '{t.name}' does not exist")
        check(t.error_code, None, f"topic '{t.name}'")
        out.update({(t.name, p.partition_index): list(p.replica_nodes) for p in t.partitions})
    return out


# -- requests -------------------------------------------------------------------------------

def _alter(s, targets: dict[tuple[str, int], list[int] | None]) -> dict[tuple[str, int], str | None]:
    """Send the targets (None cancels); (topic, partition) -> None or the refusal, one line."""
    q = s.builder(ALTER_PARTITION_REASSIGNMENTS)
    by_topic: dict[str, list] = {}
    for (topic, p), replicas in sorted(targets.items()):
        by_topic.setdefault(topic, []).append(q.ReassignablePartition(
            partition_index=p, replicas=None if replicas is None else tuple(replicas)))
    response = s.request(q.AlterPartitionReassignmentsRequest(
        timeout=REQUEST_TIMEOUT, allow_replication_factor_change=True, topics=tuple(
            q.ReassignableTopic(name=name, partitions=tuple(parts)) for name, parts in by_topic.items())))
    check(response.error_code, response.error_message, "AlterPartitionReassignments failed")
    return {(t.name, p.partition_index): (f"{error_name(p.error_code)}: {p.error_message or ''}".rstrip(": ")
                                          if p.error_code else None)
            for t in response.responses for p in t.partitions}


def _listed(s, partitions=None) -> dict[tuple[str, int], tuple[list[int], list[int], list[int]]]:
    """(topic, partition) -> (replicas, adding, removing) of the reassignments in progress."""
    q = s.builder(LIST_PARTITION_REASSIGNMENTS)
    topics = None
    if partitions is not None:
        by_topic: dict[str, list[int]] = {}
        for topic, p in sorted(partitions):
            by_topic.setdefault(topic, []).append(p)
        topics = tuple(q.ListPartitionReassignmentsTopics(name=n, partition_indexes=tuple(ps))
                       for n, ps in by_topic.items())
    response = s.request(q.ListPartitionReassignmentsRequest(timeout=REQUEST_TIMEOUT, topics=topics))
    check(response.error_code, response.error_message, "ListPartitionReassignments failed")
    return {(t.name, p.partition_index): (list(p.replicas), list(p.adding_replicas), list(p.removing_replicas))
            for t in response.topics for p in t.partitions}


# -- actions --------------------------------------------------------------------------------

def _execute(s, plan: Plan, args, current: Plan | None = None) -> int:
    current = current if current is not None else _assignment(s, sorted({t for t, _ in plan}))
    unknown = sorted(tp for tp in plan if tp not in current)
    known = {tp: r for tp, r in plan.items() if tp in current}
    print("Current partition replica assignment (a plan to roll back with):")
    print(plan_json({tp: current[tp] for tp in known}))
    refused = {tp: f"UNKNOWN_TOPIC_OR_PARTITION: {tp[0]}-{tp[1]} does not exist" for tp in unknown}
    if known:
        refused.update({tp: why for tp, why in _alter(s, known).items() if why})
    for tp in sorted(plan):
        if tp in refused:
            print(f"{tp[0]}-{tp[1]}: refused: {refused[tp]}")
        else:
            print(f"{tp[0]}-{tp[1]}: {_ids(current[tp])} -> {_ids(plan[tp])}: started")
    started = {tp: r for tp, r in known.items() if tp not in refused}
    status = 1 if refused else 0
    if args.wait and started:
        status = max(status, _wait(s, started, args.timeout))
    return status


def _cancel(s, args) -> int:
    """Cancel the plan's partitions, one partition, a topic's reassignments, or all of them."""
    if args.plan:
        wanted = sorted(_requested_plan(args))
    elif args.topic and args.partition is not None:
        wanted = [(args.topic, args.partition)]
    else:
        wanted = sorted(tp for tp in _listed(s) if args.topic in (None, tp[0]))
    if not wanted:
        print("No reassignment in progress to cancel.")
        return 0
    answers = _alter(s, {tp: None for tp in wanted})
    for tp in wanted:
        why = answers.get(tp)
        print(f"{tp[0]}-{tp[1]}: {'cancel refused: ' + why if why else 'cancelled'}")
    return 1 if any(answers.get(tp) for tp in wanted) else 0


def _wait(s, plan: Plan, timeout: float) -> int:
    """Poll until none of ``plan`` is reassigning, printing what changes; 0 when every
    partition shows its target, 1 on a timeout or a different outcome."""
    started = time.monotonic()
    shown: dict | None = None
    last_line = 0.0
    while True:
        moving = _listed(s, plan)
        elapsed = time.monotonic() - started
        isr = _isrs(s, plan) if moving else {}
        state = {tp: (moving[tp], isr.get(tp)) for tp in moving}
        if state != shown or elapsed - last_line >= QUIET_PROGRESS:
            _print_progress(elapsed, plan, state, shown or {})
            shown, last_line = state, elapsed
        if not moving:
            return _check_done(s, plan, elapsed)
        if elapsed >= timeout:
            print(f"[{elapsed:.1f} s] still reassigning after {timeout:.0f} s: "
                  f"{', '.join(f'{t}-{p}' for t, p in sorted(moving))} (kavka cluster reassign --list)")
            return 1
        time.sleep(POLL_INTERVAL)


def _isrs(s, plan: Plan) -> dict[tuple[str, int], list[int]]:
    response = s.metadata(sorted({t for t, _ in plan}))
    return {(t.name, p.partition_index): sorted(p.isr_nodes) for t in response.topics for p in t.partitions}


def _print_progress(elapsed: float, plan: Plan, state: dict, before: dict) -> None:
    for tp in sorted(before):
        if tp not in state:
            print(f"[{elapsed:.1f} s] {tp[0]}-{tp[1]}: done")
    if state:
        parts = [f"{t}-{p} (adding {_ids(a)}, removing {_ids(r)}, isr {_ids(isr or [])})"
                 for (t, p), ((_, a, r), isr) in sorted(state.items())]
        print(f"[{elapsed:.1f} s] {len(state)} of {len(plan)} partitions reassigning: {'; '.join(parts)}", flush=True)


def _check_done(s, plan: Plan, elapsed: float) -> int:
    now = _assignment(s, sorted({t for t, _ in plan}))
    wrong = {tp: now.get(tp) for tp, r in plan.items() if now.get(tp) != r}
    for tp, got in sorted(wrong.items()):
        print(f"{tp[0]}-{tp[1]}: ended with replicas {_ids(got or [])}, not {_ids(plan[tp])} (cancelled?)")
    if not wrong:
        print(f"[{elapsed:.1f} s] all {len(plan)} reassignments done", flush=True)
    return 1 if wrong else 0


# -- output ---------------------------------------------------------------------------------

def _print_listed(moving) -> int:
    if not moving:
        print("No reassignment in progress.")
        return 0
    print_table([(t, p, _ids(r), _ids(a), _ids(rm)) for (t, p), (r, a, rm) in sorted(moving.items())],
                ("TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"))
    return 0


def _print_plan(current: Plan, plan: Plan, brokers: list[int]) -> None:
    if not plan:
        print(f"Nothing to move: the replicas are already spread evenly over brokers {_ids(brokers)}.")
        return
    print(f"Plan: {len(plan)} partitions change over brokers {_ids(brokers)}")
    print_table([(t, p, _ids(current[(t, p)]), _ids(r)) for (t, p), r in sorted(plan.items())],
                ("TOPIC", "PARTITION", "CURRENT", "TARGET"))
    after = {**current, **plan}
    before_load, after_load = loads(current, brokers), loads(after, brokers)
    print()
    print_table([(b, *before_load.get(b, (0, 0)), *after_load.get(b, (0, 0))) for b in sorted(after_load)],
                ("BROKER", "REPLICAS", "LEADERS", "REPLICAS AFTER", "LEADERS AFTER"))
    print()
    print("Proposed partition reassignment configuration:")
    print(plan_json(plan))


def _ids(ids) -> str:
    return ",".join(str(i) for i in ids) or "-"
