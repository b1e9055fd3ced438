"""Typed broker and topic configuration with Apache Kafka's names and defaults.

A setting is declared once as a :class:`ConfigKey`.  Broker settings come from a
``server.properties``-style file and ``--override NAME=VALUE``; topic settings
(``retention.ms``, ``segment.bytes``...) default to a broker setting (their
*synonym*, e.g. ``log.segment.bytes``) and may be overridden per topic.

Values are parsed from strings here and nowhere else; a bad value raises
:class:`ConfigError` naming the setting, which the CLI prints as one line and the
admin APIs map to INVALID_CONFIG.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, NamedTuple

LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1


class ConfigError(ValueError):
    """A setting has a value Kafka would reject; the message names the setting."""


# -- value types ---------------------------------------------------------------------------

def _parse_int(name: str, text: str, bits: int) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise ConfigError(f"{name}: {text!r} is not a whole number") from None
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if not low <= value <= high:
        raise ConfigError(f"{name}: {value} is outside the {bits}-bit range")
    return value


def _parse_bool(name: str, text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered not in ("true", "false"):
        raise ConfigError(f"{name}: {text!r} is not true or false")
    return lowered == "true"


def _parse_double(name: str, text: str) -> float:
    try:
        return float(str(text).strip())
    except ValueError:
        raise ConfigError(f"{name}: {text!r} is not a number") from None


def _parse_list(name: str, text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in str(text).split(",") if item.strip())


PARSERS: dict[str, Callable[[str, str], Any]] = {
    "int": lambda n, t: _parse_int(n, t, 32),
    "long": lambda n, t: _parse_int(n, t, 64),
    "short": lambda n, t: _parse_int(n, t, 16),
    "boolean": _parse_bool,
    "double": _parse_double,
    "string": lambda n, t: str(t).strip(),
    "list": _parse_list,
    "password": lambda n, t: str(t),
}

# Kafka's DescribeConfigs config_type codes.
CONFIG_TYPE_CODES = {"boolean": 1, "string": 2, "int": 3, "short": 4, "long": 5,
                     "double": 6, "list": 7, "class": 8, "password": 9}


# -- validators ----------------------------------------------------------------------------

def at_least(low: float) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if value < low:
            raise ConfigError(f"{name}: {value} is below the minimum {low}")
    return check


def between(low: float, high: float) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        if not low <= value <= high:
            raise ConfigError(f"{name}: {value} is outside [{low}, {high}]")
    return check


def one_of(*choices: str) -> Callable[[str, Any], None]:
    def check(name: str, value: Any) -> None:
        values = value if isinstance(value, tuple) else (value,)
        for item in values:
            if item not in choices:
                raise ConfigError(f"{name}: {item!r} is not one of {', '.join(choices)}")
    return check


def throttled_replicas(name: str, value: tuple[str, ...]) -> None:
    """Kafka's ThrottledReplicaListValidator: ``*`` alone, or PARTITION:BROKER items."""
    if value == ("*",):
        return
    for item in value:
        partition, sep, broker = item.partition(":")
        if not (sep and partition.isdigit() and broker.isdigit()):
            raise ConfigError(f"{name}: {item!r} is not PARTITION:BROKER (or * alone)")


def is_throttled(value: tuple[str, ...], partition: int, broker_id: int) -> bool:
    """Whether a *.replication.throttled.replicas value names this replica."""
    return value == ("*",) or f"{partition}:{broker_id}" in value


@dataclass(frozen=True)
class ConfigKey:
    name: str
    type: str
    default: Any
    doc: str = ""
    validator: Callable[[str, Any], None] | None = None
    read_only: bool = True
    sensitive: bool = False
    inert: bool = False  # accepted as Kafka spells it, but has no effect in kavka

    def parse(self, text: Any) -> Any:
        if text is None:
            return None
        if not isinstance(text, str):
            text = _render(text)
        value = PARSERS[self.type](self.name, text)
        if self.validator is not None and value is not None:
            self.validator(self.name, value)
        return value


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)


def render(value: Any) -> str | None:
    """The string form Kafka shows for a value (DescribeConfigs, properties files)."""
    return None if value is None else _render(value)


def _inert(name: str, type_: str, default: Any, doc: str) -> ConfigKey:
    return ConfigKey(name, type_, default, doc, None, True, False, True)


def _consumer_group_bounds() -> list[ConfigKey]:
    """The bounds of a consumer group's own consumer.* configs (kavka.group_configs)."""
    keys = []
    for setting, (low, high) in {"session.timeout.ms": (45000, 60000), "heartbeat.interval.ms": (5000, 15000)}.items():
        keys += [ConfigKey(f"group.consumer.min.{setting}", "int", low,
                           f"Smallest consumer.{setting} a group config may set.", at_least(1)),
                 ConfigKey(f"group.consumer.max.{setting}", "int", high,
                           f"Largest consumer.{setting} a group config may set.", at_least(1))]
    return keys


def _share_group_keys() -> list[ConfigKey]:
    """KIP-932's share-group defaults and their bounds: kavka has no share groups, but the
    share.* group configs (kavka.group_configs) default to and are bounded by these."""
    keys = []
    for setting, (default, low, high) in {"session.timeout.ms": (45000, 45000, 60000),
                                          "heartbeat.interval.ms": (5000, 5000, 15000),
                                          "record.lock.duration.ms": (30000, 15000, 60000)}.items():
        keys += [_inert(f"group.share.{setting}", "int", default, f"Share groups' default share.{setting}."),
                 _inert(f"group.share.min.{setting}", "int", low, f"Smallest share.{setting} a group may set."),
                 _inert(f"group.share.max.{setting}", "int", high, f"Largest share.{setting} a group may set.")]
    return keys


def _inert_threads(name: str, default: int, doc: str) -> ConfigKey:
    """A thread count Kafka resizes live (DynamicThreadPool, num.network.threads): dynamic here
    too, as Kafka marks it, though kavka has no such pool to resize."""
    return ConfigKey(name, "int", default, doc, at_least(1), False, False, True)


