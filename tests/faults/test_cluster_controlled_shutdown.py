"""Controlled shutdown: a rolling restart (SIGTERM, start, wait for the ISR) of every broker of
a 3-broker cluster under an idempotent acks=all producer (RF=3, min.insync.replicas=2).

A broker that gets SIGTERM first says in its registration that it is stopping; the
controller moves its leaderships to in-sync followers and drops it from the ISRs, and only
then does it stop (Kafka's ControlledShutdown).  What must hold: no send fails; every
acknowledged record is stored exactly once at its offset, in order; the replicas end
identical; the longest gap between two acknowledgements (the produce stall) stays short,
because the producer moves to the new leader before the old one closes its sockets.
Printed: the stall around each stop, and the longest.  For comparison, a kill -9 of the
leader stalls acks=all for about the session timeout (test_cluster_kill9.py), and a clean stop
without the handover (``controlled.shutdown.enable=false``) about 1 s.
"""

from __future__ import annotations

import time

import pytest

from cluster_process import (SeqProducer, Timeline, check_replicas_identical, check_sequence_log,
                             process_cluster, read_partition, wait_for)  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow  # a 3-process cluster restarted broker by broker (~30 s)

TOPIC = "rolling"
# Measured on 2 busy cores: 0.1 s with controlled shutdown; 1.0 s without it (the stopping leader
# closes its session, then the controller elects), and about the 2 s session timeout after a kill -9.
STALL_BOUND_S = 0.6


def longest_gap(acked, start: float, end: float) -> float:
    times = sorted(t for _o, _s, t in acked if start <= t <= end)
    return max((b - a for a, b in zip(times, times[1:])), default=end - start)


@pytest.mark.timeout(240)
def test_rolling_restart_under_acks_all_fails_no_send_and_stalls_briefly(process_cluster):  # noqa: F811
    cluster = process_cluster(3)
    cluster.create_topic(TOPIC, 1, 3, {"min.insync.replicas": "2"})
    cluster.wait_isr(TOPIC, size=3)
    producer = SeqProducer(cluster.bootstrap, TOPIC, rate=800)
    producer.start()
    t = Timeline()
    stalls = []
    try:
        # leader last, so one stop moves a leadership away from a broker that is not the first
        order = sorted(cluster.brokers, key=lambda b: b == cluster.leader_of(TOPIC))
        for broker_id in order + [cluster.leader_of(TOPIC)]:
            cluster.wait_isr(TOPIC, size=3, timeout=30)
            base = producer.ack_count()
            wait_for(lambda: producer.ack_count() - base >= 200, 30, "acks before the stop")
            was_leader = cluster.leader_of(TOPIC) == broker_id
            victim = cluster.brokers[broker_id]
            t_stop = time.monotonic()
            assert victim.terminate(timeout=30) == 0
            stopped_after = time.monotonic() - t_stop
            assert "controlled shutdown done" in victim.all_logs()
            base = producer.ack_count()
            wait_for(lambda: producer.ack_count() - base >= 200, 30, "acks after the stop")
            stall = longest_gap(producer.acked, t_stop - 0.5, time.monotonic())
            stalls.append((broker_id, was_leader, stall))
            t.note(f"broker {broker_id}{' (the leader)' if was_leader else ''}: stopped in {stopped_after:.2f}s; "
                   f"longest gap between acks around it {stall * 1000:.0f} ms")
            victim.restart()
        cluster.wait_isr(TOPIC, size=3, timeout=30)
    except BaseException:
        producer.finish(flush_timeout=5, check=False)
        raise
    producer.finish(flush_timeout=60)
    worst = max(s for _b, _l, s in stalls)
    t.note(f"{len(stalls)} stops; longest produce stall {worst * 1000:.0f} ms")
    assert not producer.failed, f"sends failed: {producer.failed[:3]}"
    assert any(leader for _b, leader, _s in stalls), "no stop of a leader happened"
    check_sequence_log(read_partition(cluster.bootstrap, TOPIC), producer)
    check_replicas_identical(cluster, TOPIC)
    assert worst < STALL_BOUND_S, stalls
