"""The dynamic broker settings (KIP-226) of a data directory: ``__kavka_meta/broker-configs.json``,
and the GROUP configs (KIP-848, kavka.group_configs): ``__kavka_meta/group-configs.json``.

Kafka keeps settings changed with ``kafka-configs --entity-type brokers --alter`` in its
metadata log, so they survive restarts.  A lone kavka broker keeps them here, as the
strings the client sent, in two layers: this broker's own (``broker``) and the cluster-wide
default (``default``, resource name "").  A cluster broker keeps here its copy of what
etcd holds, so its topics open with the right defaults before etcd answers.  The file is
rewritten whole, atomically; it is read before the topic catalog, so every topic resolves
its settings against the dynamic values from the start.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from kavka.config import CLUSTER_DEFAULT, PER_BROKER
from kavka.log.checkpoint import write_atomically
from kavka.log.errors import DataDirUnusable

FILE = "broker-configs.json"
GROUP_FILE = "group-configs.json"
FORMAT = 1

Layers = dict[str, dict[str, str]]


def empty() -> Layers:
    return {PER_BROKER: {}, CLUSTER_DEFAULT: {}}


def read(path: Path) -> Layers:
    """Both layers, empty when the file does not exist yet."""
    if not path.exists():
        return empty()
    try:
        body = json.loads(path.read_text("ascii"))
        if body["format"] != FORMAT:
            raise ValueError(f"unknown format {body['format']}")
        return {scope: {str(k): str(v) for k, v in body[scope].items()} for scope in (PER_BROKER, CLUSTER_DEFAULT)}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataDirUnusable(f"dynamic broker configs {path} are unreadable: {exc}") from exc


def write(path: Path, layers: Mapping[str, Mapping[str, str]]) -> None:
    body = {"format": FORMAT, **{scope: dict(sorted(layers[scope].items())) for scope in (PER_BROKER, CLUSTER_DEFAULT)}}
    write_atomically(path, json.dumps(body, indent=1, ensure_ascii=True) + "\n")


def read_groups(path: Path) -> dict[str, dict[str, str]]:
    """group id -> its own settings (strings), empty when the file does not exist yet."""
    if not path.exists():
        return {}
    try:
        body = json.loads(path.read_text("utf-8"))
        if body["format"] != FORMAT:
            raise ValueError(f"unknown format {body['format']}")
        return {str(g): {str(k): str(v) for k, v in values.items()} for g, values in body["groups"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DataDirUnusable(f"group configs {path} are unreadable: {exc}") from exc


def write_groups(path: Path, groups: Mapping[str, Mapping[str, str]]) -> None:
    body = {"format": FORMAT, "groups": {g: dict(sorted(v.items())) for g, v in sorted(groups.items()) if v}}
    write_atomically(path, json.dumps(body, indent=1) + "\n")
