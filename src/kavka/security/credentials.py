"""The broker's SCRAM credentials as data: user -> mechanism -> salted credential.

Only salts, StoredKeys, ServerKeys and iteration counts are kept (base64 in the stored forms),
never a password.  :class:`ScramCredentialSet` is what the metadata boundary stores and every
SCRAM login and DescribeUserScramCredentials reads (kavka.metadata): a lone broker keeps it in
``<data dir>/__kavka_meta/__scram_credentials.json`` (:meth:`ScramCredentialSet.encode`, the
file replaced atomically), a cluster one etcd key per (user, mechanism) whose value is
:func:`encode_credential` (kavka.cluster.keys), folded into every broker's view.  Pure: no I/O.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from kavka.security.sasl.scram import ScramCredential

FILE_NAME = "__scram_credentials.json"

Upsert = tuple[str, str, ScramCredential]   # (user, mechanism, credential)
Deletion = tuple[str, str]                  # (user, mechanism)


@dataclass(frozen=True)
class ScramCredentialSet:
    """``loaded`` False: not known yet (a cluster broker before its first etcd snapshot);
    no user is, so every SCRAM login fails until it is."""

    entries: Mapping[tuple[str, str], ScramCredential] = field(default_factory=dict)
    loaded: bool = True

    def get(self, user: str, mechanism: str) -> ScramCredential | None:
        return self.entries.get((user, mechanism))

    def users(self) -> dict[str, dict[str, ScramCredential]]:
        out: dict[str, dict[str, ScramCredential]] = {}
        for (user, mechanism), credential in self.entries.items():
            out.setdefault(user, {})[mechanism] = credential
        return out

    def altered(self, upserts: Iterable[Upsert], deletions: Iterable[Deletion]) -> "ScramCredentialSet":
        """Deletions first, then upserts (AlterUserScramCredentials refuses a request naming
        one (user, mechanism) twice, so the order only matters to a caller that does)."""
        entries = dict(self.entries)
        for user, mechanism in deletions:
            entries.pop((user, mechanism), None)
        for user, mechanism, credential in upserts:
            entries[(user, mechanism)] = credential
        return ScramCredentialSet(entries)

    def encode(self) -> str:
        """The lone broker's file: ``{"v": 1, "users": {user: {mechanism: credential}}}``."""
        return json.dumps({"v": 1, "users": {u: {m: _obj(c) for m, c in mechs.items()}
                                             for u, mechs in self.users().items()}}, sort_keys=True)

    @classmethod
    def decode(cls, text: str) -> "ScramCredentialSet":
        obj = json.loads(text)
        return cls({(u, m): _credential(c) for u, mechs in obj.get("users", {}).items() for m, c in mechs.items()})


def encode_credential(mechanism: str, credential: ScramCredential) -> bytes:
    """One etcd value: the mechanism and the salted credential (no password)."""
    return json.dumps({"mechanism": mechanism, **_obj(credential)}, sort_keys=True).encode()


def decode_credential(raw: bytes | str, mechanism: str) -> ScramCredential:
    """The credential of an etcd value whose key names ``mechanism``; ValueError if unreadable
    or it names another mechanism."""
    try:
        obj = json.loads(raw)
        if obj.get("mechanism", mechanism) != mechanism:
            raise ValueError(f"value of mechanism {obj['mechanism']!r} under a {mechanism} key")
        return _credential(obj)
    except (KeyError, TypeError, AttributeError) as exc:   # (bad JSON, base64: ValueErrors already)
        raise ValueError(f"SCRAM credential: {exc!r}") from exc


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _obj(c: ScramCredential) -> dict:
    return {"salt": _b64(c.salt), "stored_key": _b64(c.stored_key), "server_key": _b64(c.server_key),
            "iterations": c.iterations}


def _credential(c: dict) -> ScramCredential:
    return ScramCredential(base64.b64decode(c["salt"], validate=True), base64.b64decode(c["stored_key"], validate=True),
                           base64.b64decode(c["server_key"], validate=True), int(c["iterations"]))
