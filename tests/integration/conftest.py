"""Fixtures shared by the integration tests of one folder."""

from __future__ import annotations

import pytest

from tests.support.backtests import write_tick_file


@pytest.fixture(scope="module")
def tick_file(tmp_path_factory):
    """15 minutes of synthetic ticks, written once per module."""
    return write_tick_file(tmp_path_factory.mktemp("bt") / "ticks.csv")
