"""Kafka-protocol workloads (kavka and tansu) driven by confluent-kafka.

The same code and the same client settings are used for every Kafka-compatible
target, so the figures compare brokers, not clients.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from _common import LAT_HEADER, WorkloadError, latency_payload, latency_summary, paced, rate_result

# Producer settings from the issue: linger.ms=5, batch.size=1 MiB; acks per run.
PRODUCER_CONF = {
    "linger.ms": 5,
    "batch.size": 1048576,
    "compression.type": "none",
    "enable.idempotence": False,
    # a large local queue so produce() rarely hits BufferError
    "queue.buffering.max.messages": 1_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "delivery.report.only.error": True,
}

# Consumer settings, identical for every Kafka target.
CONSUMER_CONF = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "enable.partition.eof": False,
    "fetch.min.bytes": 1,
    "fetch.wait.max.ms": 100,
    "max.partition.fetch.bytes": 8 * 1048576,
    "fetch.max.bytes": 64 * 1048576,
    "queued.min.messages": 1_000_000,
    "queued.max.messages.kbytes": 512 * 1024,
    "check.crcs": False,
}

CONSUME_BATCH = 10_000


def _client_base(bootstrap: str) -> dict:
    return {
        "bootstrap.servers": bootstrap,
        "client.id": "kavka-bench",
        "socket.timeout.ms": 30_000,
        "broker.address.family": "v4",
    }


def create_topic(bootstrap: str, topic: str, partitions: int, timeout: float = 20.0) -> bool:
    admin = AdminClient(_client_base(bootstrap) | {"log_level": 5})
    fut = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                              operation_timeout=timeout, request_timeout=timeout)[topic]
    try:
        fut.result(timeout=timeout)
    except KafkaException as e:
        raise WorkloadError(f"create_topics({topic}) failed: {e}") from e
    # wait until metadata shows every partition with a leader
    deadline = time.monotonic() + timeout
    while True:
        md = admin.list_topics(topic, timeout=max(1.0, deadline - time.monotonic()))
        t = md.topics.get(topic)
        if t is not None and t.error is None and len(t.partitions) == partitions \
                and all(p.leader >= 0 for p in t.partitions.values()):
            return True
        if time.monotonic() > deadline:
            raise WorkloadError(f"topic {topic} not ready after {timeout:.0f}s (metadata: {t and t.error})")
        time.sleep(0.05)


def delete_topic(bootstrap: str, topic: str, timeout: float = 20.0) -> None:
    """Best effort: frees broker memory between workloads."""
    try:
        admin = AdminClient(_client_base(bootstrap) | {"log_level": 5})
        admin.delete_topics([topic], operation_timeout=timeout, request_timeout=timeout)[topic].result(timeout)
    except Exception:
        pass


def partitions_of(client, topic: str, timeout: float = 10.0) -> list[int]:
    md = client.list_topics(topic, timeout=timeout)
    t = md.topics.get(topic)
    if t is None or t.error is not None or not t.partitions:
        raise WorkloadError(f"no metadata for topic {topic}: {t and t.error}")
    return sorted(t.partitions)


def produce(bootstrap: str, topic: str, n: int, size: int, acks: str, timeout: float) -> dict:
    errors: list = []

    def on_delivery(err, msg):  # only called for failures (delivery.report.only.error)
        if err is not None:
            errors.append(err)

    conf = _client_base(bootstrap) | PRODUCER_CONF | {
        "acks": acks, "on_delivery": on_delivery, "message.timeout.ms": int(timeout * 1000)}
    p = Producer(conf)
    done = False
    try:
        partitions_of(p, topic)  # connect and fetch metadata before the clock starts
        payload = os.urandom(size)
        prod, poll = p.produce, p.poll
        t0 = time.perf_counter()
        deadline = t0 + timeout
        sent = 0
        while sent < n:
            try:
                prod(topic, payload)
            except BufferError:
                poll(0.001)
                if time.perf_counter() > deadline:
                    raise WorkloadError(f"produce timed out after {timeout:.0f}s ({sent}/{n} queued)") from None
                continue
            sent += 1
            if not sent & 0x3FFF:
                poll(0)
                if errors:
                    break
        remaining = p.flush(max(1.0, deadline - time.perf_counter()))
        dt = time.perf_counter() - t0
        if errors:
            raise WorkloadError(f"{len(errors)} delivery failures, first: {errors[0]}")
        if remaining:
            raise WorkloadError(f"produce timed out after {timeout:.0f}s: {remaining} records unacknowledged")
        done = True
        return rate_result(n, n * size, dt)
    finally:
        if not done:  # drop what is still queued so the client shuts down at once
            p.purge()
            p.flush(0)


def consume(bootstrap: str, topic: str, n: int, size: int, timeout: float, stall: float = 15.0,
            extra_conf: dict | None = None) -> dict:
    """N records of ``size`` B from the beginning of every partition; ``extra_conf`` adds consumer settings."""
    conf = _client_base(bootstrap) | CONSUMER_CONF | {"group.id": f"kavka-bench-{uuid.uuid4().hex[:8]}"} \
        | (extra_conf or {})
    c = Consumer(conf)
    try:
        parts = partitions_of(c, topic)
        t0 = time.perf_counter()
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        deadline = t0 + timeout
        got = 0
        nbytes = 0
        last_progress = t0
        cons = c.consume
        while got < n:
            msgs = cons(min(CONSUME_BATCH, n - got), 0.5)
            now = time.perf_counter()
            if msgs:
                for m in msgs:
                    if m.error() is not None:
                        raise WorkloadError(f"consume error: {m.error()}")
                got += len(msgs)
                nbytes += len(msgs[-1].value()) * len(msgs)
                last_progress = now
            elif now - last_progress > stall:
                raise WorkloadError(f"consume stalled: {got}/{n} records, nothing for {stall:.0f}s")
            if now > deadline:
                raise WorkloadError(f"consume timed out after {timeout:.0f}s: {got}/{n} records")
        dt = time.perf_counter() - t0
        if nbytes != got * size:
            raise WorkloadError(f"consumed records have unexpected size ({nbytes} B for {got} records)")
        return rate_result(got, nbytes, dt)
    finally:
        c.close()


# ---------------------------------------------------------------------------
# end-to-end latency: a paced producer here, a consumer in another process


def _latency_consumer(bootstrap: str, topic: str, total: int, warmup: int, ready, out_q,
                      timeout: float, consumer_conf: dict) -> None:
    try:
        conf = _client_base(bootstrap) | consumer_conf | {"group.id": f"kavka-bench-{uuid.uuid4().hex[:8]}"}
        c = Consumer(conf)
        parts = partitions_of(c, topic)
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        c.consume(1, 0.2)  # first fetch round-trip before the producer starts
        ready.set()
        unpack = LAT_HEADER.unpack_from
        now_ns = time.perf_counter_ns
        lat: list[int] = []
        seen = bytearray(total)
        dup = 0
        got = 0
        deadline = time.monotonic() + timeout
        while got < total and time.monotonic() < deadline:
            # consume(n, timeout) waits until n records or the timeout, so it would
            # add up to `timeout` of latency: poll() returns on the first record,
            # then consume(..., 0) drains what is already queued without waiting.
            first = c.poll(0.1)
            if first is None:
                continue
            t = now_ns()
            msgs = [first] + c.consume(1000, 0)
            for m in msgs:
                if m.error() is not None:
                    continue
                seq, sent_ns = unpack(m.value())
                if seq >= total or seen[seq]:
                    dup += 1
                    continue
                seen[seq] = 1
                got += 1
                if seq >= warmup:
                    lat.append(t - sent_ns)
        c.close()
        out_q.put({"ok": True, **latency_summary(lat, total - warmup, dup)})
    except Exception as e:  # report instead of dying silently
        ready.set()
        out_q.put({"ok": False, "error": f"{type(e).__name__}: {e}"})


def latency(bootstrap: str, topic: str, rate: int, seconds: float, size: int, acks: str,
            linger_ms: float, timeout: float, consumer_overrides: dict | None = None) -> dict:
    ctx = mp.get_context("spawn")
    warmup = max(1, int(rate * 0.5))
    measured = int(rate * seconds)
    total = warmup + measured
    ready, out_q = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_latency_consumer,
                       args=(bootstrap, topic, total, warmup, ready, out_q, seconds + timeout,
                             CONSUMER_CONF | (consumer_overrides or {})),
                       daemon=True)
    proc.start()
    try:
        if not ready.wait(timeout):
            raise WorkloadError("latency consumer did not get ready")
        errors: list = []
        ack_ns: list[int] = []
        unpack = LAT_HEADER.unpack_from

        def on_delivery(err, msg):  # served by poll() while the pacer waits
            if err is not None:
                errors.append(err)
                return
            seq, sent_ns = unpack(msg.value())
            if seq >= warmup:
                ack_ns.append(time.perf_counter_ns() - sent_ns)

        conf = _client_base(bootstrap) | PRODUCER_CONF | {
            "acks": acks, "linger.ms": linger_ms, "on_delivery": on_delivery,
            "delivery.report.only.error": False,
        }
        p = Producer(conf)
        partitions_of(p, topic)
        pad = os.urandom(max(0, size - LAT_HEADER.size))
        state = {"sent": 0}

        def send_upto(k: int) -> None:
            for seq in range(state["sent"], k):
                p.produce(topic, latency_payload(seq, size, pad))
            state["sent"] = k

        def wait(delay: float) -> None:
            # poll() takes whole milliseconds (below 1 ms it would spin): sleep the rest
            if delay >= 0.001:
                p.poll(delay)
            else:
                p.poll(0)
                time.sleep(delay)

        achieved = paced(rate, total, send_upto, wait=wait, timeout=seconds * 3 + 10)
        if p.flush(timeout):
            raise WorkloadError("latency producer: records unacknowledged at flush timeout")
        if errors:
            raise WorkloadError(f"latency producer: {len(errors)} delivery failures, first: {errors[0]}")
        try:
            res = out_q.get(timeout=timeout + seconds)
        except Exception:
            raise WorkloadError("latency consumer returned no result") from None
        if not res.pop("ok"):
            raise WorkloadError(f"latency consumer: {res['error']}")
        ack = latency_summary(ack_ns, measured)
        res.update({"ack_p50_ms": ack["p50_ms"], "ack_p99_ms": ack["p99_ms"], "ack_p999_ms": ack["p999_ms"]})
        res.update({"rate": rate, "achieved_rate": achieved, "seconds": seconds, "size": size,
                    "acks": acks, "linger_ms": linger_ms, "warmup_records": warmup})
        return res
    finally:
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join(5)
