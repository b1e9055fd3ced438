"""etcd itself is frozen (SIGSTOP) for twice the session timeout, three times, while an
idempotent acks=all producer writes (RF=3, min.insync.replicas=2).

Every broker loses its session at once and must register again when etcd is back.  A
registration granted while etcd was frozen can be lost at once (its lease was asked for
before the outage ended); the broker must then register once more, not stay unregistered.
What must hold afterwards: every broker is registered (each one's Metadata lists all three,
and names a controller), a new client can use the cluster, every acknowledged record is where
its ack said (``check_sequence_log``), and the replicas are identical.
"""

from __future__ import annotations

import time

import pytest

from cluster_process import (SeqProducer, Timeline, check_replicas_identical, check_sequence_log,
                             process_cluster, read_partition, wait_for)  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow  # a 3-process cluster, three etcd outages (~30 s)

TOPIC = "outage"
OUTAGES = 3
OUTAGE_S = 4.0


@pytest.mark.timeout(180)
def test_brokers_register_again_after_an_etcd_outage(process_cluster):  # noqa: F811
    cluster = process_cluster(3)
    cluster.create_topic(TOPIC, 1, 3, {"min.insync.replicas": "2"})
    cluster.wait_isr(TOPIC, size=3)
    producer = SeqProducer(cluster.bootstrap, TOPIC, rate=800)
    producer.start()
    t = Timeline()
    everyone = set(cluster.brokers)

    def all_registered() -> bool:
        for b in cluster.brokers.values():
            md = cluster.metadata(b, [])
            if {x.node_id for x in md.brokers} != everyone or md.controller_id not in everyone:
                return False
        return True

    try:
        for n in range(OUTAGES):
            cluster.wait_isr(TOPIC, size=3, timeout=30)
            base = producer.ack_count()
            wait_for(lambda: producer.ack_count() - base >= 200, 30, "acks before the outage")
            t0 = time.monotonic()
            cluster.etcd.pause()
            time.sleep(OUTAGE_S)
            cluster.etcd.resume()
            # the registrations of before the outage expire now: judge once they have
            time.sleep(cluster.session_timeout_ms / 1000 + 1.0)
            try:
                wait_for(all_registered, 20, "every broker registered, in every broker's Metadata")
                time.sleep(1.0)
                assert all_registered(), "registrations vanished again"
            except AssertionError:
                views = {}
                for b in cluster.brokers.values():
                    md = cluster.metadata(b, [])
                    views[b.broker_id] = (sorted(x.node_id for x in md.brokers), md.controller_id)
                raise AssertionError(f"after etcd outage {n + 1}: (registered brokers, controller) seen by "
                                     f"each broker: {views}") from None
            info = cluster.wait_isr(TOPIC, size=3, timeout=30)
            first = wait_for(lambda: producer.acks_after(t0 + OUTAGE_S), 30, "an ack after the outage")[0]
            t.note(f"etcd outage {n + 1} ({OUTAGE_S:.0f}s): all brokers registered; "
                   f"{TOPIC}-0 {info}; first ack {first[2] - t0 - OUTAGE_S:.2f}s after it")
        base = producer.ack_count()
        wait_for(lambda: producer.ack_count() - base >= 200, 30, "acks after the last outage")
    except BaseException:
        producer.finish(flush_timeout=5, check=False)
        raise
    producer.finish(flush_timeout=60)
    assert not producer.failed, f"idempotent producer gave up on records: {producer.failed[:3]}"

    log = read_partition(cluster.bootstrap, TOPIC)   # a new client: needs the brokers in Metadata
    figures = check_sequence_log(log, producer)
    t.note(f"produced {producer.produced}; {figures}")
    cluster.wait_isr(TOPIC, size=3, timeout=30)
    time.sleep(1.0)
    assert check_replicas_identical(cluster, TOPIC) == log
