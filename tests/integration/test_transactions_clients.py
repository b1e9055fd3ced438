"""Transactions end to end with librdkafka (confluent-kafka) on a lone broker.

A transactional producer commits one transaction and aborts the next (its records sent and
acknowledged first, so that the abort has data to hide); read_committed consumers of all
three clients see only the committed records, read_uncommitted ones see both.  A second
producer with the same ``transactional.id`` fences the first, whose next transaction fails
with a fatal fencing error, and the fenced producer's open transaction is aborted.
"""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

from test_confluent import create_topic
from test_read_committed_clients import TOPIC, consume_aiokafka, consume_confluent, consume_kafka_python

TIMEOUT_S = 15
CONSUMERS = [consume_confluent, consume_kafka_python, consume_aiokafka]


def transactional_producer(bootstrap: str, transactional_id: str = "tx-1") -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "linger.ms": 5})
    producer.init_transactions(TIMEOUT_S)
    return producer


def send(producer: Producer, values: list[bytes]) -> None:
    """Produce ``values`` to partition 0 of TOPIC inside the open transaction, acknowledged."""
    errors = []
    for value in values:
        producer.produce(TOPIC, value=value, partition=0, on_delivery=lambda err, _msg: errors.append(err))
    assert producer.flush(TIMEOUT_S) == 0
    assert errors == [None] * len(values)


@pytest.fixture
def committed_and_aborted(broker):
    create_topic(broker.bootstrap_servers, TOPIC, partitions=1)
    producer = transactional_producer(broker.bootstrap_servers)
    producer.begin_transaction()
    send(producer, [b"c1", b"c2"])
    producer.commit_transaction(TIMEOUT_S)
    producer.begin_transaction()
    send(producer, [b"a1", b"a2"])
    producer.abort_transaction(TIMEOUT_S)
    producer.begin_transaction()
    send(producer, [b"c3"])
    producer.commit_transaction(TIMEOUT_S)
    return broker


@pytest.mark.parametrize("consume", CONSUMERS, ids=lambda f: f.__name__.removeprefix("consume_"))
def test_read_committed_sees_only_committed_records(committed_and_aborted, consume):
    bootstrap = committed_and_aborted.bootstrap_servers
    assert consume(bootstrap, "read_committed", 3) == [b"c1", b"c2", b"c3"]
    assert consume(bootstrap, "read_uncommitted", 5) == [b"c1", b"c2", b"a1", b"a2", b"c3"]


def test_commit_and_abort_markers_reach_the_log(committed_and_aborted):
    partition = committed_and_aborted.logs.partition(TOPIC, 0)
    end = committed_and_aborted.call(lambda: partition.log.log_end_offset)
    # 5 records and 3 markers; the LSO is the end: no transaction is left open.
    assert end == 8
    assert committed_and_aborted.call(lambda: partition.last_stable_offset) == end
    aborted = committed_and_aborted.call(lambda: partition.log.aborted_transactions(0, end))
    assert [first for _pid, first in aborted] == [3]


def test_a_second_producer_with_the_same_id_fences_the_first(broker):
    create_topic(broker.bootstrap_servers, TOPIC, partitions=1)
    first = transactional_producer(broker.bootstrap_servers)
    first.begin_transaction()
    send(first, [b"zombie"])
    second = transactional_producer(broker.bootstrap_servers)   # aborts the first's open transaction
    second.begin_transaction()
    send(second, [b"live"])
    second.commit_transaction(TIMEOUT_S)

    with pytest.raises(KafkaException) as raised:
        first.commit_transaction(TIMEOUT_S)
    error = raised.value.args[0]
    assert error.fatal() and error.code() == KafkaError._FENCED
    assert consume_confluent(broker.bootstrap_servers, "read_committed", 1) == [b"live"]
    assert consume_confluent(broker.bootstrap_servers, "read_uncommitted", 2) == [b"zombie", b"live"]


def test_an_open_transaction_survives_a_restart_and_is_aborted_by_the_next_producer(kavka_broker_factory,
                                                                                    tmp_path):
    data_dir = tmp_path / "data"
    broker = kavka_broker_factory(data_dir=data_dir)
    create_topic(broker.bootstrap_servers, TOPIC, partitions=1)
    committed = transactional_producer(broker.bootstrap_servers)
    committed.begin_transaction()
    send(committed, [b"before"])
    committed.commit_transaction(TIMEOUT_S)
    committed.begin_transaction()
    send(committed, [b"open"])
    port = broker.port
    broker.stop()   # the transaction is Ongoing in __transaction_state

    broker = kavka_broker_factory(data_dir=data_dir, port=port)
    successor = transactional_producer(broker.bootstrap_servers)   # replayed id: aborts "open"
    successor.begin_transaction()
    send(successor, [b"after"])
    successor.commit_transaction(TIMEOUT_S)
    assert consume_confluent(broker.bootstrap_servers, "read_committed", 2) == [b"before", b"after"]
