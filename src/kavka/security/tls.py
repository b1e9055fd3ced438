"""TLS for SSL and SASL_SSL listeners: the server's ``ssl.SSLContext`` from Kafka's PEM
settings, and the client certificate's subject as Kafka's principal.

Settings (each also per listener, ``listener.name.<l>.ssl.*``): the key and chain from
``ssl.keystore.location`` (one PEM file holding the private key, encrypted with
``ssl.key.password`` or not, and the certificate chain) or inline from
``ssl.keystore.key`` + ``ssl.keystore.certificate.chain``; the CAs client certificates are
checked against from ``ssl.truststore.location`` or ``ssl.truststore.certificates``;
``ssl.client.auth`` none / requested / required; ``ssl.enabled.protocols`` within TLS 1.2 and
1.3 (older versions are refused even if named).

The principal of a client that presented a certificate is ``User:<subject DN>`` in RFC 2253
form, as Java's ``X500Principal.getName()`` writes it (last RDN first, ``CN=alice,O=Example``),
mapped by ``ssl.principal.mapping.rules`` (Kafka's ``RULE:pattern/replacement/[LU]`` items and
``DEFAULT``; the first rule whose pattern matches the whole DN wins).
"""

from __future__ import annotations

import os
import re
import ssl
import tempfile
from dataclasses import dataclass

from kavka.config import ConfigError

TLS_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
CLIENT_AUTH = {"none": ssl.CERT_NONE, "requested": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def server_context(config, listener: str) -> ssl.SSLContext:
    """The SSLContext of listener ``listener`` (kavka.config.BrokerConfig.for_listener)."""
    def setting(name):
        return config.for_listener(listener, name)

    ctx = _context(ssl.PROTOCOL_TLS_SERVER, listener, setting)
    _load_key(ctx, listener, setting)
    ctx.verify_mode = CLIENT_AUTH[setting("ssl.client.auth")]
    if setting("ssl.truststore.location"):
        ctx.load_verify_locations(cafile=setting("ssl.truststore.location"))
    elif setting("ssl.truststore.certificates"):
        ctx.load_verify_locations(cadata=setting("ssl.truststore.certificates"))
    elif ctx.verify_mode != ssl.CERT_NONE:
        raise ConfigError(f"listener {listener}: ssl.client.auth={setting('ssl.client.auth')} needs "
                          "ssl.truststore.location or ssl.truststore.certificates")
    return ctx


def client_context(config, listener: str) -> ssl.SSLContext:
    """The SSLContext this broker connects to other brokers' listener ``listener`` with, from
    that listener's own settings as Kafka's broker uses them for its client side: the
    trust store (else the system's CAs) checks the other broker's certificate, the host name
    too unless ``ssl.endpoint.identification.algorithm`` is empty, and the key store, when
    there is one, is presented for ``ssl.client.auth`` (mTLS)."""
    def setting(name):
        return config.for_listener(listener, name)

    ctx = _context(ssl.PROTOCOL_TLS_CLIENT, listener, setting)
    algorithm = (setting("ssl.endpoint.identification.algorithm") or "").lower()
    if algorithm not in ("https", ""):
        raise ConfigError(f"listener {listener}: ssl.endpoint.identification.algorithm={algorithm!r} "
                          "is not https or empty")
    ctx.check_hostname = algorithm == "https"
    try:
        if setting("ssl.truststore.location"):
            ctx.load_verify_locations(cafile=setting("ssl.truststore.location"))
        elif setting("ssl.truststore.certificates"):
            ctx.load_verify_locations(cadata=setting("ssl.truststore.certificates"))
        else:
            ctx.load_default_certs()
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"listener {listener}: cannot load the trust store: {exc}") from None
    if setting("ssl.keystore.location") or setting("ssl.keystore.key"):
        _load_key(ctx, listener, setting)
    return ctx


def _context(protocol: int, listener: str, setting) -> ssl.SSLContext:
    ctx = ssl.SSLContext(protocol)
    versions = sorted(TLS_VERSIONS[v] for v in setting("ssl.enabled.protocols") if v in TLS_VERSIONS)
    if not versions:
        raise ConfigError(f"ssl.enabled.protocols of listener {listener}: none of TLSv1.2, TLSv1.3 "
                          f"(given {', '.join(setting('ssl.enabled.protocols'))})")
    ctx.minimum_version, ctx.maximum_version = versions[0], versions[-1]
    if setting("ssl.cipher.suites"):
        ctx.set_ciphers(":".join(setting("ssl.cipher.suites")))
    return ctx


