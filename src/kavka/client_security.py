"""The security of the CLI's own connections: Kafka's client properties (``--command-config``).

Kafka's tools read a properties file of client settings; this module reads the same keys:
``security.protocol`` (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL), ``sasl.mechanism`` (PLAIN,
SCRAM-SHA-256, SCRAM-SHA-512) with ``sasl.username``/``sasl.password`` or ``sasl.jaas.config``,
OAUTHBEARER with Kafka's unsecured login (``sasl.jaas.config`` of OAuthBearerLoginModule with
``unsecuredLoginStringClaim_sub="NAME"`` etc.; ``unsecuredLoginExtension_NAME`` options are sent
as SASL extensions) or a static token read from the file that
``sasl.oauthbearer.token.endpoint.url=file:///PATH`` names (as Kafka's OAuthBearerLoginCallbackHandler
reads one; an http(s) token endpoint is not supported here),
and the TLS keys (``ssl.truststore.location`` or ``ssl.ca.location``: PEM; for mTLS
``ssl.keystore.location`` + ``ssl.key.password`` or ``ssl.certificate.location`` +
``ssl.key.location``; ``ssl.endpoint.identification.algorithm``, ``https`` by default as in
Kafka, empty to skip the host name check).  Keys it does not know are ignored, as Kafka's tools
only warn about them.  A bad value raises :class:`ClientConfigError` naming the key.

:class:`ClientSecurity` then secures one blocking socket (TLS 1.2+ with ``ssl``) and runs the
SASL exchange through a client's request function (SaslHandshake v1, SaslAuthenticate v2); it
imports no client, so :mod:`kavka.client` may import it.  A broker's connections to the other
brokers use the same class (:meth:`ClientSecurity.inter_broker`, built from the inter-broker
listener's settings) and the same exchange (:meth:`ClientSecurity.sasl_steps`).
"""

from __future__ import annotations

import re
import ssl
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable

from kavka.config import ConfigError
from kavka.security.sasl import AuthenticationFailed
from kavka.security.sasl.jaas import parse_jaas
from kavka.security.sasl.oauthbearer import client_first_message, unsecured_login_token
from kavka.security.sasl.scram import MECHANISMS, ScramClient

Request = Callable[[Any], Any]  # a kio request object -> its decoded response

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", *MECHANISMS, "OAUTHBEARER")
EXTENSION = "unsecuredLoginExtension_"
SASL_HANDSHAKE, SASL_AUTHENTICATE = 17, 36


class ClientConfigError(Exception):
    """A client property is missing or wrong (the message names it)."""


class SaslFailed(Exception):
    """The broker refused the SASL exchange (the message is Kafka's error name and text)."""


