"""KIP-890's partition-side check with librdkafka (confluent-kafka) on a lone broker, and the
transactions of kafka-python and aiokafka going through it.

librdkafka (2.x) runs the classic transaction protocol: it adds every partition with
AddPartitionsToTxn v0, sends Produce up to v10 and EndTxn v0-1, so a transaction it aborts keeps
its epoch.  Two ways a write can arrive after its transaction ended:

* its producer's transaction timed out: the coordinator aborted it with a new epoch (fencing
  the producer), and the producer keeps sending;
* a Produce request of the transaction was delayed in the network and arrives after the
  client aborted (the hanging-transaction bug KIP-890 closes).  The test sends that request
  itself, with the real producer's id and epoch, to a partition the transaction never added
  and to one it did; without the check (``transaction.partition.verification.enable=false``)
  the write opens a transaction nobody ends and the partition's last stable offset stays
  below it.

In both, nothing of the late writes reaches a read_committed consumer, and the LSO of every
partition is its log end offset.
"""

from __future__ import annotations

import asyncio
import datetime
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from kio.schema.produce.v9.request import PartitionProduceData, ProduceRequest, TopicProduceData

from kavka.client import Client
from kavka.protocol.errors import ErrorCode
from kavka.protocol.record_codec import encode_batch
from test_confluent import create_topic

pytestmark = pytest.mark.timeout(90)

TOPIC = "verified"
TIMEOUT_S = 15
SETTINGS = {"transaction.abort.timed.out.transaction.cleanup.interval.ms": 100}


def producer_of(bootstrap: str, transactional_id: str, **conf) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "linger.ms": 5,
                         "message.timeout.ms": 8000, **conf})
    producer.init_transactions(TIMEOUT_S)
    return producer


def send(producer: Producer, records: list[tuple[int, bytes]]) -> list:
    """Produce (partition, value) records in the open transaction; the delivery errors (None: stored)."""
    errors = []
    for partition, value in records:
        producer.produce(TOPIC, value=value, partition=partition, on_delivery=lambda err, _m: errors.append(err))
    producer.flush(TIMEOUT_S)
    return errors


def read(bootstrap: str, isolation: str, settle_s: float = 1.5) -> list[bytes]:
    """Every value of both partitions a consumer of ``isolation`` gets within ``settle_s`` of idling."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"v-{isolation}", "enable.auto.commit": False,
                         "isolation.level": isolation})
    consumer.assign([TopicPartition(TOPIC, p, 0) for p in (0, 1)])
    values, idle_until = [], time.monotonic() + settle_s
    try:
        while time.monotonic() < idle_until:
            for msg in consumer.consume(num_messages=100, timeout=0.2):
                if msg.error() is None:
                    values.append(msg.value())
                    idle_until = time.monotonic() + settle_s
                elif msg.error().code() != KafkaError._PARTITION_EOF:
                    raise AssertionError(msg.error())
        return sorted(values)
    finally:
        consumer.close()


def ends(broker) -> list[tuple[int, int]]:
    """(log end offset, last stable offset) of both partitions, read on the broker's loop."""
    def both():
        parts = [broker.logs.partition(TOPIC, p) for p in (0, 1)]
        return [(p.log.log_end_offset, p.last_stable_offset) for p in parts]
    return broker.call(both)


def described(broker, transactional_id: str):
    return broker.call(lambda: broker.transactions.query(lambda c: c.describe(transactional_id)))[1]


