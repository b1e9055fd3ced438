"""`kavka features describe|upgrade|downgrade` as a user runs them: subprocesses talking to
an in-process broker; each change checked with ApiVersions independently of the CLI."""

from __future__ import annotations

import pytest
from kio.schema.api_versions.v4.request import ApiVersionsRequest
from test_cli_tools import failed, kavka, ok

from kavka.client import Client

pytestmark = pytest.mark.timeout(90)


def finalized(broker) -> tuple[dict[str, int], int]:
    with Client(broker.bootstrap_servers) as client:
        answer = client.request(ApiVersionsRequest(client_software_name="t", client_software_version="1"))
    return {f.name: f.max_version_level for f in answer.finalized_features}, answer.finalized_features_epoch


def rows(out: str) -> dict[str, list[str]]:
    """describe's table as feature -> [supported min, supported max, finalized]."""
    lines = out.splitlines()
    assert lines[0].split() == ["FEATURE", "SUPPORTED-MIN", "SUPPORTED-MAX", "FINALIZED"]
    table = {}
    for line in lines[1:-1]:
        name, rest = line.split(None, 1)
        table[name] = [c.strip() for c in rest.split("  ") if c.strip()]
    return table


def test_describe_lists_every_feature(kavka_broker):
    out = ok(kavka(kavka_broker, "features", "describe"))
    table = rows(out)
    assert table["metadata.version"] == ["7 (3.3-IV3)", "25 (4.0-IV3)", "25 (4.0-IV3)"]
    assert table["group.version"] == ["0", "1", "1"]
    assert table["transaction.version"] == ["0", "2", "2"]
    assert out.splitlines()[-1] == "Finalized features epoch: 0"


def test_downgrade_dry_run_then_downgrade_then_upgrade(kavka_broker):
    b = kavka_broker
    assert ok(kavka(b, "features", "downgrade", "--feature", "group.version=0", "--dry-run")) == (
        "group.version can be downgraded to 0.\n")
    assert finalized(b) == ({"metadata.version": 25, "group.version": 1, "transaction.version": 2}, 0)
    assert ok(kavka(b, "features", "downgrade", "--feature", "group.version=0")) == "group.version was downgraded to 0.\n"
    assert finalized(b) == ({"metadata.version": 25, "transaction.version": 2}, 1)
    assert rows(ok(kavka(b, "features", "describe")))["group.version"] == ["0", "1", "0"]
    assert ok(kavka(b, "features", "upgrade", "--feature", "group.version=1")) == "group.version was upgraded to 1.\n"
    assert finalized(b) == ({"metadata.version": 25, "group.version": 1, "transaction.version": 2}, 2)


def test_refusals_are_one_line(kavka_broker):
    b = kavka_broker
    line = failed(kavka(b, "features", "upgrade", "--feature", "group.version=0"))
    assert line.startswith("kavka features: INVALID_UPDATE_VERSION: The update failed for all features")
    assert line.endswith("without setting the upgrade type to either safe or unsafe downgrade.")
    line = failed(kavka(b, "features", "upgrade", "--feature", "transaction.version=3"))
    assert line.endswith("Local controller 0 only supports versions 0-2")
    line = failed(kavka(b, "features", "upgrade", "--feature", "share.version=1"))
    assert line.endswith("Local controller 0 does not support this feature.")
    assert failed(kavka(b, "features", "upgrade", "--feature", "group.version=x")) == (
        "kavka features: --feature group.version: the level must be a whole number, got 'x'")
    assert finalized(b) == ({"metadata.version": 25, "group.version": 1, "transaction.version": 2}, 0)
