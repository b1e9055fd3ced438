"""``broker_at``: acl_harness brokers on the test's tmp dir, closed after the test."""

from __future__ import annotations

import pytest

from acl_harness import Broker


@pytest.fixture
def broker_at(tmp_path):
    opened = []

    def open_(settings=None):
        b = Broker(tmp_path, settings or {})
        opened.append(b)
        return b
    yield open_
    for b in opened:
        b.close()
