"""Fixtures for the clients written in other languages (see builds.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import builds  # noqa: E402


@pytest.fixture(scope="session")
def client_build():
    """``client_build("java")``: the built client's directory; skipped when its toolchain is missing."""
    def get(name: str) -> Path:
        reason = builds.missing_toolchain(name)
        if reason is not None:
            pytest.skip(f"the {name} test client needs {reason.split()[0]}: {reason}")
        return builds.built(name)
    return get


@pytest.fixture
def broker(kavka_broker_factory):
    return kavka_broker_factory({"num.partitions": 3})
