"""Fixtures for the storage tests."""

from __future__ import annotations

import pytest

from kavka.clock import ManualClock
from log_helpers import T0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)
