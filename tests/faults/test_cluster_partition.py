"""A network partition isolates the partition leader while an idempotent acks=all producer
writes (RF=3, min.insync.replicas=2).

Every broker reaches etcd through its own TcpProxy and advertises another TcpProxy in front
of its listener: the other brokers (replica fetches, forwarded requests) and the producer
(bootstrapped on the advertised addresses) reach it only through that proxy.  Cutting both
proxies of the leader cuts it off from etcd and from everyone but the test, which still
reaches its real port.  (Its own outgoing connections to the other brokers are not cut; it
follows no one while isolated, so nothing would use them.)

While it is isolated:
* acks=all Produce sent straight to it must never succeed (REQUEST_TIMED_OUT,
  NOT_ENOUGH_REPLICAS(_AFTER_APPEND) or NOT_LEADER_OR_FOLLOWER are fine);
* acks=1 Produce sent to it right after the cut, before its session deadline, is accepted:
  that is its divergent tail;
* the other two elect a new leader and the producer's writes go on there.
After the heal it re-registers, follows the new leader, truncates its divergent tail and
rejoins the ISR.  At the end every acknowledged record is where its ack said
(``check_sequence_log``) and the three replicas' logs are identical; no divergent record is
in any of them.  This is done twice (the second time to the leader of that moment), once
with connections reset (``cut``) and once with them silent (``stall``).
"""

from __future__ import annotations

import threading
import time

import pytest

from cluster_process import (SeqProducer, Timeline, check_replicas_identical, check_sequence_log,
                             process_cluster, produce_raw, read_partition, wait_for)  # noqa: F401 (fixture)
from kavka.protocol.errors import ErrorCode

TOPIC = "partition"
ISOLATIONS = 2
ISOLATED_S = 6.0           # > session timeout (2 s) + replica.lag.time.max.ms (3 s)
REFUSALS = {ErrorCode.request_timed_out, ErrorCode.not_enough_replicas,
            ErrorCode.not_enough_replicas_after_append, ErrorCode.not_leader_or_follower, -1}


class AcksAllProber(threading.Thread):
    """Sends acks=-1 Produce of a marker straight to one broker, one after another, until stopped."""

    def __init__(self, address: str, tag: str) -> None:
        super().__init__(daemon=True)
        self.address, self.tag = address, tag
        self.results: list[tuple[bytes, tuple[int, int]]] = []
        self.answered_after: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stop.is_set() and n < 50:
            value = f"{self.tag}-acksall-{n}".encode()
            sent = time.monotonic()
            result = produce_raw(self.address, TOPIC, [value], -1, timeout_ms=2000)
            self.results.append((value, result))
            self.answered_after.append(time.monotonic() - sent)
            n += 1
            self.stop.wait(0.2)


