"""config.py reads Kafka's broker settings as Kafka spells them: ids, data dirs, listeners, inert names."""

from __future__ import annotations

import pytest

from kavka.config import BROKER_KEYS, BrokerConfig, ConfigError, Listener, closest_name


def config(**settings: str) -> BrokerConfig:
    return BrokerConfig.from_strings({name.replace("_", "."): value for name, value in settings.items()})


def test_node_id_is_broker_id():
    assert config(node_id="4").get("broker.id") == 4
    assert config(node_id="4", broker_id="4").get("broker.id") == 4
    with pytest.raises(ConfigError, match="must be the same"):
        config(node_id="4", broker_id="5")


def test_data_dir_from_log_dirs_then_log_dir():
    assert config().data_dir() is None
    assert config(log_dir="/d1").data_dir() == "/d1"
    assert config(log_dir="/d1", log_dirs="/d2").data_dir() == "/d2"
    assert config(log_dirs="/a, /b").data_dirs() == ["/a", "/b"]
    assert config(log_dirs="/a, /b").data_dir() == "/a"
    assert config(log_dir="/d1").data_dirs() == ["/d1"] and config().data_dirs() == []
    with pytest.raises(ConfigError, match="log.dirs: /a/ is named twice"):
        config(log_dirs="/a,/b,/a/").data_dirs()


def test_the_client_listeners_skip_controller_listeners():
    c = BrokerConfig.from_strings({"listeners": "PLAINTEXT://:9092,CONTROLLER://:9093",
                                   "controller.listener.names": "CONTROLLER",
                                   "advertised.listeners": "PLAINTEXT://[::1]:9092"})
    assert c.listeners("listeners") == [Listener("PLAINTEXT", "", 9092)]
    assert c.listeners("advertised.listeners") == [Listener("PLAINTEXT", "::1", 9092)]
    assert config().listeners("listeners") is None


def test_several_listeners_with_their_protocols():
    c = BrokerConfig.from_strings({
        "listeners": "PLAINTEXT://:9092,SSL://:9093,CLIENTS://127.0.0.1:9094,SASL_SSL://:9095",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,CLIENTS:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"})
    assert c.listeners() == [Listener("PLAINTEXT", "", 9092, "PLAINTEXT"), Listener("SSL", "", 9093, "SSL"),
                             Listener("CLIENTS", "127.0.0.1", 9094, "SASL_PLAINTEXT"),
                             Listener("SASL_SSL", "", 9095, "SASL_SSL")]


def test_listener_prefixed_settings_override_the_broker_wide_ones():
    c = BrokerConfig.from_strings({"ssl.client.auth": "requested",
                                   "listener.name.internal.ssl.client.auth": "required",
                                   "listener.name.clients.plain.sasl.jaas.config": "x required;"})
    assert c.for_listener("INTERNAL", "ssl.client.auth") == "required"
    assert c.for_listener("OTHER", "ssl.client.auth") == "requested"
    assert c.for_listener("CLIENTS", "sasl.jaas.config", "PLAIN") == "x required;"
    assert c.for_listener("CLIENTS", "sasl.jaas.config", "SCRAM-SHA-256") is None
    assert not c.unknown
    with pytest.raises(ConfigError, match="ssl.client.auth"):
        BrokerConfig.from_strings({"listener.name.x.ssl.client.auth": "sometimes"})


@pytest.mark.parametrize("text, problem", [
    ("CLIENTS://:9092", "no security protocol for listener CLIENTS"),
    ("PLAINTEXT://:9092,PLAINTEXT://:9093", "listener PLAINTEXT is named twice"),
    ("localhost:9092", "is not LISTENER_NAME://HOST:PORT"),
    ("PLAINTEXT://host:port", "is not LISTENER_NAME://HOST:PORT"),
])
def test_listeners_kavka_cannot_serve_are_refused(text, problem):
    with pytest.raises(ConfigError, match=problem):
        config(listeners=text).listeners("listeners")


def test_inert_settings_are_typed_and_named():
    c = config(num_io_threads="8", num_partitions="3", process_roles="broker,controller")
    assert c.inert() == ["num.io.threads", "process.roles"]
    assert c.get("process.roles") == ("broker", "controller")
    with pytest.raises(ConfigError, match="num.io.threads"):
        config(num_io_threads="eight")
    assert all(BROKER_KEYS[name].doc for name in c.inert())


def test_closest_name_of_a_misspelling():
    assert closest_name("num.partitons") == "num.partitions"
    assert closest_name("advertised.listener") == "advertised.listeners"
    assert closest_name("zookeeper.connect") is None
