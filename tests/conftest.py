"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import LoupeServer, shared_data


@pytest.fixture(scope="session")
def data_root() -> Path:
    return shared_data()


@pytest.fixture(scope="session")
def server(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    """One server over ``../shared/data`` for the read-only integration tests."""
    running = LoupeServer(data_root, tmp_path_factory.mktemp("loupe-data"))
    yield running
    running.stop()
