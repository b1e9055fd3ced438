"""A failed log directory in a 3-broker cluster: leadership and ISR move away from it.

Broker 1's data directory is an ext4 image (errors=remount-ro) that the test fails through
``/sys/fs/ext4/<dev>/trigger_fs_error`` while broker 1 leads a partition (RF=3,
min.insync.replicas=2) that an idempotent acks=all producer keeps writing.  Broker 1 takes
its log directory offline on the next write (kavka.log.log_dir), drops every role and
reports it in its registration; the controller elects 2 or 3 and removes 1 from the ISR.

What must hold: a new leader among the survivors, ISR without 1, Metadata listing 1 as an
offline replica (from every broker, broker 1 included: it keeps answering Metadata), the
producer never gives up on a record, and every acknowledged record is read back exactly
once at its offset (``check_sequence_log``).  Needs root (mount); skipped otherwise.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from cluster_process import ProcessCluster, SeqProducer, check_sequence_log, read_partition, wait_for
from test_disk_full import _run, mounted  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow  # a 3-process cluster on a loop mount

TOPIC = "dirfail"


@pytest.mark.timeout(180)
def test_failed_log_dir_moves_leadership_and_isr_away(mounted, tmp_path):  # noqa: F811
    cluster = ProcessCluster(tmp_path / "cluster", 3)
    point = mounted("ext4")
    data = cluster.root / "broker-1"
    data.mkdir(parents=True)
    r = _run("mount", "--bind", str(point), str(data))
    assert r.returncode == 0, r.stderr
    try:
        cluster.start()
        device = os.path.basename(_run("findmnt", "-no", "SOURCE", str(point)).stdout.strip())
        trigger = Path(f"/sys/fs/ext4/{device}/trigger_fs_error")
        if not trigger.exists():
            pytest.skip(f"no {trigger} to fail the filesystem with")
        cluster.create_topic(TOPIC, config={"min.insync.replicas": "2"}, assignment=[[1, 2, 3]])
        cluster.wait_isr(TOPIC, size=3)
        assert cluster.agreed(TOPIC).leader == 1
        producer = SeqProducer(cluster.bootstrap, TOPIC, rate=400)
        producer.start()
        try:
            wait_for(lambda: producer.ack_count() >= 200, 30, "acks before the failure")
            trigger.write_text("kavka cluster fault test\n")
            failed_at = time.monotonic()
            new = cluster.wait_leader(TOPIC, not_in=(1,), timeout=30)
            moved_s = time.monotonic() - failed_at
            assert new.leader in (2, 3)
            base = producer.ack_count()
            wait_for(lambda: producer.ack_count() - base >= 200, 30, "acks from the new leader")

            def shrunk():
                views = [cluster.partition_view(b, TOPIC) for b in cluster.brokers.values()]
                return all(v is not None and 1 not in v.isr and v.leader in (2, 3) for v in views)
            wait_for(shrunk, 20, "every broker's Metadata: ISR without broker 1")
            for b in cluster.brokers.values():
                p = next(p for t in cluster.metadata(b, [TOPIC]).topics for p in t.partitions)
                assert tuple(p.offline_replicas) == (1,), (b.broker_id, p)
        except BaseException:
            producer.finish(flush_timeout=5, check=False)
            raise
        producer.finish(flush_timeout=60)
        assert not producer.failed, f"idempotent producer gave up on records: {producer.failed[:3]}"
        survivors = ",".join(cluster.brokers[i].address for i in (2, 3))
        figures = check_sequence_log(read_partition(survivors, TOPIC), producer)
        print(f"log dir failure under load: leader 1 -> {new.leader} after {moved_s:.2f}s; {figures}")
        log = cluster.brokers[1].all_logs()
        assert log.count("taking it offline") == 1
        assert "giving up leadership" in log
    finally:
        cluster.stop()
        _run("umount", "-l", str(data))