def read_properties(path: str) -> dict[str, str]:
    """A Java properties file: ``key=value`` or ``key: value`` lines, ``#``/``!`` comments,
    a trailing backslash continuing the line."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise ClientConfigError(f"--command-config {path}: {exc.strerror or exc}") from None
    props: dict[str, str] = {}
    for line in re.sub(r"\\\n\s*", "", text).splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        m = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)", line)
        if m is None:
            raise ClientConfigError(f"--command-config {path}: cannot read the line {line[:40]!r}")
        props[m.group(1)] = m.group(2).strip()
    return props


@dataclass(frozen=True)
class ClientSecurity:
    protocol: str = "PLAINTEXT"
    ssl_context: ssl.SSLContext | None = None
    check_hostname: bool = True
    mechanism: str | None = None
    username: str = ""
    password: str = ""
    oauth_options: tuple[tuple[str, str], ...] = ()   # OAUTHBEARER's unsecured login options
    token_file: str | None = None                     # or the file holding a static token

    @classmethod
    def load(cls, path: str) -> "ClientSecurity":
        return cls.from_properties(read_properties(path))

    @classmethod
    def from_properties(cls, props: dict[str, str]) -> "ClientSecurity":
        protocol = props.get("security.protocol", "PLAINTEXT").upper()
        if protocol not in PROTOCOLS:
            raise ClientConfigError(f"security.protocol: {protocol!r} is not one of {', '.join(PROTOCOLS)}")
        algorithm = props.get("ssl.endpoint.identification.algorithm", "https")
        if algorithm.lower() not in ("https", ""):
            raise ClientConfigError(f"ssl.endpoint.identification.algorithm: {algorithm!r} is not https or empty")
        context = _ssl_context(props, algorithm != "") if protocol.endswith("SSL") else None
        if not protocol.startswith("SASL_"):
            return cls(protocol, context, algorithm != "")
        if props.get("sasl.mechanism", "").upper() == "OAUTHBEARER":
            options, token_file = _oauth(props)
            return cls(protocol, context, algorithm != "", "OAUTHBEARER", oauth_options=options,
                       token_file=token_file)
        mechanism, username, password = _sasl(props)
        return cls(protocol, context, algorithm != "", mechanism, username, password)

    def wrap(self, sock, host: str):
        """The socket, under TLS when the protocol says so (the handshake done)."""
        if self.ssl_context is None:
            return sock
        return self.ssl_context.wrap_socket(sock, server_hostname=host if self.check_hostname else None)

    def authenticate(self, request: Request) -> None:
        """The SASL exchange on a fresh connection; SaslFailed if the broker refuses."""
        steps = self.sasl_steps()
        try:
            step = next(steps)
            while True:
                step = steps.send(request(step))
        except StopIteration:
            return

    def sasl_steps(self):
        """The SASL exchange as a generator, whatever does the I/O (this blocking client, or a
        broker's asyncio connection to another, kavka.replication.peer): it yields each kio
        request and is sent its decoded response; SaslFailed if the broker refuses."""
        if self.mechanism is None:
            return
        from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
        from kio.schema.sasl_handshake.v1.request import SaslHandshakeRequest
        response = yield SaslHandshakeRequest(mechanism=self.mechanism)
        if response.error_code:
            raise SaslFailed(f"{_error_name(response.error_code)}: the broker offers "
                             f"{', '.join(response.mechanisms) or 'no mechanism'}, not {self.mechanism}")

        def step(answer) -> bytes:
            if answer.error_code:
                raise SaslFailed(f"{_error_name(answer.error_code)}: {answer.error_message or 'refused'}")
            return answer.auth_bytes

        if self.mechanism == "PLAIN":
            step((yield SaslAuthenticateRequest(auth_bytes=f"\0{self.username}\0{self.password}".encode())))
            return
        if self.mechanism == "OAUTHBEARER":
            yield from self._bearer_steps(step)
            return
        scram = ScramClient(self.mechanism, self.username, self.password)
        try:
            server_first = step((yield SaslAuthenticateRequest(auth_bytes=scram.first())))
            server_final = step((yield SaslAuthenticateRequest(auth_bytes=scram.final(server_first))))
            scram.verify(server_final)
        except AuthenticationFailed as exc:
            raise SaslFailed(f"{self.mechanism}: {exc}") from None

    @classmethod
    def inter_broker(cls, config, listener: str, protocol: str) -> "ClientSecurity":
        """How this broker connects to the others' listener ``listener`` (its
        ``inter.broker.listener.name``), as Kafka's broker does for its own client side: TLS
        from that listener's settings (kavka.security.tls.client_context), SASL with
        ``sasl.mechanism.inter.broker.protocol`` and the ``username``/``password`` of
        ``listener.name.<listener>.<mechanism>.sasl.jaas.config``.  ConfigError names what
        is missing or not supported."""
        from kavka.security.tls import client_context
        context = client_context(config, listener) if protocol in ("SSL", "SASL_SSL") else None
        check_hostname = context is not None and context.check_hostname
        if not protocol.startswith("SASL_"):
            return cls(protocol, context, check_hostname)
        mechanism = (config.get("sasl.mechanism.inter.broker.protocol") or "").upper()
        between_brokers = ("PLAIN", *MECHANISMS)   # no GSSAPI, no OAUTHBEARER login of a broker
        if mechanism not in between_brokers:
            raise ConfigError(f"sasl.mechanism.inter.broker.protocol: {mechanism or 'unset'} is not supported "
                              f"between kavka brokers (GSSAPI is Kafka's default; set one of "
                              f"{', '.join(between_brokers)})")
        enabled = [m.upper() for m in config.for_listener(listener, "sasl.enabled.mechanisms")]
        if mechanism not in enabled:
            raise ConfigError(f"sasl.mechanism.inter.broker.protocol: {mechanism} must be one of the "
                              f"sasl.enabled.mechanisms of the inter-broker listener {listener} "
                              f"({', '.join(enabled) or 'none'})")
        key = f"listener.name.{listener.lower()}.{mechanism.lower()}.sasl.jaas.config"
        text = config.for_listener(listener, "sasl.jaas.config", mechanism)
        options = parse_jaas(text) if text else {}
        if not options.get("username") or options.get("password") is None:
            raise ConfigError(f"{key}: the inter-broker listener {listener} uses {mechanism} but its JAAS config "
                              'has no username="..." password="..." for this broker to authenticate with')
        return cls(protocol, context, check_hostname, mechanism, options["username"], options["password"])

    def _bearer_steps(self, step):
        """OAUTHBEARER's part of :meth:`sasl_steps` (``step`` checks a SaslAuthenticate answer)."""
        from kio.schema.sasl_authenticate.v2.request import SaslAuthenticateRequest
        options = dict(self.oauth_options)
        if self.token_file is not None:
            try:
                with open(self.token_file, encoding="utf-8") as f:
                    token = f.read().strip()
            except OSError as exc:
                raise SaslFailed(f"OAUTHBEARER: cannot read the token file {self.token_file}: "
                                 f"{exc.strerror or exc}") from None
        else:
            token = unsecured_login_token(options, time.time())
        extensions = {k[len(EXTENSION):]: v for k, v in options.items() if k.startswith(EXTENSION)}
        challenge = step((yield SaslAuthenticateRequest(auth_bytes=client_first_message(token, extensions))))
        if challenge:   # the broker's error challenge: RFC 7628 has the client end it with %x01
            step((yield SaslAuthenticateRequest(auth_bytes=b"\x01")))
            raise SaslFailed(f"OAUTHBEARER: the broker refused the token: {challenge.decode('utf-8', 'replace')}")