def wait_for_state(broker, transactional_id: str, state: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while described(broker, transactional_id).state.kafka_name != state:
        assert time.monotonic() < deadline, f"{transactional_id} never reached {state}"
        time.sleep(0.05)


def late_produce(bootstrap: str, transactional_id: str, pid: int, epoch: int, batches: dict) -> dict:
    """One Produce v9 request, as the client would have sent it: {partition: (sequence, value)}."""
    now = int(time.time() * 1000)
    data = tuple(PartitionProduceData(index=p, records=encode_batch(
        [(None, value, now, ())], producer_id=pid, producer_epoch=epoch, base_sequence=seq, transactional=True))
        for p, (seq, value) in batches.items())
    request = ProduceRequest(transactional_id=transactional_id, acks=-1, timeout=datetime.timedelta(seconds=5),
                             topic_data=(TopicProduceData(name=TOPIC, partition_data=data),))
    with Client(bootstrap) as client:
        response = client.request(request)
    return {p.index: p.error_code for p in response.responses[0].partition_responses}


@pytest.fixture
def broker(kavka_broker_factory):
    return kavka_broker_factory(SETTINGS)


@pytest.mark.slow   # waits out a transaction timeout
def test_a_producer_aborted_by_its_timeout_keeps_sending_and_nothing_lands(broker):
    bootstrap = broker.bootstrap_servers
    create_topic(bootstrap, TOPIC, partitions=2)
    fatal: list = []
    zombie = producer_of(bootstrap, "zombie", **{"transaction.timeout.ms": 2000, "message.timeout.ms": 2000})
    zombie.begin_transaction()
    assert send(zombie, [(0, b"before the timeout")]) == [None]
    epoch = described(broker, "zombie").producer_epoch
    wait_for_state(broker, "zombie", "CompleteAbort")
    assert described(broker, "zombie").producer_epoch == epoch + 1, "the timeout fenced the producer"

    for partition in (0, 1):   # the fencing is raised from produce() or flush() (no delivery report then)
        try:
            zombie.produce(TOPIC, value=b"zombie %d" % partition, partition=partition)
            zombie.flush(TIMEOUT_S)
        except KafkaException as exc:
            fatal.append(exc.args[0])
    # t-0 holds the abort marker of a newer epoch: INVALID_PRODUCER_EPOCH, which librdkafka takes for a
    # fencing; the producer is dead from then on.
    assert [e.code() for e in fatal] == [KafkaError._FENCED, KafkaError._FATAL], fatal
    with pytest.raises(KafkaException):
        zombie.commit_transaction(TIMEOUT_S)

    assert ends(broker) == [(2, 2), (0, 0)], "t-0: the record and the abort marker; t-1 untouched"
    assert read(bootstrap, "read_committed") == []
    assert read(bootstrap, "read_uncommitted") == [b"before the timeout"]


@pytest.mark.parametrize("verification", [True, False], ids=["verified", "unverified"])
def test_a_delayed_produce_after_the_abort_cannot_hang_a_partition(kavka_broker_factory, verification):
    broker = kavka_broker_factory({**SETTINGS, "transaction.partition.verification.enable": verification})
    bootstrap = broker.bootstrap_servers
    create_topic(bootstrap, TOPIC, partitions=2)
    producer = producer_of(bootstrap, "delayed")
    producer.begin_transaction()
    assert send(producer, [(0, b"aborted")]) == [None]
    producer.abort_transaction(TIMEOUT_S)
    wait_for_state(broker, "delayed", "CompleteAbort")
    meta = described(broker, "delayed")
    assert meta.producer_epoch == 0, "librdkafka's abort keeps the epoch (transactions V1)"

    answer = late_produce(bootstrap, "delayed", meta.producer_id, meta.producer_epoch,
                          {0: (1, b"delayed 0"), 1: (0, b"delayed 1")})
    if not verification:   # what the check prevents
        assert answer == {0: ErrorCode.none, 1: ErrorCode.none}
        assert ends(broker) == [(3, 2), (1, 0)], "both partitions hold an open transaction nobody ends"
        return
    assert answer == {0: ErrorCode.invalid_txn_state, 1: ErrorCode.invalid_txn_state}
    assert ends(broker) == [(2, 2), (0, 0)]

    producer.begin_transaction()   # the producer goes on as if nothing happened
    assert send(producer, [(1, b"committed")]) == [None]
    producer.commit_transaction(TIMEOUT_S)
    assert ends(broker) == [(2, 2), (2, 2)]
    assert read(bootstrap, "read_committed") == [b"committed"]
    assert read(bootstrap, "read_uncommitted") == [b"aborted", b"committed"]


def _kafka_python_transactions(bootstrap: str) -> None:
    kafka = pytest.importorskip("kafka")
    producer = kafka.KafkaProducer(bootstrap_servers=bootstrap, transactional_id="kafka-python")
    try:
        producer.init_transactions()
        for value, commit in ((b"kept", True), (b"dropped", False)):
            producer.begin_transaction()
            producer.send(TOPIC, value=value, partition=1).get(timeout=TIMEOUT_S)
            if commit:
                producer.commit_transaction()
            else:
                producer.abort_transaction()
    finally:
        producer.close()


def _aiokafka_transactions(bootstrap: str) -> None:
    aiokafka = pytest.importorskip("aiokafka")

    async def run() -> None:
        producer = aiokafka.AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id="aiokafka")
        await producer.start()
        try:
            for value, commit in ((b"kept", True), (b"dropped", False)):
                await producer.begin_transaction()
                await producer.send_and_wait(TOPIC, value=value, partition=1)
                if commit:
                    await producer.commit_transaction()
                else:
                    await producer.abort_transaction()
        finally:
            await producer.stop()
    asyncio.run(asyncio.wait_for(run(), TIMEOUT_S * 2))


@pytest.mark.parametrize("transactions", [_kafka_python_transactions, _aiokafka_transactions],
                         ids=["kafka-python", "aiokafka"])
def test_the_python_clients_transactions_pass_verification(broker, transactions):
    """kafka-python and aiokafka add their partitions themselves (transactions V1): each first
    write of a transaction is verified, and goes through."""
    bootstrap = broker.bootstrap_servers
    create_topic(bootstrap, TOPIC, partitions=2)
    transactions(bootstrap)
    assert ends(broker) == [(0, 0), (4, 4)], "two records and two markers"
    assert read(bootstrap, "read_committed") == [b"kept"]
    assert read(bootstrap, "read_uncommitted") == [b"dropped", b"kept"]
