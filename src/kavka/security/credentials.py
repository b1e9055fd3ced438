"""The broker's SCRAM credentials: user -> mechanism -> salted credential, in
``<data dir>/__kavka_meta/__scram_credentials.json`` (written atomically: a temporary file renamed over it).

Only salts, StoredKeys and ServerKeys are stored (base64), never a password;
AlterUserScramCredentials writes here, DescribeUserScramCredentials and the SCRAM
mechanism read from here.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from kavka.log.checkpoint import write_atomically
from kavka.security.sasl.scram import ScramCredential

FILE_NAME = "__scram_credentials.json"


class ScramCredentials:
    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / FILE_NAME
        self._users: dict[str, dict[str, ScramCredential]] = {}
        if self.path.exists():
            self._users = _decode(json.loads(self.path.read_text()))

    def get(self, user: str, mechanism: str) -> ScramCredential | None:
        return self._users.get(user, {}).get(mechanism)

    def users(self) -> dict[str, dict[str, ScramCredential]]:
        return {u: dict(m) for u, m in self._users.items()}

    def apply(self, upserts: list[tuple[str, str, ScramCredential]], deletions: list[tuple[str, str]]) -> None:
        """Upsert and delete (user, mechanism) credentials in one durable write."""
        for user, mechanism in deletions:
            mechs = self._users.get(user, {})
            mechs.pop(mechanism, None)
            if not mechs:
                self._users.pop(user, None)
        for user, mechanism, credential in upserts:
            self._users.setdefault(user, {})[mechanism] = credential
        self._write()

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, json.dumps(_encode(self._users), sort_keys=True))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _encode(users) -> dict:
    return {"v": 1, "users": {u: {m: {"salt": _b64(c.salt), "stored_key": _b64(c.stored_key),
                                        "server_key": _b64(c.server_key), "iterations": c.iterations}
                                    for m, c in mechs.items()} for u, mechs in users.items()}}


def _decode(obj: dict) -> dict[str, dict[str, ScramCredential]]:
    return {u: {m: ScramCredential(base64.b64decode(c["salt"]), base64.b64decode(c["stored_key"]),
                                   base64.b64decode(c["server_key"]), int(c["iterations"]))
                for m, c in mechs.items()} for u, mechs in obj.get("users", {}).items()}