def _load_key(ctx: ssl.SSLContext, listener: str, setting) -> None:
    password = setting("ssl.key.password")
    location = setting("ssl.keystore.location")
    if location:
        _load_chain(ctx, location, password, listener)
        return
    chain, key = setting("ssl.keystore.certificate.chain"), setting("ssl.keystore.key")
    if not chain or not key:
        raise ConfigError(f"listener {listener} needs ssl.keystore.location, or ssl.keystore.certificate.chain "
                          "and ssl.keystore.key")
    # The ssl module loads keys from files only: a private file, removed at once.
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as tmp:
        os.chmod(tmp.name, 0o600)
        tmp.write(key.strip() + "\n" + chain.strip() + "\n")
    try:
        _load_chain(ctx, tmp.name, password, listener)
    finally:
        os.unlink(tmp.name)


def _load_chain(ctx: ssl.SSLContext, path: str, password: str | None, listener: str) -> None:
    try:
        ctx.load_cert_chain(path, password=password)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"listener {listener}: cannot load the key store {path}: {exc}") from None


def own_subject(config, listener: str) -> str | None:
    """The subject (RFC 2253) of the certificate listener ``listener``'s key store holds: the
    name this broker's own client certificate gives it on another broker's listener; None
    without one, or when it cannot be read."""
    location = config.for_listener(listener, "ssl.keystore.location")
    chain = config.for_listener(listener, "ssl.keystore.certificate.chain")
    path, temporary = location, False
    if not location:
        if not chain:
            return None
        with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as tmp:
            tmp.write(chain.strip() + "\n")
        path, temporary = tmp.name, True
    try:
        # The ssl module decodes a certificate file only through this (long-standing) helper;
        # it reads the first CERTIFICATE block, skipping the private key before it.
        return subject_dn(ssl._ssl._test_decode_cert(path))   # type: ignore[attr-defined]
    except (AttributeError, ssl.SSLError, OSError):
        return None
    finally:
        if temporary:
            os.unlink(path)


# -- the principal of a client certificate --------------------------------------------------

_RFC2253_KEYWORDS = {"commonName": "CN", "countryName": "C", "localityName": "L",
                     "stateOrProvinceName": "ST", "organizationName": "O", "organizationalUnitName": "OU",
                     "streetAddress": "STREET", "domainComponent": "DC", "userId": "UID"}
# Attributes Java writes as OID=#hex of their DER value (IA5String, tag 0x16).
_OID_ATTRIBUTES = {"emailAddress": "1.2.840.113549.1.9.1"}


def subject_dn(peercert: dict) -> str:
    """RFC 2253 form of the subject of ``SSLSocket.getpeercert()``: last RDN first."""
    rdns = []
    for rdn in reversed(peercert.get("subject", ())):
        rdns.append("+".join(_ava(name, value) for name, value in rdn))
    return ",".join(rdns)


def _ava(name: str, value: str) -> str:
    if name in _OID_ATTRIBUTES:
        raw = value.encode()
        return f"{_OID_ATTRIBUTES[name]}=#16{len(raw):02x}{raw.hex()}"
    return f"{_RFC2253_KEYWORDS.get(name, name)}={_escape(value)}"


def _escape(value: str) -> str:
    escaped = re.sub(r'([,+"\\<>;])', r"\\\1", value)
    if escaped.startswith(("#", " ")):
        escaped = "\\" + escaped
    if escaped.endswith(" ") and not escaped.endswith("\\ "):
        escaped = escaped[:-1] + "\\ "
    return escaped


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern | None   # None: DEFAULT
    replacement: str = ""
    case: str = ""

    def apply(self, dn: str) -> str | None:
        if self.pattern is None:
            return dn
        match = self.pattern.fullmatch(dn)
        if match is None:
            return None
        result = match.expand(self.replacement)
        return result.lower() if self.case == "L" else result.upper() if self.case == "U" else result


_RULE = re.compile(r"\s*(?:(DEFAULT)|RULE:((?:\\/|[^/])*)/((?:\\/|[^/])*)/([LU]?))\s*(?:,|$)")


class PrincipalMapper:
    """``ssl.principal.mapping.rules``: the first rule matching the DN gives the name."""

    def __init__(self, rules: str = "DEFAULT") -> None:
        self.rules: list[_Rule] = []
        pos, text = 0, rules.strip()
        while pos < len(text):
            m = _RULE.match(text, pos)
            if m is None or m.end() == pos:
                raise ConfigError(f"ssl.principal.mapping.rules: cannot parse {text[pos:]!r}")
            pos = m.end()
            if m.group(1):
                self.rules.append(_Rule(None))
            else:
                pattern = m.group(2).replace("\\/", "/")
                replacement = re.sub(r"\$(\d)", r"\\\1", m.group(3).replace("\\/", "/"))
                self.rules.append(_Rule(re.compile(pattern), replacement, m.group(4)))
        if not self.rules:
            self.rules.append(_Rule(None))

    def name(self, dn: str) -> str:
        for rule in self.rules:
            result = rule.apply(dn)
            if result is not None:
                return result
        raise ValueError(f"no rule of ssl.principal.mapping.rules matches {dn!r}")