@pytest.mark.slow  # a 3-process cluster behind proxies (~17-25 s)
@pytest.mark.timeout(240)
@pytest.mark.parametrize("mode", ["cut", "stall"])
def test_isolated_leader_acknowledges_no_acks_all_write_and_its_tail_is_truncated(process_cluster, mode):  # noqa: F811
    """``cut``: the proxies close every connection and refuse new ones (what a host sees
    after resets); ``stall``: they hold every byte, so the isolated side only hears
    silence (a dropped link), and deliver what they held on the heal."""
    cluster = process_cluster(3, proxies=True)
    cluster.create_topic(TOPIC, config={"min.insync.replicas": "2"}, assignment=[[1, 2, 3]])
    cluster.wait_isr(TOPIC, size=3)
    producer = SeqProducer(cluster.advertised_bootstrap, TOPIC, rate=800)
    producer.start()
    t = Timeline()
    divergent: list[tuple[bytes, int]] = []      # acks=1 records an isolated leader accepted
    probes: list[tuple[bytes, tuple[int, int]]] = []
    try:
        for n in range(ISOLATIONS):
            info = cluster.wait_isr(TOPIC, size=3, timeout=40)
            base = producer.ack_count()
            wait_for(lambda: producer.ack_count() - base >= 200, 30, "acks before the cut")
            x = cluster.brokers[info.leader]
            others = [b for b in cluster.brokers.values() if b is not x]
            t_cut = time.monotonic()
            for proxy in (x.etcd_proxy, x.listener_proxy):
                proxy.cut() if mode == "cut" else proxy.stall()
            # acks=all straight to it from now on (the first one most likely while it still
            # believes it leads); its divergent tail: acks=1 straight to it, before it notices
            # that it is cut off
            prober = AcksAllProber(x.address, f"isolated-{n}")
            prober.start()
            for k in range(5):
                value = f"isolated-{n}-acks1-{k}".encode()
                code, offset = produce_raw(x.address, TOPIC, [value], 1, timeout_ms=2000)
                if code == 0:
                    divergent.append((value, offset))
            new = cluster.wait_leader(TOPIC, not_in=(x.broker_id,), among=others, timeout=30)
            t_leader = time.monotonic() - t_cut
            first = wait_for(lambda: producer.acks_after(t_cut + 0.1), 30, "an ack from the new leader")[0]
            failover = first[2] - t_cut
            t.failover_s.append(failover)
            time.sleep(max(0.0, ISOLATED_S - (time.monotonic() - t_cut)))
            prober.stop.set()
            prober.join(10)
            assert not prober.is_alive()
            probes += prober.results
            x.etcd_proxy.heal()
            x.listener_proxy.heal()
            t_heal = time.monotonic()
            cluster.wait_isr(TOPIC, size=3, timeout=40)
            t.note(f"{mode} {n + 1}: leader {x.broker_id} (epoch {info.leader_epoch}) cut off; broker "
                   f"{new.leader} leads at epoch {new.leader_epoch} after {t_leader:.2f}s, first ack after "
                   f"{failover:.2f}s; acks=all probes to the isolated broker: "
                   f"{sorted({int(r[0]) for _v, r in prober.results})} ({len(prober.results)}, the first "
                   f"{prober.results[0][1]} after {prober.answered_after[0]:.2f}s); healed, back "
                   f"in the ISR after {time.monotonic() - t_heal:.1f}s")
        base = producer.ack_count()
        wait_for(lambda: producer.ack_count() - base >= 200, 30, "acks after the last heal")
    except BaseException:
        producer.finish(flush_timeout=5, check=False)
        raise
    producer.finish(flush_timeout=60)

    acked_alone = [(v, r) for v, r in probes if r[0] == 0]
    assert not acked_alone, f"an isolated broker acknowledged acks=all writes: {acked_alone[:3]}"
    unexpected = [(v, r) for v, r in probes if r[0] not in REFUSALS]
    assert not unexpected, f"unexpected answers to acks=all: {unexpected[:3]}"
    t.note(f"acks=1 records accepted by isolated leaders (their divergent tails): {divergent}")
    assert divergent, "no isolated leader accepted an acks=1 write: the truncation path was not exercised"
    assert not producer.failed, f"idempotent producer gave up on records: {producer.failed[:3]}"

    log = read_partition(cluster.bootstrap, TOPIC)
    figures = check_sequence_log(log, producer)   # every value is one of the producer's: no marker
    t.note(f"produced {producer.produced}; {figures}")
    cluster.wait_isr(TOPIC, size=3, timeout=30)
    time.sleep(1.0)
    replicas = check_replicas_identical(cluster, TOPIC)
    assert replicas == log
    for value, offset in divergent:
        assert (offset, value) not in replicas
    truncated = [b.broker_id for b in cluster.brokers.values() if "truncating" in b.all_logs()]
    t.note(f"brokers that logged a truncation: {truncated}")


def test_tcp_proxy_forwards_stalls_cuts_and_heals():
    """The harness's proxy itself: bytes go both ways, a stall holds them (and lets them
    through on heal), a cut closes connections and refuses new ones until the heal."""
    import socket

    from cluster_process import ProxyLoop, TcpProxy

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(5)
    stop = threading.Event()

    def echo() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return

            def serve(c=conn):
                with c:
                    while data := c.recv(65536):
                        c.sendall(data)
            threading.Thread(target=serve, daemon=True).start()

    threading.Thread(target=echo, daemon=True).start()
    loop = ProxyLoop()
    proxy = TcpProxy(loop, server.getsockname())
    try:
        def closed(sock) -> bool:
            try:
                return sock.recv(10) == b""
            except ConnectionResetError:
                return True

        def roundtrip(sock, payload: bytes) -> bytes:
            sock.sendall(payload)
            got = b""
            while len(got) < len(payload):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
            return got

        with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as s:
            assert roundtrip(s, b"x" * 200_000) == b"x" * 200_000
            proxy.stall()
            s.sendall(b"held")
            s.settimeout(0.5)
            with pytest.raises(socket.timeout):
                s.recv(10)
            proxy.heal()
            s.settimeout(2)
            assert s.recv(10) == b"held"
            proxy.cut()
            assert closed(s), "a cut did not close the connection"
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as s:
            s.settimeout(2)
            assert closed(s), "a cut proxy kept a new connection open"
        proxy.heal()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as s:
            assert roundtrip(s, b"again") == b"again"
    finally:
        proxy.close()
        loop.close()
        stop.set()
        server.close()
