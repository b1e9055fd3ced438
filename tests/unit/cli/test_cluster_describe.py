"""DescribeCluster in cluster mode (answered from the broker's ClusterNode), and how
``kavka cluster describe`` classifies partitions, without processes or sockets."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from kio import index as kio_index
from kio.schema.index import api_key_map
from kio.static.constants import EntityType

import kavka.api  # noqa: F401  (registers every handler)
from kavka.api.context import BrokerContext, RandomProducerIds
from kavka.api.responses import make
from kavka.cli import cluster as cli_cluster
from kavka.cli.main import build_parser
from kavka.clock import ManualClock
from kavka.cluster.model import BrokerInfo
from kavka.config import BrokerConfig
from kavka.log.log_manager import LogManager
from kavka.metadata import BrokerEndpoint
from kavka.metadata.local import LocalMetadata
from kavka.protocol import messages
from kavka.protocol.framing import parse_response_header
from kavka.server.dispatch import Dispatcher

DESCRIBE_CLUSTER = 60


class FakeNode(LocalMetadata):
    """What DescribeCluster asks of the metadata view (kavka.metadata) in a cluster."""

    cluster_id = "fake-cluster"

    def __init__(self, brokers, controller):
        self._brokers, self._controller = brokers, controller

    def brokers(self):
        return [BrokerEndpoint(b.broker_id, b.host, b.port, b.rack) for b in self._brokers]

    def controller_id(self):
        return self._controller

    def live_broker_ids(self):
        return frozenset(b.broker_id for b in self._brokers)


@dataclass
class _Conn:
    peer: str = "127.0.0.1:50000"


@pytest.fixture
def context(tmp_path):
    config = BrokerConfig.from_strings({"broker.id": "1"})
    logs = LogManager(tmp_path, config, ManualClock())
    logs.load()
    ctx = BrokerContext(logs=logs, config=config, clock=ManualClock(), node_id=1, host="127.0.0.1", port=9093,
                        producer_ids=RandomProducerIds())
    yield ctx
    logs.close()


_correlation = itertools.count(1)


def describe_cluster(ctx, version: int, **fields):
    module = kio_index.load_entity_module(api_key_map[DESCRIBE_CLUSTER], version, EntityType.request)
    values = {"include_cluster_authorized_operations": False, "endpoint_type": 1, "include_fenced_brokers": False}
    values.update(fields)
    names = {f for f in module.DescribeClusterRequest.__dataclass_fields__}
    request = make(module.DescribeClusterRequest, **{k: v for k, v in values.items() if k in names})
    correlation = next(_correlation)
    frame = messages.encode_request_frame(request, correlation, "test")[4:]
    data = b"".join(bytes(p) for p in Dispatcher(ctx).handle(frame, _Conn()))
    flexible = messages.response_header_flexible(DESCRIBE_CLUSTER, version)
    got, header_size = parse_response_header(data[4:], flexible)
    assert got == correlation
    return messages.decode_response(DESCRIBE_CLUSTER, version, data[4:], header_size)


@pytest.mark.parametrize("version", range(0, 3))
def test_describe_cluster_lists_every_live_broker_and_the_controller(context, version):
    context.metadata = FakeNode([BrokerInfo(0, "h0", 9092), BrokerInfo(1, "127.0.0.1", 9093, "rack-b"),
                                BrokerInfo(2, "h2", 9094, "rack-c")], controller=2)
    r = describe_cluster(context, version)
    assert r.error_code == 0
    assert r.controller_id == 2  # not this broker (1): the elected one
    assert [(b.broker_id, b.host, b.port, b.rack) for b in r.brokers] == [
        (0, "h0", 9092, None), (1, "127.0.0.1", 9093, "rack-b"), (2, "h2", 9094, "rack-c")]
    assert r.cluster_id == context.cluster_id
    if version >= 2:
        assert not any(b.is_fenced for b in r.brokers)


def test_describe_cluster_without_a_controller_says_minus_one(context):
    context.metadata = FakeNode([BrokerInfo(1, "127.0.0.1", 9093)], controller=-1)
    r = describe_cluster(context, 1)
    assert r.controller_id == -1
    assert [b.broker_id for b in r.brokers] == [1]


def test_describe_cluster_of_a_lone_broker_is_itself(context):
    r = describe_cluster(context, 2)
    assert r.controller_id == 1
    assert [(b.broker_id, b.host, b.port) for b in r.brokers] == [(1, "127.0.0.1", 9093)]


def test_describe_cluster_in_cluster_mode_still_checks_the_endpoint_type(context):
    context.metadata = FakeNode([BrokerInfo(1, "127.0.0.1", 9093)], controller=1)
    r = describe_cluster(context, 1, endpoint_type=2)
    assert r.error_code != 0 and r.brokers == ()


# -- the report of `kavka cluster describe` --------------------------------------------------

def _p(index, leader, replicas, isr, offline=()):
    return SimpleNamespace(partition_index=index, leader_id=leader, replica_nodes=replicas, isr_nodes=isr,
                           offline_replicas=offline)


def _t(name, *partitions, internal=False):
    return SimpleNamespace(name=name, is_internal=internal, partitions=partitions)


def test_report_classifies_partitions():
    topics = [
        _t("a", _p(0, 0, (0, 1, 2), (0, 1, 2)), _p(1, 1, (1, 2, 0), (1, 2), (0,))),
        _t("b", _p(0, -1, (0,), (0,), (0,)), _p(1, 2, (2,), (2,))),
    ]
    brokers = [(1, "h", 9093, None, False), (2, "h", 9094, "r2", False)]
    report = cli_cluster._report("cid", 2, brokers, topics)
    assert report["summary"] == {"partitions": 4, "under_replicated": 1, "offline": 1, "brokers": 2, "topics": 2}
    a, b = report["topics"]
    assert [(x["partition"], x["state"]) for x in a["problems"]] == [(1, "under-replicated")]
    assert a["replication_factor"] == 3
    assert [(x["partition"], x["state"]) for x in b["problems"]] == [(0, "offline")]
    assert report["brokers"][1] == {"id": 2, "host": "h", "port": 9094, "rack": "r2", "fenced": False}


def test_printed_report_has_brokers_controller_problems_and_summary(capsys):
    topics = [_t("a", _p(0, 0, (0, 1), (0,), (1,))), _t("ok", _p(0, 0, (0,), (0,)))]
    cli_cluster._print_report(cli_cluster._report("cid", 0, [(0, "h", 9092, None, False)], topics))
    out = capsys.readouterr().out
    assert "Controller: 0" in out and "controller" in out.splitlines()[2]
    assert "Topic a: 1 partition, replication factor 2: 1 under-replicated" in out
    assert "Topic ok: 1 partition, replication factor 1: all in sync" in out
    assert out.strip().splitlines()[-1].startswith("Summary: 1 broker, controller 0; 2 topics, 2 partitions: "
                                                   "1 under-replicated, 0 offline (DEGRADED)")


def test_cluster_up_defaults():
    args = build_parser().parse_args(["cluster", "up"])
    assert (args.brokers, args.base_port, args.data_dir) == (3, 9092, "./kavka-cluster")
    c = cli_cluster.LocalCluster("/tmp/x", 3, base_port=9092)
    assert c.bootstrap == "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094"


def test_cluster_up_broker_command(tmp_path):
    c = cli_cluster.LocalCluster(tmp_path, 2, base_port=20000, session_timeout_ms=2000,
                                 overrides=["replica.lag.time.max.ms=3000"])
    c.etcd = SimpleNamespace(endpoint="127.0.0.1:2379")
    cmd = c.broker_command(c.brokers[1])
    text = " ".join(cmd)
    assert "-m kavka serve --broker-id 1 --cluster etcd://127.0.0.1:2379" in text
    assert "--listen 127.0.0.1:20001" in text and f"--data-dir {tmp_path}/broker-1/data" in text
    assert "--session-timeout-ms 2000" in text and "--override replica.lag.time.max.ms=3000" in text


def test_cluster_up_refuses_a_port_in_use(tmp_path):
    import socket
    from kavka.cli.main import CliError
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        c = cli_cluster.LocalCluster(tmp_path, 1, base_port=port)
        with pytest.raises(CliError, match=f"cannot listen on 127.0.0.1:{port} for broker 0: "
                                           "the address is already in use"):
            c.check_ports()


def test_cluster_up_without_etcd_tells_how_to_install(tmp_path, monkeypatch):
    from kavka.cli.main import CliError
    monkeypatch.setenv("KAVKA_ETCD_BIN", str(tmp_path / "no-such-etcd"))
    c = cli_cluster.LocalCluster(tmp_path, 1, base_port=1)
    with pytest.raises(CliError, match=r"pip install 'kavka\[cluster\]'"):
        c.start_etcd()


def test_cluster_up_reuse_checks(tmp_path):
    from kavka.cli.main import CliError
    said = []
    cli_cluster._check_reuse(tmp_path, "dev", 3, said.append)  # a fresh directory: fine, remembered
    assert json.loads((tmp_path / "cluster.json").read_text()) == {"cluster_id": "dev"}
    with pytest.raises(CliError, match="holds cluster 'dev', not 'other'"):
        cli_cluster._check_reuse(tmp_path, "other", 3, said.append)
    (tmp_path / "broker-0" / "data" / "t-0").mkdir(parents=True)  # logs, but no etcd data
    with pytest.raises(CliError, match="etcd has no data but broker-0 hold topics"):
        cli_cluster._check_reuse(tmp_path, "dev", 3, said.append)
    (tmp_path / "etcd" / "member-data").mkdir(parents=True)
    (tmp_path / "broker-4").mkdir()
    cli_cluster._check_reuse(tmp_path, "dev", 3, said.append)
    assert said == [f"note: broker-4 in {tmp_path} are not started (N = 3); their replicas are missing"]