# Kafka settings that mean nothing to kavka (threads it does not have, the KRaft quorum it replaces
# with etcd, topics it does not keep yet): accepted, so a Kafka server.properties starts, and named
# in one log line saying they have no effect.
INERT_KEYS = (
    _inert("process.roles", "list", None, "KRaft roles (broker, controller); kavka is always a broker, "
           "and etcd is its controller quorum."),
    _inert("controller.quorum.voters", "list", (), "KRaft controller voters; kavka's quorum is etcd (--cluster)."),
    _inert("controller.quorum.bootstrap.servers", "list", (),
           "KRaft controller endpoints; kavka's quorum is etcd (--cluster)."),
    _inert("controller.quorum.election.timeout.ms", "int", 1000, "KRaft election timeout."),
    _inert("controller.quorum.election.backoff.max.ms", "int", 1000, "KRaft election backoff."),
    _inert("controller.quorum.fetch.timeout.ms", "int", 2000, "KRaft fetch timeout."),
    _inert("controller.quorum.append.linger.ms", "int", 25, "KRaft append linger."),
    _inert("controller.quorum.request.timeout.ms", "int", 2000, "KRaft request timeout."),
    _inert("controller.quorum.retry.backoff.ms", "int", 20, "KRaft retry backoff."),
    _inert("metadata.log.dir", "string", None, "Where KRaft keeps its metadata log; kavka keeps none."),
    _inert_threads("num.network.threads", 3, "Network threads; kavka serves every connection on one event loop."),
    _inert_threads("num.io.threads", 8, "Request threads; kavka handles requests on one event loop."),
    _inert_threads("num.replica.fetchers", 1, "Fetcher threads; kavka runs one fetch loop per leader."),
    _inert_threads("num.recovery.threads.per.data.dir", 2, "Recovery threads; kavka recovers on one thread."),
    _inert_threads("background.threads", 10, "Background threads; kavka's background work is asyncio tasks."),
    *_share_group_keys(),
    _inert("queued.max.requests", "int", 500, "Requests queued for the request threads; kavka has none "
           "(see queued.max.request.bytes)."),
    _inert("socket.send.buffer.bytes", "int", 102400, "SO_SNDBUF; kavka leaves the OS default."),
    _inert("socket.receive.buffer.bytes", "int", 102400, "SO_RCVBUF; kavka leaves the OS default."),
    _inert("socket.listen.backlog.size", "int", 50, "Listen backlog; kavka leaves asyncio's default."),
    _inert("log.flush.scheduler.interval.ms", "long", LONG_MAX, "How often the flusher checks logs; kavka's "
           "flushing is log.flush.interval.* and kavka.flush.before.ack."),
    _inert("log.flush.offset.checkpoint.interval.ms", "int", 60000,
           "How often the recovery point is checkpointed; kavka recovers from the segments."),
    _inert("log.flush.start.offset.checkpoint.interval.ms", "int", 60000,
           "How often log start offsets are checkpointed; kavka writes them when they change."),
    _inert("share.coordinator.state.topic.replication.factor", "short", 3,
           "Replicas of __share_group_state; kavka has no share groups."),
    _inert("share.coordinator.state.topic.min.isr", "short", 2, "min.insync.replicas of __share_group_state."),
)

TIMESTAMP_TYPES = ("CreateTime", "LogAppendTime")
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


def _security_keys() -> list[ConfigKey]:
    """TLS and SASL settings (kavka.security); each may be given per listener as
    ``listener.name.<listener>.<setting>`` (the SASL ones also with the mechanism:
    ``listener.name.<listener>.<mechanism>.sasl.jaas.config``)."""
    return [
        ConfigKey("ssl.keystore.type", "string", "PEM", "Format of the key store: kavka reads PEM only "
                  "(Kafka's default JKS is refused).", one_of("PEM")),
        ConfigKey("ssl.keystore.location", "string", None, "PEM file with the private key and certificate chain."),
        ConfigKey("ssl.keystore.password", "password", None, "Unused for PEM (Kafka refuses it with PEM).",
                  sensitive=True),
        ConfigKey("ssl.key.password", "password", None, "Password of the encrypted private key.", sensitive=True),
        ConfigKey("ssl.keystore.certificate.chain", "password", None, "The certificate chain, PEM, inline.",
                  sensitive=True),
        ConfigKey("ssl.keystore.key", "password", None, "The private key, PEM, inline.", sensitive=True),
        ConfigKey("ssl.truststore.type", "string", "PEM", "Format of the trust store: PEM only.", one_of("PEM")),
        ConfigKey("ssl.truststore.location", "string", None, "PEM file of the CA certificates client "
                  "certificates are checked against."),
        ConfigKey("ssl.truststore.password", "password", None, "Unused for PEM.", sensitive=True),
        ConfigKey("ssl.truststore.certificates", "password", None, "CA certificates, PEM, inline.", sensitive=True),
        ConfigKey("ssl.client.auth", "string", "none", "Client certificates: none, requested or required (mTLS).",
                  one_of("none", "requested", "required")),
        ConfigKey("ssl.enabled.protocols", "list", ("TLSv1.2", "TLSv1.3"), "TLS versions accepted (kavka: "
                  "TLSv1.2 and TLSv1.3 only).", None),
        ConfigKey("ssl.protocol", "string", "TLSv1.3", "Kafka's SSLContext protocol; kavka's range is "
                  "ssl.enabled.protocols."),
        ConfigKey("ssl.cipher.suites", "list", (), "TLS 1.2 cipher suites (OpenSSL names); empty: the defaults."),
        ConfigKey("ssl.endpoint.identification.algorithm", "string", "https", "https: a broker connecting to "
                  "another checks that its certificate names the host it connects to; empty: it does not.",
                  one_of("https", "HTTPS", "")),
        ConfigKey("ssl.principal.mapping.rules", "string", "DEFAULT", "RULE:pattern/replacement/[LU] items "
                  "(and DEFAULT) mapping a client certificate's subject to a user name."),
        ConfigKey("kavka.ssl.handshake.timeout.ms", "int", 10000, "kavka: a TLS handshake not done within this "
                  "closes the connection.", at_least(1)),
        ConfigKey("sasl.enabled.mechanisms", "list", ("GSSAPI",), "SASL mechanisms a SASL listener offers "
                  "(kavka: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER; GSSAPI is not served).", None),
        ConfigKey("sasl.mechanism.inter.broker.protocol", "string", "GSSAPI", "SASL mechanism between brokers "
                  "on a SASL inter-broker listener (kavka: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, with the username "
                  "and password of listener.name.<listener>.<mechanism>.sasl.jaas.config; GSSAPI is refused)."),
        ConfigKey("sasl.jaas.config", "password", None, "JAAS login module options; for PLAIN the users as "
                  'user_NAME="password" entries.', sensitive=True),
        ConfigKey("connections.max.reauth.ms", "long", 0, "Longest SASL session before the client must "
                  "re-authenticate (KIP-368; 0: never).", at_least(0)),
        ConfigKey("connection.failed.authentication.delay.ms", "int", 100, "Delay before a connection that "
                  "failed to authenticate is closed.", at_least(0)),
        ConfigKey("sasl.oauthbearer.jwks.endpoint.url", "string", None, "JWKS URL (http(s):// or file://) whose "
                  "keys verify OAUTHBEARER tokens; unset: Kafka's unsecured-JWT validator."),
        ConfigKey("sasl.oauthbearer.expected.audience", "list", (), "Audiences a token must name (one of)."),
        ConfigKey("sasl.oauthbearer.expected.issuer", "string", None, "The issuer a token must name."),
        ConfigKey("sasl.oauthbearer.sub.claim.name", "string", "sub", "The claim naming the principal."),
        ConfigKey("sasl.oauthbearer.scope.claim.name", "string", "scope", "The claim holding the scopes."),
        ConfigKey("sasl.oauthbearer.clock.skew.seconds", "int", 30, "Clock skew allowed on exp/iat/nbf.",
                  at_least(0)),
        ConfigKey("sasl.oauthbearer.jwks.endpoint.refresh.ms", "long", 3600000, "How often the JWKS is fetched.",
                  at_least(1)),
    ]

