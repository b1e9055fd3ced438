"""Disk faults under a real ``kavka serve``: a full tmpfs and a failed (emergency
read-only) ext4 image as the data dir.

Full disk: acks=1 and acks=all produces get KAFKA_STORAGE_ERROR (56), reads and
Metadata go on, it is logged once; after space returns producing resumes by
itself, and after a restart every acknowledged record is read back once at its
offset.  Failed filesystem (ext4 ``trigger_fs_error`` with errors=remount-ro):
partitions go offline (56 for produce and fetch, Metadata: no leader, replica
offline), logged once, the broker keeps answering.  Needs root (mount); skipped
with the reason otherwise.  Everything mounted is unmounted in teardown.
"""

from __future__ import annotations

import datetime
import os
import subprocess
import time
from pathlib import Path

import pytest

from broker_process import BrokerProcess, read_all, wait_for
from kavka.api.responses import make
from kavka.client import Client
from kavka.protocol.record_codec import encode_batch

STORAGE_ERROR = 56


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)


@pytest.fixture
def mounted(tmp_path):
    """mount(kind) -> mount point; unmounts everything at the end."""
    points: list[Path] = []

    def mount(kind: str) -> Path:
        point = tmp_path / f"mnt-{len(points)}"
        point.mkdir()
        if kind == "tmpfs":
            r = _run("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(point))
        else:
            image = tmp_path / f"ext4-{len(points)}.img"
            with open(image, "wb") as f:
                f.truncate(32 << 20)
            if _run("mkfs.ext4", "-q", str(image)).returncode:
                pytest.skip("mkfs.ext4 is not available")
            r = _run("mount", "-o", "loop,errors=remount-ro", str(image), str(point))
        if r.returncode:
            pytest.skip(f"cannot mount a {kind} (needs root): {r.stderr.strip()}")
        points.append(point)
        return point

    yield mount
    for point in reversed(points):
        _run("umount", "-l", str(point))


def produce(bootstrap: str, topic: str, values, acks: int = 1) -> tuple[int, int]:
    from kio.schema.produce.v9 import request as q
    batch = encode_batch([(None, v, int(time.time() * 1000), ()) for v in values])
    body = make(q.ProduceRequest, transactional_id=None, acks=acks, timeout=datetime.timedelta(seconds=5),
                topic_data=(make(q.TopicProduceData, name=topic, partition_data=(
                    make(q.PartitionProduceData, index=0, records=batch),)),))
    with Client(bootstrap, timeout=15) as client:
        p = client.request(body).responses[0].partition_responses[0]
    return p.error_code, p.base_offset


def metadata(bootstrap: str, topic: str):
    from kio.schema.metadata.v12 import request as q
    body = make(q.MetadataRequest, topics=(make(q.MetadataRequestTopic, name=topic, topic_id=None),),
                allow_auto_topic_creation=False, include_topic_authorized_operations=False)
    with Client(bootstrap, timeout=15) as client:
        return client.request(body).topics[0].partitions[0]


def fetch_error(bootstrap: str, topic: str) -> int:
    from kio.schema.fetch.v12 import request as q
    body = make(q.FetchRequest, cluster_id=None, replica_id=-1, max_wait=datetime.timedelta(0), min_bytes=0,
                max_bytes=1 << 20, isolation_level=0, session_id=0, session_epoch=-1, topics=(
                    make(q.FetchTopic, topic=topic, partitions=(make(
                        q.FetchPartition, partition=0, current_leader_epoch=-1, fetch_offset=0,
                        last_fetched_epoch=-1, log_start_offset=-1, partition_max_bytes=1 << 20),)),),
                forgotten_topics_data=(), rack_id="")
    with Client(bootstrap, timeout=15) as client:
        return client.request(body).responses[0].partitions[0].error_code


def start(point: Path, tmp_path: Path) -> BrokerProcess:
    broker = BrokerProcess(point / "data", log_dir=tmp_path / "logs",
                           overrides={"log.segment.bytes": 1 << 20, "offsets.topic.num.partitions": 1})
    return broker.start()


def create(bootstrap: str, *names: str) -> None:
    from broker_process import create_topic
    for name in names:
        create_topic(bootstrap, name, 1)


def test_disk_full_refuses_writes_keeps_reads_and_recovers(mounted, tmp_path):
    point = mounted("tmpfs")
    broker = start(point, tmp_path)
    try:
        create(broker.bootstrap_servers, "full", "other")
        acked: list[tuple[int, bytes]] = []
        value = b"x" * 20_000
        codes = []
        for i in range(2000):  # 8 MB fill up well before 2000 x 10 x 20 KB
            acks = 1 if i % 2 else -1
            code, base = produce(broker.bootstrap_servers, "full", [value + b"%d" % i] * 10, acks)
            if code == 0:
                acked += [(base + k, value + b"%d" % i) for k in range(10)]
                continue
            codes.append((acks, code))
            if len(codes) >= 6:
                break
        assert codes and all(code == STORAGE_ERROR for _, code in codes), codes
        assert {a for a, _ in codes} == {1, -1}
        # Reads and metadata go on; other partitions too; the broker logged it once.
        assert metadata(broker.bootstrap_servers, "full").error_code == 0
        assert fetch_error(broker.bootstrap_servers, "full") == 0
        assert fetch_error(broker.bootstrap_servers, "other") == 0
        log = broker.log_text()
        assert log.count("refusing writes with KAFKA_STORAGE_ERROR") == 1
        assert "Traceback" not in log
        # Space returns (the tmpfs grows), and the next produce simply works.
        assert _run("mount", "-o", "remount,size=32m", str(point)).returncode == 0
        code, base = produce(broker.bootstrap_servers, "full", [b"after"])
        assert code == 0 and base == len(acked)
        acked.append((base, b"after"))
        wait_for(lambda: "succeed again" in broker.log_text(), 5, "the recovery log line")
        broker.terminate()
        broker.restart()
        got = read_all(broker.bootstrap_servers, "full", 1)[0]
        assert [(o, v) for o, _k, v in got] == acked  # every acknowledged record, once, at its offset
    finally:
        broker.cleanup()


def test_failed_filesystem_takes_partitions_offline(mounted, tmp_path):
    point = mounted("ext4")
    broker = start(point, tmp_path)
    try:
        create(broker.bootstrap_servers, "f")
        assert produce(broker.bootstrap_servers, "f", [b"before"])[0] == 0
        device = os.path.basename(_run("findmnt", "-no", "SOURCE", str(point)).stdout.strip())
        trigger = Path(f"/sys/fs/ext4/{device}/trigger_fs_error")
        if not trigger.exists():
            pytest.skip(f"no {trigger} to fail the filesystem with")
        trigger.write_text("kavka fault test\n")
        for acks in (1, -1, 1):
            assert produce(broker.bootstrap_servers, "f", [b"lost"], acks)[0] == STORAGE_ERROR
        assert fetch_error(broker.bootstrap_servers, "f") == STORAGE_ERROR
        p = metadata(broker.bootstrap_servers, "f")  # the broker still answers Metadata
        assert (p.error_code, p.leader_id, tuple(p.offline_replicas)) == (5, -1, (0,))  # LEADER_NOT_AVAILABLE
        log = broker.log_text()
        assert log.count("taking it offline") == 1 and "Traceback" not in log
        assert broker.terminate() == 0
    finally:
        broker.cleanup()
