"""The partition leader is frozen (SIGSTOP) for longer than the session timeout while an
idempotent acks=all producer writes (RF=3, min.insync.replicas=2), then thawed (SIGCONT).

While it is frozen its etcd lease expires and another broker leads; the frozen one does not
know.  Requests sent to it meanwhile wait in its socket buffers and are handled when it
resumes, before it may have noticed that it lost its session.  What must hold:

* the acks=1 record it took just before it froze (its followers are held off by its
  listener proxy, stalled from just before the freeze until after the thaw) is its own
  divergent tail: truncated once it follows the new leader, present in no replica;
* it acknowledges no acks=all write of its own after it resumes (a raw Produce acks=-1
  sent straight to it while frozen must fail), and the acks=1 write it may accept then is
  its divergent tail: truncated once it follows the new leader, present in no replica;
* at the end, the producer's acknowledged records are all where their acks said, in order,
  without duplicates (``check_sequence_log``), and the three replicas are identical.
"""

from __future__ import annotations

import statistics
import threading
import time

import pytest

from cluster_process import (SeqProducer, Timeline, check_replicas_identical, check_sequence_log,
                             process_cluster, produce_raw, read_partition, wait_for)  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow  # a 3-process cluster, leader paused past its session four times (~30 s)

TOPIC = "pause"
PAUSES = 4
PAUSE_S = 4.0          # session timeout 2 s: the lease is gone long before the thaw


class RawProduce(threading.Thread):
    def __init__(self, address: str, value: bytes, acks: int) -> None:
        super().__init__(daemon=True)
        self.address, self.value, self.acks = address, value, acks
        self.result: tuple[int, int] | None = None

    def run(self) -> None:
        self.result = produce_raw(self.address, TOPIC, [self.value], self.acks, timeout_ms=3000)


@pytest.mark.timeout(240)
def test_paused_leader_loses_leadership_and_acknowledges_nothing_of_its_own(process_cluster):  # noqa: F811
    cluster = process_cluster(3, proxies=True)
    cluster.create_topic(TOPIC, 1, 3, {"min.insync.replicas": "2"})
    cluster.wait_isr(TOPIC, size=3)
    producer = SeqProducer(cluster.advertised_bootstrap, TOPIC, rate=800)
    producer.start()
    t = Timeline()
    markers: list[tuple[int, int, bytes, tuple[int, int]]] = []   # (pause, acks, value, result)
    tails: list = []                                                # (value, offset, broker)
    try:
        for n in range(PAUSES):
            info = cluster.wait_isr(TOPIC, size=3, timeout=30)
            base = producer.ack_count()
            wait_for(lambda: producer.ack_count() - base >= 200, 30, "acks before the pause")
            victim = cluster.brokers[info.leader]
            # Give it a tail nobody else has: its followers (and the producer) reach it only
            # through its listener proxy, held from here until after the thaw, and one acks=1
            # record goes straight to it.
            victim.listener_proxy.stall()
            tail = produce_raw(victim.address, TOPIC, [f"tail-{n}".encode()], 1, timeout_ms=2000)
            if tail[0] == 0:
                tails.append((f"tail-{n}".encode(), tail[1], victim))
            t_pause = time.monotonic()
            victim.pause()
            raws = [RawProduce(victim.address, f"paused-{n}-acks{acks}".encode(), acks) for acks in (-1, 1)]
            for r in raws:
                r.start()
            new = cluster.wait_leader(TOPIC, not_in=(victim.broker_id,), timeout=30)
            t_leader = time.monotonic() - t_pause
            first = wait_for(lambda: producer.acks_after(t_pause + 0.1), 30, "an ack from the new leader")[0]
            failover = first[2] - t_pause
            t.failover_s.append(failover)
            time.sleep(max(0.0, PAUSE_S - (time.monotonic() - t_pause)))
            victim.resume()
            wait_for(lambda: cluster.agreed(TOPIC) is not None, 20, "the thawed broker to follow")
            victim.listener_proxy.heal()
            for r in raws:
                r.join(15)
                assert not r.is_alive(), "raw produce to the resumed broker did not finish"
                markers.append((n, r.acks, r.value, r.result))
            t.note(f"pause {n + 1}: leader {victim.broker_id} (epoch {info.leader_epoch}) frozen; broker "
                   f"{new.leader} leads at epoch {new.leader_epoch} after {t_leader:.2f}s, first ack after "
                   f"{failover:.2f}s; thawed after {time.monotonic() - t_pause:.1f}s; raw produce to it "
                   f"(error, offset): acks=-1 {raws[0].result}, acks=1 {raws[1].result}")
        cluster.wait_isr(TOPIC, size=3, timeout=30)
        base = producer.ack_count()
        wait_for(lambda: producer.ack_count() - base >= 200, 30, "acks after the last thaw")
    except BaseException:
        producer.finish(flush_timeout=5, check=False)
        raise
    producer.finish(flush_timeout=60)
    t.note(f"failover (SIGSTOP -> first ack) median {statistics.median(t.failover_s):.2f}s "
           f"max {max(t.failover_s):.2f}s")

    acked_alone = [(n, v, res) for n, acks, v, res in markers if acks == -1 and res[0] == 0]
    assert not acked_alone, f"a thawed ex-leader acknowledged acks=all writes of its own: {acked_alone}"
    assert not producer.failed, f"idempotent producer gave up on records: {producer.failed[:3]}"
    log = read_partition(cluster.bootstrap, TOPIC)
    figures = check_sequence_log(log, producer)   # also: nothing but the producer's records is stored
    t.note(f"produced {producer.produced}; {figures}")
    cluster.wait_isr(TOPIC, size=3, timeout=30)
    time.sleep(1.0)
    replicas = check_replicas_identical(cluster, TOPIC)
    assert replicas == log
    divergent = [(n, acks, res) for n, acks, _v, res in markers if res[0] == 0]
    t.note(f"writes the thawed ex-leader accepted and that were truncated since: {divergent}")
    assert tails, "no frozen leader held a tail of its own: truncation was not exercised"
    for value, offset, broker in tails:
        assert (offset, value) not in replicas
    truncations = {b.broker_id: b.all_logs().count("truncating") for _v, _o, b in tails}
    t.note(f"tails of frozen leaders (value, offset): {[(v, o) for v, o, _b in tails]}; "
           f"truncations logged: {truncations}")
    assert all(truncations.values()), "a thawed ex-leader never truncated its tail"
