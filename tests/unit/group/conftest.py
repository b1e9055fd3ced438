"""Fixtures for the group coordinator's unit tests (helpers in group_helpers.py)."""

import pytest
from group_helpers import Harness


@pytest.fixture
def h() -> Harness:
    return Harness()


@pytest.fixture
def harness():
    return Harness