def _oauth(props: dict[str, str]) -> tuple[tuple[tuple[str, str], ...], str | None]:
    """OAUTHBEARER's settings: (the unsecured login options, None) or ((), the static token's file)."""
    url = props.get("sasl.oauthbearer.token.endpoint.url")
    if url:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme != "file":
            raise ClientConfigError(f"sasl.oauthbearer.token.endpoint.url: only a file: URL (a file holding "
                                    f"the token) is supported here, not {url!r}")
        return (), urllib.parse.unquote(parsed.path)
    if "sasl.jaas.config" not in props:
        raise ClientConfigError("sasl.jaas.config: OAUTHBEARER needs OAuthBearerLoginModule with "
                                "unsecuredLoginStringClaim_sub=\"NAME\" (or sasl.oauthbearer.token.endpoint.url)")
    try:
        options = parse_jaas(props["sasl.jaas.config"])
        unsecured_login_token(options, time.time())      # the options are checked now, not per connection
    except (ConfigError, ValueError) as exc:
        raise ClientConfigError(f"sasl.jaas.config: {exc}".replace("sasl.jaas.config: sasl.jaas.config",
                                                                   "sasl.jaas.config")) from None
    return tuple(options.items()), None


def _error_name(code: int) -> str:
    from kio.schema.errors import ErrorCode
    try:
        return ErrorCode(int(code)).name.upper()
    except ValueError:
        return f"ERROR_{int(code)}"


def _sasl(props: dict[str, str]) -> tuple[str, str, str]:
    mechanism = props.get("sasl.mechanism", "GSSAPI").upper()
    if mechanism not in SASL_MECHANISMS:
        raise ClientConfigError(f"sasl.mechanism: {mechanism!r} is not supported here "
                                f"({', '.join(SASL_MECHANISMS)})")
    username, password = props.get("sasl.username"), props.get("sasl.password")
    if "sasl.jaas.config" in props:
        try:
            options = parse_jaas(props["sasl.jaas.config"])
        except ConfigError as exc:
            raise ClientConfigError(str(exc)) from None
        username, password = options.get("username", username), options.get("password", password)
    if not username:
        raise ClientConfigError("sasl.jaas.config: no username (or set sasl.username)")
    if password is None:
        raise ClientConfigError("sasl.jaas.config: no password (or set sasl.password)")
    return mechanism, username, password


def _ssl_context(props: dict[str, str], check_hostname: bool) -> ssl.SSLContext:
    for key in ("ssl.truststore.type", "ssl.keystore.type"):
        if props.get(key, "PEM").upper() != "PEM":
            raise ClientConfigError(f"{key}: only PEM files are supported, not {props[key]!r}")
    ca = props.get("ssl.truststore.location") or props.get("ssl.ca.location")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = check_hostname
    try:
        ctx.load_verify_locations(cafile=ca) if ca else ctx.load_default_certs()
    except (OSError, ssl.SSLError) as exc:
        key = "ssl.truststore.location" if "ssl.truststore.location" in props else "ssl.ca.location"
        raise ClientConfigError(f"{key}: cannot load {ca}: {getattr(exc, 'strerror', None) or exc}") from None
    _load_client_certificate(ctx, props)
    return ctx


def _load_client_certificate(ctx: ssl.SSLContext, props: dict[str, str]) -> None:
    password = props.get("ssl.key.password") or props.get("ssl.keystore.password") or None
    if "ssl.keystore.location" in props:
        key, certfile, keyfile = "ssl.keystore.location", props["ssl.keystore.location"], None
    elif "ssl.certificate.location" in props:
        key, certfile, keyfile = "ssl.certificate.location", props["ssl.certificate.location"], \
            props.get("ssl.key.location")
    else:
        return
    try:
        ctx.load_cert_chain(certfile, keyfile, password=password)
    except (OSError, ssl.SSLError) as exc:
        raise ClientConfigError(f"{key}: cannot load the certificate and key from {certfile} "
                                f"(or ssl.key.password is wrong): {getattr(exc, 'strerror', None) or exc}") from None