CLEANUP_POLICIES = ("delete", "compact")
COMPRESSION_TYPES = ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")

BROKER_KEYS: dict[str, ConfigKey] = {k.name: k for k in [
    ConfigKey("broker.id", "int", 0, "This broker's id (kavka's default is 0, Kafka's -1).", at_least(0)),
    ConfigKey("node.id", "int", None, "This broker's id, as KRaft spells it; the same as broker.id "
              "(both set: they must agree).", at_least(0)),
    ConfigKey("log.dirs", "list", None, "The log directories: the first holds the topic catalog, new "
              "partitions go to the one holding the fewest (overrides log.dir and is overridden by --data-dir; "
              "kavka's default ./kavka-data).", None),
    ConfigKey("log.dir", "string", None, "The data directory when log.dirs is not set.", None),
    ConfigKey("listeners", "list", None, "LISTENER://HOST:PORT items to accept clients on, besides any named "
              "in controller.listener.names (kavka's default PLAINTEXT://127.0.0.1:9092; --listen gives one "
              "PLAINTEXT listener).", None),
    ConfigKey("advertised.listeners", "list", None, "LISTENER://HOST:PORT clients are told to use "
              "(default: the listener's; --advertised-listener wins).", None),
    ConfigKey("listener.security.protocol.map", "list",
              ("PLAINTEXT:PLAINTEXT", "SSL:SSL", "SASL_PLAINTEXT:SASL_PLAINTEXT", "SASL_SSL:SASL_SSL"),
              "LISTENER:PROTOCOL items naming each listener's security protocol (PLAINTEXT, SSL, "
              "SASL_PLAINTEXT, SASL_SSL).",
              None),
    ConfigKey("inter.broker.listener.name", "string", None, "The listener brokers replicate and forward "
              "through (default: the first of listeners); its advertised address is the broker's registered one.",
              None),
    *_security_keys(),
    ConfigKey("controller.listener.names", "list", None, "Listeners of the KRaft controller: kavka's controller "
              "quorum is etcd (--cluster), so these listeners are not opened.", None),
    ConfigKey("num.partitions", "int", 1, "Partitions of an auto-created topic.", at_least(1)),
    ConfigKey("max.request.partition.size.limit", "int", 2000,
              "Most partitions one DescribeTopicPartitions response describes.", at_least(1)),
    ConfigKey("default.replication.factor", "short", 1, "Replicas of an auto-created topic.", at_least(1)),
    ConfigKey("auto.create.topics.enable", "boolean", True, "Create unknown topics on metadata/produce."),
    ConfigKey("delete.topic.enable", "boolean", True, "Allow DeleteTopics."),
    ConfigKey("authorizer.class.name", "string", "",
              "The ACL authorizer: Kafka's org.apache.kafka.metadata.authorizer.StandardAuthorizer (or "
              "kafka.security.authorizer.AclAuthorizer) switches ACL checks on (kavka.security.authorizer); "
              "empty: no authorization.",
              one_of("", "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                     "kafka.security.authorizer.AclAuthorizer")),
    ConfigKey("super.users", "string", "",
              "Principals allowed everything by the authorizer, separated by ';' (User:admin;User:ops)."),
    ConfigKey("allow.everyone.if.no.acl.found", "boolean", False,
              "With an authorizer: allow an operation on a resource that has no ACL at all."),
    ConfigKey("message.max.bytes", "int", 1048588, "Largest record batch accepted.", at_least(0), False),
    ConfigKey("message.max.uncompressed.bytes", "int", 67108864,
              "kavka: the most a batch's records may inflate to when the broker decompresses them "
              "(compacted-topic key check, the cleaner); a bigger batch is refused (INVALID_RECORD) "
              "or kept undecoded by the cleaner.", at_least(1), False),
    ConfigKey("socket.request.max.bytes", "int", 104857600, "Largest request frame.", at_least(1)),
    ConfigKey("max.connections", "int", INT_MAX, "Open connections allowed.", at_least(0), False),
    ConfigKey("max.connections.per.ip", "int", INT_MAX, "Open connections allowed from one address.",
              at_least(0), False),
    ConfigKey("max.connections.per.ip.overrides", "list", (),
              "HOST:COUNT items overriding max.connections.per.ip for those addresses.", None, False),
    ConfigKey("connections.max.idle.ms", "long", 600000,
              "A connection with no request in progress and no bytes moved for this long is closed "
              "(-1: never)."),
    # Kafka's default is -1 (unbounded).  kavka bounds it: 256 MiB is over twice the largest
    # frame (socket.request.max.bytes), so a maximal request never waits alone, and caps what
    # clients sending large frames at once can make the broker hold.
    ConfigKey("queued.max.request.bytes", "long", 268435456,
              "Bytes of large request frames held at once across all connections; a connection "
              "waits, unread, until its frame fits (-1: unbounded)."),
    # Not in Kafka: a frame trickling in would otherwise hold its buffer and budget for ever.
    ConfigKey("socket.request.receive.timeout.ms", "long", 60000,
              "A request frame must arrive in full within this long of its first byte, or the "
              "connection is closed (-1: never)."),
    ConfigKey("max.incremental.fetch.session.cache.slots", "int", 1000,
              "Incremental fetch sessions (KIP-227) the broker keeps; 0: none, every fetch is a full one.",
              at_least(0)),
    ConfigKey("log.segment.bytes", "int", 1073741824, "Segment size before a roll.", at_least(14), False),
    ConfigKey("log.roll.ms", "long", None, "Segment age before a roll (overrides log.roll.hours).", at_least(1), False),
    ConfigKey("log.roll.hours", "int", 168, "Segment age in hours before a roll.", at_least(1)),
    ConfigKey("log.roll.jitter.ms", "long", None, "Maximum jitter subtracted from segment.ms.", at_least(0), False),
    ConfigKey("log.roll.jitter.hours", "int", 0, "Maximum jitter in hours.", at_least(0)),
    ConfigKey("log.index.interval.bytes", "int", 4096, "Bytes between offset index entries.", at_least(0), False),
    ConfigKey("log.index.size.max.bytes", "int", 10485760, "Maximum offset index size.", at_least(4), False),
    ConfigKey("log.message.timestamp.type", "string", "CreateTime", "CreateTime or LogAppendTime.",
              one_of(*TIMESTAMP_TYPES), False),
    ConfigKey("log.message.timestamp.before.max.ms", "long", LONG_MAX,
              "How far before the broker's time a CreateTime timestamp may be.", at_least(0), False),
    ConfigKey("log.message.timestamp.after.max.ms", "long", 3600000,
              "How far after the broker's time a CreateTime timestamp may be.", at_least(0), False),
    ConfigKey("log.retention.ms", "long", None, "Retention by age (overrides minutes/hours).", None, False),
    ConfigKey("log.retention.minutes", "int", None, "Retention by age in minutes."),
    ConfigKey("log.retention.hours", "int", 168, "Retention by age in hours."),
    ConfigKey("log.retention.bytes", "long", -1, "Retention by partition size.", None, False),
    ConfigKey("log.retention.check.interval.ms", "long", 300000, "How often retention runs.", at_least(1)),
    ConfigKey("producer.id.expiration.ms", "int", 86400000,
              "How long a partition remembers an idempotent producer after its last batch "
              "(cluster-wide dynamic, KIP-854).", at_least(1), False),
    ConfigKey("producer.id.expiration.check.interval.ms", "int", 600000,
              "How often partitions forget expired producers.", at_least(1)),
    ConfigKey("log.segment.delete.delay.ms", "long", 60000, "Delay before a deleted segment's files go.",
              at_least(0), False),
    ConfigKey("log.cleanup.policy", "list", ("delete",), "delete, compact or both.",
              one_of(*CLEANUP_POLICIES), False),
    ConfigKey("log.cleaner.enable", "boolean", True, "Run the compaction cleaner."),
    ConfigKey("log.cleaner.threads", "int", 1, "Cleaner threads (kavka runs one).", at_least(0), False),
    ConfigKey("log.cleaner.backoff.ms", "long", 15000, "Sleep when no log needs cleaning.", at_least(0), False),
    ConfigKey("log.cleaner.dedupe.buffer.size", "long", 134217728, "Memory for the cleaner's offset map.",
              None, False),
    ConfigKey("log.cleaner.io.buffer.load.factor", "double", 0.9, "How full the offset map may get.",
              between(0, 1), False),
    ConfigKey("log.cleaner.delete.retention.ms", "long", 86400000, "How long tombstones stay.", at_least(0), False),
    ConfigKey("log.cleaner.min.cleanable.ratio", "double", 0.5, "Dirty ratio that triggers cleaning.",
              between(0, 1), False),
    ConfigKey("log.cleaner.min.compaction.lag.ms", "long", 0, "Minimum age before compaction.", at_least(0), False),
    ConfigKey("log.cleaner.max.compaction.lag.ms", "long", LONG_MAX, "Maximum age before compaction.",
              at_least(1), False),
    ConfigKey("log.flush.interval.messages", "long", LONG_MAX, "Messages between fsyncs.", at_least(1), False),
    ConfigKey("log.flush.interval.ms", "long", None, "Milliseconds between fsyncs.", at_least(0), False),
    ConfigKey("kavka.flush.before.ack", "boolean", False,
              "kavka only (kavka serve --durable): fsync a produce's batches before acknowledging it, "
              "group-committed across concurrent produces (kavka.log.group_commit)."),
    ConfigKey("compression.type", "string", "producer", "Codec applied by the broker.",
              one_of(*COMPRESSION_TYPES), False),
    ConfigKey("min.insync.replicas", "int", 1, "Replicas that must acknowledge acks=all.", at_least(1), False),
    ConfigKey("unclean.leader.election.enable", "boolean", False, "Allow out-of-sync leaders.", None, False),
    ConfigKey("broker.rack", "string", None, "This broker's rack, shown to clients in a cluster.", None),
    ConfigKey("controlled.shutdown.enable", "boolean", True,
              "In a cluster, a stopping broker first hands its leaderships to in-sync followers.", None),
    ConfigKey("controlled.shutdown.max.retries", "int", 3,
              "Attempts of a controlled shutdown before the broker stops anyway.", at_least(0)),
    ConfigKey("controlled.shutdown.retry.backoff.ms", "long", 5000,
              "How long each attempt of a controlled shutdown waits for the leaderships to move.", at_least(0)),
    # Partition and open-file limits (kavka; Kafka has no such settings, see kavka.log.log_manager)
    ConfigKey("max.partitions.per.request", "int", 10000,
              "Partitions one CreateTopics or CreatePartitions request may add (POLICY_VIOLATION beyond).",
              at_least(1)),
    ConfigKey("max.partitions.per.broker", "int", 50000,
              "Partitions this broker may hold in all; creation beyond is refused with POLICY_VIOLATION.",
              at_least(1)),
    ConfigKey("log.max.open.files", "int", 10000,
              "Segment files kept open at once (an LRU; at most half of RLIMIT_NOFILE is used).", at_least(16)),
    ConfigKey("internal.segment.bytes.min", "int", 1048576,
              "Smallest segment.bytes a client may set (Kafka 4.0's minimum, KIP-1030); for tests only.",
              at_least(14)),
    ConfigKey("internal.segment.ms.min", "long", 60000,
              "Smallest segment.ms a client may set (KIP-1030's minimum); for tests only.", at_least(1)),
    # Replication (cluster mode)
    ConfigKey("replica.lag.time.max.ms", "long", 30000,
              "A follower not caught up with the leader for this long leaves the ISR.", at_least(1)),
    ConfigKey("leader.replication.throttled.rate", "long", LONG_MAX,
              "Bytes per second a leader sends to the replicas partition reassignments are adding and to "
              "those leader.replication.throttled.replicas names.", at_least(0), False),
    ConfigKey("follower.replication.throttled.rate", "long", LONG_MAX,
              "Bytes per second this broker fetches for the replicas partition reassignments are adding "
              "here and those follower.replication.throttled.replicas names.", at_least(0), False),
    ConfigKey("quota.window.num", "int", 11,
              "Samples the client quotas (producer_byte_rate, consumer_byte_rate, request_percentage) "
              "measure their rate over.", at_least(1)),
    ConfigKey("quota.window.size.seconds", "int", 1, "Length of each sample of the client quotas.", at_least(1)),
    ConfigKey("controller.quota.window.num", "int", 11,
              "With controller.quota.window.size.seconds, the burst of controller_mutation_rate.", at_least(1)),
    ConfigKey("controller.quota.window.size.seconds", "int", 1,
              "Length of each sample of controller_mutation_rate.", at_least(1)),
    ConfigKey("replication.quota.window.num", "int", 11,
              "Samples the replication throttles measure their rate over.", at_least(1)),
    ConfigKey("replication.quota.window.size.seconds", "int", 1,
              "Length of each sample of the replication throttles.", at_least(1)),
    ConfigKey("replica.selector.class", "string", None,
              "Chooses a replica for a consumer to read from (KIP-392): "
              "org.apache.kafka.common.replica.RackAwareReplicaSelector points a consumer whose client.rack "
              "names another replica's rack at that replica; none: every consumer reads from the leader.",
              one_of("org.apache.kafka.common.replica.RackAwareReplicaSelector")),
    ConfigKey("auto.leader.rebalance.enable", "boolean", True,
              "The controller moves leadership back to each partition's preferred replica.", None),
    ConfigKey("leader.imbalance.check.interval.seconds", "long", 300,
              "How often the controller looks for partitions not led by their preferred replica.", at_least(1)),
    ConfigKey("offsets.commit.timeout.ms", "int", 5000,
              "How long a group write may wait for its replicas before the client is told to retry.", at_least(1)),
    ConfigKey("offsets.topic.replication.factor", "short", 3,
              "Replicas of __consumer_offsets (at most the live brokers when it is created).", at_least(1)),
    # Consumer groups (kavka.group)
    ConfigKey("group.initial.rebalance.delay.ms", "int", 3000,
              "How long a new empty group waits for more members before its first rebalance.", at_least(0)),
    ConfigKey("group.consumer.session.timeout.ms", "int", 45000,
              "Session timeout of members of consumer-protocol (KIP-848) groups.", at_least(1)),
    ConfigKey("group.consumer.heartbeat.interval.ms", "int", 5000,
              "Heartbeat interval told to members of consumer-protocol (KIP-848) groups.", at_least(1)),
    ConfigKey("group.consumer.max.size", "int", INT_MAX, "Members a consumer-protocol group may have.",
              at_least(1)),
    *_consumer_group_bounds(),
    ConfigKey("group.min.session.timeout.ms", "int", 6000, "Smallest session timeout a member may ask for.",
              at_least(0)),
    ConfigKey("group.max.session.timeout.ms", "int", 1800000, "Largest session timeout a member may ask for.",
              at_least(0)),
    ConfigKey("group.max.size", "int", INT_MAX, "Members a classic group may have.", at_least(1)),
    ConfigKey("offsets.topic.num.partitions", "int", 50, "Partitions of __consumer_offsets.", at_least(1)),
    ConfigKey("offsets.topic.segment.bytes", "int", 104857600, "Segment size of __consumer_offsets.",
              at_least(14)),
    ConfigKey("offsets.retention.minutes", "int", 10080,
              "How long committed offsets of an empty group (or a standalone commit) are kept.", at_least(1)),
    ConfigKey("offsets.retention.check.interval.ms", "long", 600000, "How often offsets are checked for expiry.",
              at_least(1)),
    ConfigKey("offset.metadata.max.bytes", "int", 4096, "Largest metadata string of a committed offset.",
              at_least(0)),
    # Transactions (kavka.txn)
    ConfigKey("transaction.state.log.num.partitions", "int", 50, "Partitions of __transaction_state.",
              at_least(1)),
    ConfigKey("transaction.state.log.segment.bytes", "int", 104857600, "Segment size of __transaction_state.",
              at_least(14)),
    ConfigKey("transaction.state.log.replication.factor", "short", 3,
              "Replicas of __transaction_state (at most the live brokers when it is created).", at_least(1)),
    ConfigKey("transaction.state.log.min.isr", "int", 2,
              "min.insync.replicas of __transaction_state: a coordinator's state write needs that many "
              "replicas in the ISR.", at_least(1)),
    ConfigKey("transaction.max.timeout.ms", "int", 900000,
              "Largest transaction.timeout.ms a producer may ask for (InitProducerId answers "
              "INVALID_TRANSACTION_TIMEOUT above it).", at_least(1)),
    ConfigKey("transactional.id.expiration.ms", "int", 604800000,
              "How long a transactional id with no open transaction is kept after its last change.", at_least(1)),
    ConfigKey("transaction.abort.timed.out.transaction.cleanup.interval.ms", "int", 10000,
              "How often transactions open longer than their timeout are looked for and aborted.", at_least(1)),
    ConfigKey("transaction.remove.expired.transaction.cleanup.interval.ms", "int", 3600000,
              "How often transactional ids past transactional.id.expiration.ms are removed.", at_least(1)),
    ConfigKey("transaction.partition.verification.enable", "boolean", True,
              "Before the first transactional batch of a producer in a partition is appended, ask the "
              "transaction coordinator whether the partition is in that producer's ongoing transaction "
              "(KIP-890), so that a late write of an ended transaction is refused.", None, False),
    *INERT_KEYS,
]}

# Topic settings: a topic override, else the broker synonym (TOPIC_SYNONYMS).
TOPIC_KEYS: dict[str, ConfigKey] = {k.name: k for k in [
    ConfigKey("cleanup.policy", "list", ("delete",),
              "delete (retention removes old segments), compact (keep the last record per key), or both.",
              one_of(*CLEANUP_POLICIES), False),
    ConfigKey("compression.type", "string", "producer",
              "Codec the broker stores batches in; producer keeps the producer's.", one_of(*COMPRESSION_TYPES), False),
    ConfigKey("delete.retention.ms", "long", 86400000,
              "How long a compacted topic keeps tombstones after cleaning.", at_least(0), False),
    ConfigKey("file.delete.delay.ms", "long", 60000,
              "Delay before a deleted segment's files are removed.", at_least(0), False),
    ConfigKey("flush.messages", "long", LONG_MAX, "Records between fsyncs of the log.", at_least(1), False),
    ConfigKey("flush.ms", "long", LONG_MAX, "Milliseconds between fsyncs of the log.", at_least(0), False),
    ConfigKey("index.interval.bytes", "int", 4096, "Bytes between offset index entries.", at_least(0), False),
    ConfigKey("max.compaction.lag.ms", "long", LONG_MAX, "Longest a record may stay uncompacted.", at_least(1), False),
    ConfigKey("max.message.bytes", "int", 1048588, "Largest record batch the topic accepts.", at_least(0), False),
    ConfigKey("max.uncompressed.message.bytes", "int", 67108864,
              "kavka: the most a batch may inflate to when the broker decompresses it.", at_least(1), False),
    ConfigKey("message.timestamp.type", "string", "CreateTime",
              "CreateTime (the producer's) or LogAppendTime (the broker's).", one_of(*TIMESTAMP_TYPES), False),
    ConfigKey("message.timestamp.before.max.ms", "long", LONG_MAX,
              "How far before the broker's time a CreateTime timestamp may be.", at_least(0), False),
    ConfigKey("message.timestamp.after.max.ms", "long", 3600000,
              "How far after the broker's time a CreateTime timestamp may be.", at_least(0), False),
    ConfigKey("min.cleanable.dirty.ratio", "double", 0.5,
              "Share of a log not yet compacted that makes it eligible for cleaning.", between(0, 1), False),
    ConfigKey("min.compaction.lag.ms", "long", 0, "Shortest time a record stays uncompacted.", at_least(0), False),
    ConfigKey("min.insync.replicas", "int", 1, "In-sync replicas an acks=all produce needs.", at_least(1), False),
    ConfigKey("retention.bytes", "long", -1,
              "Size a partition is trimmed to by deleting old segments (-1: no limit).", None, False),
    ConfigKey("retention.ms", "long", 604800000,
              "Age after which segments are deleted (-1: no limit).", at_least(-1), False),
    ConfigKey("segment.bytes", "int", 1073741824, "Segment size before a roll.", at_least(14), False),
    ConfigKey("segment.index.bytes", "int", 10485760, "Maximum size of a segment's offset index.", at_least(4), False),
    ConfigKey("segment.jitter.ms", "long", 0, "Maximum random jitter subtracted from segment.ms.", at_least(0), False),
    ConfigKey("segment.ms", "long", 604800000, "Segment age before a roll.", at_least(1), False),
    ConfigKey("unclean.leader.election.enable", "boolean", False,
              "Allow an out-of-sync replica to become leader (may lose records).", None, False),
    ConfigKey("leader.replication.throttled.replicas", "list", (),
              "PARTITION:BROKER items (or *): leaders on those brokers throttle those partitions' out-of-sync "
              "followers to leader.replication.throttled.rate (kavka also throttles every replica a "
              "reassignment adds).", throttled_replicas, False),
    ConfigKey("follower.replication.throttled.replicas", "list", (),
              "PARTITION:BROKER items (or *): those followers fetch those partitions at most at "
              "follower.replication.throttled.rate (kavka also throttles every replica a reassignment adds).",
              throttled_replicas, False),
]}

# Topic setting -> broker settings it defaults to, highest priority first, with the
# factor that turns the broker unit into the topic unit.
TOPIC_SYNONYMS: dict[str, tuple[tuple[str, int], ...]] = {
    "cleanup.policy": (("log.cleanup.policy", 1),),
    "compression.type": (("compression.type", 1),),
    "delete.retention.ms": (("log.cleaner.delete.retention.ms", 1),),
    "file.delete.delay.ms": (("log.segment.delete.delay.ms", 1),),
    "flush.messages": (("log.flush.interval.messages", 1),),
    "flush.ms": (("log.flush.interval.ms", 1),),
    "index.interval.bytes": (("log.index.interval.bytes", 1),),
    "max.compaction.lag.ms": (("log.cleaner.max.compaction.lag.ms", 1),),
    "max.message.bytes": (("message.max.bytes", 1),),
    "max.uncompressed.message.bytes": (("message.max.uncompressed.bytes", 1),),
    "message.timestamp.type": (("log.message.timestamp.type", 1),),
    "message.timestamp.before.max.ms": (("log.message.timestamp.before.max.ms", 1),),
    "message.timestamp.after.max.ms": (("log.message.timestamp.after.max.ms", 1),),
    "min.cleanable.dirty.ratio": (("log.cleaner.min.cleanable.ratio", 1),),
    "min.compaction.lag.ms": (("log.cleaner.min.compaction.lag.ms", 1),),
    "min.insync.replicas": (("min.insync.replicas", 1),),
    "retention.bytes": (("log.retention.bytes", 1),),
    "retention.ms": (("log.retention.ms", 1), ("log.retention.minutes", 60_000),
                     ("log.retention.hours", 3_600_000)),
    "segment.bytes": (("log.segment.bytes", 1),),
    "segment.index.bytes": (("log.index.size.max.bytes", 1),),
    "segment.jitter.ms": (("log.roll.jitter.ms", 1), ("log.roll.jitter.hours", 3_600_000)),
    "segment.ms": (("log.roll.ms", 1), ("log.roll.hours", 3_600_000)),
    "unclean.leader.election.enable": (("unclean.leader.election.enable", 1),),
    "leader.replication.throttled.replicas": (),
    "follower.replication.throttled.replicas": (),
}


def parse_properties(text: str) -> dict[str, str]:
    """Parse a Java-style ``.properties`` text (``#``/``!`` comments, ``=`` or ``:``)."""
    result: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        for i, ch in enumerate(line):
            if ch in "=:":
                result[line[:i].strip()] = line[i + 1:].strip()
                break
        else:
            result[line] = ""
    return result


@dataclass(frozen=True)
class ConfigSource:
    """Where a resolved value came from, with Kafka's DescribeConfigs source codes."""
    DYNAMIC_TOPIC = 1
    DYNAMIC_BROKER = 2
    DYNAMIC_DEFAULT_BROKER = 3
    STATIC_BROKER = 4
    DEFAULT = 5
    GROUP = 8


# The dynamic layers of broker settings (KIP-226), highest priority first: this broker's own
# (resource name "<id>"), then the cluster-wide default (resource name "").
PER_BROKER, CLUSTER_DEFAULT = "broker", "default"
DYNAMIC_SOURCES = {PER_BROKER: ConfigSource.DYNAMIC_BROKER, CLUSTER_DEFAULT: ConfigSource.DYNAMIC_DEFAULT_BROKER}


def dynamic_names() -> list[str]:
    """The broker settings that change while the broker runs (read_only false)."""
    return sorted(name for name, key in BROKER_KEYS.items() if not key.read_only)


def parse_dynamic(settings: Mapping[str, str]) -> dict[str, Any]:
    """Parse dynamic broker settings.  A setting that cannot change live, or is unknown,
    raises ConfigError with Kafka's message; so does a bad value."""
    static = sorted(name for name in settings if name in BROKER_KEYS and BROKER_KEYS[name].read_only)
    if static:
        raise ConfigError(f"Cannot update these configs dynamically: Set({', '.join(static)})")
    unknown = sorted(name for name in settings if name not in BROKER_KEYS)
    if unknown:
        raise ConfigError(f"Unknown broker configs: {', '.join(unknown)}")
    return {name: BROKER_KEYS[name].parse(text) for name, text in settings.items()}


@dataclass
class BrokerConfig:
    """Broker settings: explicit values (from file/overrides) over Kafka defaults."""

    explicit: dict[str, Any] = field(default_factory=dict)
    unknown: tuple[str, ...] = ()
    # listener.name.<listener>.[<mechanism>.]<setting>: raw strings, parsed on use (for_listener).
    prefixed: dict[str, str] = field(default_factory=dict)
    # Dynamic layers (PER_BROKER, CLUSTER_DEFAULT) over ``explicit``: parsed values, set by set_dynamic.
    dynamic: dict[str, dict[str, Any]] = field(default_factory=lambda: {PER_BROKER: {}, CLUSTER_DEFAULT: {}})

    @classmethod
    def from_strings(cls, settings: Mapping[str, str]) -> "BrokerConfig":
        explicit: dict[str, Any] = {}
        unknown = []
        prefixed = {}
        for name, text in settings.items():
            key = BROKER_KEYS.get(name)
            if key is None:
                base = _listener_prefixed(name)
                if base is None:
                    unknown.append(name)
                else:
                    BROKER_KEYS[base].parse(text)
                    prefixed[name] = text
                continue
            explicit[name] = key.parse(text)
        _same_id(explicit)
        return cls(explicit, tuple(unknown), prefixed)

    def inert(self) -> list[str]:
        """The settings given that have no effect in kavka, by name."""
        return sorted(name for name in self.explicit if BROKER_KEYS[name].inert)

    def data_dir(self) -> str | None:
        """The primary data directory: the first of ``log.dirs`` (else ``log.dir``), or None when
        neither is set.  It holds the topic catalog; the others hold partitions only
        (kavka.log.log_manager)."""
        dirs = self.data_dirs()
        return dirs[0] if dirs else None

    def data_dirs(self) -> list[str]:
        """Every log directory ``log.dirs`` (else ``log.dir``) names, in order; a directory named
        twice is a ConfigError."""
        dirs = self.get("log.dirs")
        if dirs is None:
            one = self.get("log.dir")
            return [one] if one else []
        seen: dict[str, str] = {}
        for d in dirs:
            if os.path.abspath(d) in seen:
                raise ConfigError(f"log.dirs: {d} is named twice ({', '.join(dirs)})")
            seen[os.path.abspath(d)] = d
        return list(dirs)

    def listeners(self, name: str = "listeners") -> "list[Listener] | None":
        """The client listeners of ``listeners`` or ``advertised.listeners`` (those of
        controller.listener.names left out), each with its security protocol from
        listener.security.protocol.map (a listener named after a protocol defaults to it), or
        None when unset."""
        items = self.get(name)
        if items is None:
            return None
        controllers = {c.upper() for c in self.get("controller.listener.names") or ()}
        protocols = {}
        for item in self.get("listener.security.protocol.map"):
            lname, sep, protocol = item.partition(":")
            if not sep or protocol.strip().upper() not in SECURITY_PROTOCOLS:
                raise ConfigError(f"listener.security.protocol.map: {item!r} is not LISTENER:PROTOCOL with a "
                                  f"protocol among {', '.join(SECURITY_PROTOCOLS)}")
            protocols[lname.strip().upper()] = protocol.strip().upper()
        served = []
        for item in items:
            lst = parse_listener(name, item)
            if lst.name in controllers:
                continue
            protocol = protocols.get(lst.name)
            if protocol is None:
                raise ConfigError(f"{name}: no security protocol for listener {lst.name} in "
                                  "listener.security.protocol.map")
            if any(other.name == lst.name for other in served):
                raise ConfigError(f"{name}: listener {lst.name} is named twice")
            served.append(lst._replace(protocol=protocol))
        if not served:
            raise ConfigError(f"{name}: no client listener (besides those in controller.listener.names)")
        return served

    def for_listener(self, listener: str, name: str, mechanism: str | None = None) -> Any:
        """Setting ``name`` as listener ``listener`` sees it: ``listener.name.<l>.<mech>.<name>``
        (with a mechanism), then ``listener.name.<l>.<name>``, then the broker-wide value."""
        prefix = f"listener.name.{listener.lower()}."
        candidates = ([prefix + mechanism.lower() + "." + name] if mechanism else []) + [prefix + name]
        for key in candidates:
            if key in self.prefixed:
                return BROKER_KEYS[name].parse(self.prefixed[key])
        return self.get(name)

    def get(self, name: str) -> Any:
        for layer in self.dynamic.values():
            if name in layer:
                return layer[name]
        if name in self.explicit:
            return self.explicit[name]
        return BROKER_KEYS[name].default

    def is_explicit(self, name: str) -> bool:
        return name in self.explicit and self.explicit[name] is not None

    def set_dynamic(self, scope: str, values: Mapping[str, Any]) -> None:
        """Replace one dynamic layer (PER_BROKER or CLUSTER_DEFAULT) with parsed values."""
        self.dynamic[scope] = dict(values)

    def layers(self, name: str) -> list[tuple[Any, int]]:
        """(value, source) of every layer that sets ``name``, highest priority first,
        the built-in default last (when it has one)."""
        found = [(layer[name], DYNAMIC_SOURCES[scope]) for scope, layer in self.dynamic.items()
                 if layer.get(name) is not None]
        if self.is_explicit(name):
            found.append((self.explicit[name], ConfigSource.STATIC_BROKER))
        if BROKER_KEYS[name].default is not None:
            found.append((BROKER_KEYS[name].default, ConfigSource.DEFAULT))
        return found

    def topic_default(self, topic_key: str) -> tuple[Any, int, str | None]:
        """(value, source, synonym) of a topic setting with no topic override: the first
        synonym set in any layer (dynamic or static) gives the value, as Kafka's merged
        broker config does."""
        for broker_name, factor in TOPIC_SYNONYMS[topic_key]:
            found = [(v, s) for v, s in self.layers(broker_name) if s != ConfigSource.DEFAULT]
            if found:
                return _scale(found[0][0], factor), found[0][1], broker_name
        for broker_name, factor in TOPIC_SYNONYMS[topic_key]:
            default = BROKER_KEYS[broker_name].default
            if default is not None:
                return _scale(default, factor), ConfigSource.DEFAULT, broker_name
        return TOPIC_KEYS[topic_key].default, ConfigSource.DEFAULT, None

    def topic_config(self, overrides: Mapping[str, Any] | None = None) -> "TopicConfig":
        values = {name: self.topic_default(name)[0] for name in TOPIC_KEYS}
        values.update(overrides or {})
        return TopicConfig(values, dict(overrides or {}))


def _same_id(explicit: dict[str, Any]) -> None:
    """node.id and broker.id name one id: either gives both, and they must agree."""
    node_id, broker_id = explicit.get("node.id"), explicit.get("broker.id")
    if node_id is not None and broker_id is not None and node_id != broker_id:
        raise ConfigError(f"node.id ({node_id}) and broker.id ({broker_id}) must be the same if both are set")
    if node_id is not None:
        explicit["broker.id"] = node_id


def _listener_prefixed(name: str) -> str | None:
    """The broker setting a ``listener.name.<l>.[<mechanism>.]<setting>`` name overrides, or None."""
    if not name.startswith("listener.name."):
        return None
    rest = name[len("listener.name."):].partition(".")[2]
    for candidate in (rest, rest.partition(".")[2]):
        if candidate in BROKER_KEYS:
            return candidate
    return None


class Listener(NamedTuple):
    """One ``NAME://HOST:PORT`` item of ``listeners``; an empty host means every interface."""
    name: str
    host: str
    port: int
    protocol: str = "PLAINTEXT"


def parse_listener(setting: str, text: str) -> Listener:
    name, sep, address = text.partition("://")
    host, colon, port = address.rpartition(":")
    if not sep or not name or not colon or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"{setting}: {text!r} is not LISTENER_NAME://HOST:PORT (e.g. PLAINTEXT://:9092)")
    return Listener(name.upper(), host.strip("[]"), int(port))


def closest_name(name: str) -> str | None:
    """The known broker setting nearest to a misspelt one, if any is near."""
    matches = difflib.get_close_matches(name, list(BROKER_KEYS), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _scale(value: Any, factor: int) -> Any:
    return value * factor if factor != 1 and isinstance(value, int) else value


def validate_topic_overrides(settings: Mapping[str, str | None]) -> dict[str, Any]:
    """Parse per-topic overrides; unknown names and bad values raise ConfigError."""
    parsed: dict[str, Any] = {}
    for name, text in settings.items():
        key = TOPIC_KEYS.get(name)
        if key is None:
            raise ConfigError(f"{name}: unknown topic config")
        if text is None:
            raise ConfigError(f"{name}: a value is required")
        parsed[name] = key.parse(text)
    return parsed


@dataclass(frozen=True)
class TopicConfig:
    """Resolved settings of one topic: every topic key has a typed value."""

    values: Mapping[str, Any]
    overrides: Mapping[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    # Convenience accessors used on hot paths.
    @property
    def segment_bytes(self) -> int:
        return self.values["segment.bytes"]

    @property
    def segment_ms(self) -> int:
        return self.values["segment.ms"]

    @property
    def index_interval_bytes(self) -> int:
        return self.values["index.interval.bytes"]

    @property
    def max_message_bytes(self) -> int:
        return self.values["max.message.bytes"]

    @property
    def max_uncompressed_bytes(self) -> int:
        return self.values["max.uncompressed.message.bytes"]

    @property
    def log_append_time(self) -> bool:
        return self.values["message.timestamp.type"] == "LogAppendTime"

    @property
    def compacted(self) -> bool:
        return "compact" in self.values["cleanup.policy"]

