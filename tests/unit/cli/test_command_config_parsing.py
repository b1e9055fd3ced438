"""``--command-config``: the properties file, the keys it reads and the one-line errors that
name a bad key; and that every client command takes the option."""

from __future__ import annotations

import argparse
import ssl

import pytest

from kavka.cli.main import build_parser
from kavka.client_security import ClientConfigError, ClientSecurity, read_properties


def test_properties_file_syntax(tmp_path):
    path = tmp_path / "client.properties"
    path.write_text("# comment\n! also a comment\n\nsecurity.protocol = SASL_PLAINTEXT\n"
                    "sasl.mechanism: SCRAM-SHA-256\nsasl.jaas.config=org.apache.kafka.common.security.scram."
                    "ScramLoginModule required \\\n    username=\"carol\" password=\"c=a;r\";\n")
    props = read_properties(str(path))
    assert props["security.protocol"] == "SASL_PLAINTEXT" and props["sasl.mechanism"] == "SCRAM-SHA-256"
    security = ClientSecurity.from_properties(props)
    assert (security.protocol, security.mechanism, security.username, security.password) == (
        "SASL_PLAINTEXT", "SCRAM-SHA-256", "carol", "c=a;r")
    assert security.ssl_context is None


def test_defaults_and_tls_settings():
    assert ClientSecurity.from_properties({}).protocol == "PLAINTEXT"
    security = ClientSecurity.from_properties({"security.protocol": "ssl",
                                               "ssl.endpoint.identification.algorithm": ""})
    assert security.protocol == "SSL" and security.mechanism is None and not security.check_hostname
    assert security.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ClientSecurity.from_properties({"security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
                                           "sasl.username": "u", "sasl.password": ""}).check_hostname


@pytest.mark.parametrize("props, key", [
    ({"security.protocol": "TLS"}, "security.protocol"),
    ({"security.protocol": "SASL_PLAINTEXT"}, "sasl.mechanism"),  # Kafka's default GSSAPI
    ({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN"}, "username"),
    ({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.username": "u"}, "password"),
    ({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.jaas.config": "x"},
     "sasl.jaas.config"),
    ({"security.protocol": "SSL", "ssl.endpoint.identification.algorithm": "ldap"},
     "ssl.endpoint.identification.algorithm"),
    ({"security.protocol": "SSL", "ssl.truststore.type": "PKCS12"}, "ssl.truststore.type"),
    ({"security.protocol": "SSL", "ssl.ca.location": "/nonexistent/ca.pem"}, "ssl.ca.location"),
    ({"security.protocol": "SSL", "ssl.keystore.location": "/nonexistent/ks.pem"}, "ssl.keystore.location"),
])
def test_bad_values_name_the_key(props, key):
    with pytest.raises(ClientConfigError, match=key.replace(".", r"\.")) as caught:
        ClientSecurity.from_properties(props)
    assert "\n" not in str(caught.value)


def _client_commands(parser):
    """(command path, parser) of every sub-command that takes --bootstrap-server."""
    stack = [((), parser)]
    while stack:
        path, p = stack.pop()
        options = {o for action in p._actions for o in action.option_strings}
        if "--bootstrap-server" in options:
            yield " ".join(path), options
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(((*path, name), child) for name, child in action.choices.items())


def test_every_client_command_takes_command_config():
    commands = dict(_client_commands(build_parser()))
    assert {"topics list", "users add", "acls list", "consume", "produce", "cluster describe"} <= set(commands)
    assert [name for name, options in commands.items() if "--command-config" not in options] == []
