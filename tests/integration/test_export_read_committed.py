"""`kavka export --isolation` and `kavka consume --isolation`: transactions written by confluent-kafka (committed, aborted and
one left open) and plain records, exported to Parquet.  read_committed holds exactly the
committed and the plain records, in offset order, and stops at the open transaction (the last
stable offset); read_uncommitted, the default as for Kafka's consumers, holds every data record;
neither holds a transaction marker."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from test_cli_tools import consume_json, kavka, ok

from kavka import export

pytestmark = pytest.mark.timeout(120)

TOPIC = "txn-export"


def transaction(producer: Producer, values: list[str], commit: bool) -> None:
    producer.begin_transaction()
    for n, value in enumerate(values):
        producer.produce(TOPIC, value=value.encode(), partition=n % 2)
    assert producer.flush(10) == 0
    if commit:
        producer.commit_transaction(10)
    else:
        producer.abort_transaction(10)


@pytest.fixture
def written(kavka_broker_factory):
    """The broker, and the data records' values in the order they were written."""
    broker = kavka_broker_factory({"transaction.state.log.num.partitions": 3})
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers})
    admin.create_topics([NewTopic(TOPIC, 2, 1)])[TOPIC].result(10)
    producer = Producer({"bootstrap.servers": broker.bootstrap_servers, "transactional.id": "export-tx"})
    producer.init_transactions(10)
    plain = Producer({"bootstrap.servers": broker.bootstrap_servers, "enable.idempotence": True})
    transaction(producer, ["c0", "c1", "c2", "c3"], commit=True)
    transaction(producer, ["a0", "a1", "a2"], commit=False)
    for n in range(2):
        plain.produce(TOPIC, value=b"p%d" % n, partition=n)
    assert plain.flush(10) == 0
    transaction(producer, ["c4", "c5"], commit=True)
    producer.begin_transaction()  # left open: its records are above the last stable offset
    producer.produce(TOPIC, value=b"o0", partition=0)
    assert producer.flush(10) == 0
    yield broker
    producer.purge()


def rows(path) -> list[tuple[int, int, str]]:
    table = pq.read_table(path)
    return list(zip(table["partition"].to_pylist(), table["offset"].to_pylist(),
                    (v.decode() for v in table["value"].to_pylist())))


def values_by_partition(found) -> dict[int, list[str]]:
    by_partition: dict[int, list[str]] = {}
    for partition, _offset, value in found:
        by_partition.setdefault(partition, []).append(value)
    return by_partition


def test_read_committed_export_holds_committed_and_plain_records_only(written, tmp_path):
    path = tmp_path / "committed.parquet"
    ok(kavka(written, "export", TOPIC, "-o", str(path), "--isolation", "read_committed"))
    committed = rows(path)
    assert values_by_partition(committed) == {0: ["c0", "c2", "p0", "c4"], 1: ["c1", "c3", "p1", "c5"]}
    for partition in (0, 1):
        offsets = [offset for p, offset, _ in committed if p == partition]
        assert offsets == sorted(offsets)

    everything = tmp_path / "all.parquet"
    ok(kavka(written, "export", TOPIC, "-o", str(everything)))
    uncommitted = rows(everything)
    assert values_by_partition(uncommitted) == {0: ["c0", "c2", "a0", "a2", "p0", "c4", "o0"],
                                                1: ["c1", "c3", "a1", "p1", "c5"]}
    assert set(committed) < set(uncommitted), "the same records at the same offsets"
    # The markers' offsets (commit 2, abort 5, commit 8 in partition 0; 2, 4, 7 in 1) are no rows.
    assert [(p, o) for p, o, _ in uncommitted] == [(0, 0), (0, 1), (0, 3), (0, 4), (0, 6), (0, 7), (0, 9),
                                                   (1, 0), (1, 1), (1, 3), (1, 5), (1, 6)]


def test_the_python_api_takes_the_isolation_level(written):
    table = export.read_window(written.bootstrap_servers, TOPIC, isolation="read_committed")
    assert sorted(v.decode() for v in table["value"].to_pylist()) == ["c0", "c1", "c2", "c3", "c4", "c5", "p0", "p1"]
    records = list(export.iter_window(written.bootstrap_servers, TOPIC, partitions=[0]))
    assert [r.value for r in records] == [b"c0", b"c2", b"a0", b"a2", b"p0", b"c4", b"o0"]


def test_consume_reads_committed_records_only_with_read_committed(written):
    def seen(*options: str) -> dict[int, list[str]]:
        return values_by_partition((r["partition"], r["offset"], r["value"])
                                   for r in consume_json(written, TOPIC, *options))
    assert seen("--isolation", "read_committed") == {0: ["c0", "c2", "p0", "c4"], 1: ["c1", "c3", "p1", "c5"]}
    assert seen() == {0: ["c0", "c2", "a0", "a2", "p0", "c4", "o0"], 1: ["c1", "c3", "a1", "p1", "c5"]}
