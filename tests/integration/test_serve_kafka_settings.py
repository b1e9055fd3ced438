"""`kavka serve` with Kafka's own settings: a stock Kafka 4.0 server.properties starts and serves.

fixtures/kafka-4.0-server.properties is Apache Kafka's combined-mode (KRaft broker + controller)
sample config as 4.0 ships it in config/server.properties (in Kafka's tree it was
config/kraft/reconfig-server.properties until 4.0 made it the default file), license header
included.  kavka takes its listeners, advertised listeners, node.id and log.dirs, skips the
CONTROLLER listener (its quorum is etcd) and names the settings that mean nothing to it in one
log line.
"""

from __future__ import annotations

from pathlib import Path

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource
from test_cli_serve import free_port, run_to_exit, serve, stop, wait_listening

STOCK = Path(__file__).parent / "fixtures" / "kafka-4.0-server.properties"


def _stock_with(tmp_path: Path, port: int, controller_port: int) -> Path:
    """The stock file with only its host-specific values changed, as Homebrew's Kafka test does."""
    text = STOCK.read_text()
    for old, new in ((":9092", f":{port}"), (":9093", f":{controller_port}"),
                     ("/tmp/kraft-combined-logs", str(tmp_path / "data"))):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "server.properties"
    path.write_text(text)
    return path


def test_a_stock_kafka_4_server_properties_starts_and_serves(tmp_path):
    port, controller_port = free_port(), free_port()
    proc = serve("--config", str(_stock_with(tmp_path, port, controller_port)))
    try:
        wait_listening(port, proc)
        bootstrap = f"localhost:{port}"   # advertised.listeners=PLAINTEXT://localhost:PORT
        admin = AdminClient({"bootstrap.servers": bootstrap})
        metadata = admin.list_topics(timeout=10)
        assert list(metadata.brokers) == [1]   # node.id=1
        assert (metadata.brokers[1].host, metadata.brokers[1].port) == ("localhost", port)
        producer = Producer({"bootstrap.servers": bootstrap})
        delivered = []
        producer.produce("stock", b"hello", on_delivery=lambda err, msg: delivered.append((err, msg.offset())))
        producer.flush(10)
        assert delivered == [(None, 0)]
        resource = ConfigResource("BROKER", "1")
        configs = admin.describe_configs([resource])[resource].result(10)
        static = ConfigSource.STATIC_BROKER_CONFIG.value
        assert (configs["listeners"].value, configs["listeners"].source) == (
            f"PLAINTEXT://:{port},CONTROLLER://:{controller_port}", static)
        assert configs["advertised.listeners"].value.startswith(f"PLAINTEXT://localhost:{port},")
        assert (configs["num.io.threads"].value, configs["num.io.threads"].source) == ("8", static)
        assert (configs["log.dirs"].value, configs["node.id"].value) == (str(tmp_path / "data"), "1")
        assert configs["message.max.bytes"].source == ConfigSource.DEFAULT_CONFIG.value
    finally:
        code, err = stop(proc)
    assert code == 0, err
    assert (tmp_path / "data" / "stock-0").is_dir()   # log.dirs
    inert = [line for line in err.splitlines() if "no effect" in line]
    assert len(inert) == 1, err
    for name in ("process.roles", "controller.quorum.bootstrap.servers", "num.io.threads", "num.network.threads",
                 "socket.send.buffer.bytes", "share.coordinator.state.topic.min.isr", "inter.broker.listener.name"):
        assert name in inert[0]
    assert "unknown" not in err and "Traceback" not in err


def test_a_misspelt_setting_stops_serve_with_the_closest_name(tmp_path):
    code, err = run_to_exit("--data-dir", str(tmp_path), "--listen", f"127.0.0.1:{free_port()}",
                            "--override", "num.partitons=3")
    assert code == 2
    assert err.strip().splitlines() == [
        "kavka serve: unknown setting num.partitons (did you mean num.partitions?) "
        "(--allow-unknown starts anyway and ignores it)"]


def test_a_misspelt_setting_in_the_file_names_it_too(tmp_path):
    config = tmp_path / "server.properties"
    config.write_text("log.retention.hour=24\n")
    code, err = run_to_exit("--data-dir", str(tmp_path), "--config", str(config))
    assert code == 2
    assert "unknown setting log.retention.hour (did you mean log.retention.hours?)" in err


def test_settings_kavka_cannot_honour_yet_are_refused_clearly(tmp_path):
    listen = f"127.0.0.1:{free_port()}"
    code, err = run_to_exit("--listen", listen, "--override", f"log.dirs={tmp_path}/a,{tmp_path}/b,{tmp_path}/a")
    assert code == 1
    assert f"log.dirs: {tmp_path}/a is named twice" in err
    code, err = run_to_exit("--data-dir", str(tmp_path), "--override", "listeners=SSL://127.0.0.1:9094")
    assert code == 1
    assert "listeners: SSL://127.0.0.1:9094 uses security protocol SSL; kavka serves PLAINTEXT only" in err
    code, err = run_to_exit("--data-dir", str(tmp_path), "--override",
                            "listeners=PLAINTEXT://127.0.0.1:9094,OTHER://127.0.0.1:9095",
                            "--override", "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT")
    assert code == 1 and "exactly one PLAINTEXT listener" in err
    code, err = run_to_exit("--data-dir", str(tmp_path), "--listen", listen,
                            "--override", "node.id=1", "--override", "broker.id=2")
    assert code == 1 and "node.id (1) and broker.id (2) must be the same" in err


def test_flags_win_over_the_file(tmp_path):
    port = free_port()
    config = tmp_path / "server.properties"
    config.write_text(f"log.dirs={tmp_path}/from-file\nlisteners=PLAINTEXT://127.0.0.1:{free_port()}\n")
    proc = serve("--config", str(config), "--data-dir", str(tmp_path / "from-flag"), "--listen", f"127.0.0.1:{port}")
    wait_listening(port, proc)
    code, err = stop(proc)
    assert code == 0, err
    assert (tmp_path / "from-flag").is_dir() and not (tmp_path / "from-file").exists()
