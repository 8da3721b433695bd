"""Shared fixtures: where the staged public datasets and the test data live."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = ROOT / "tests" / "data"


def shared_data_dir() -> Path:
    return Path(os.environ.get("NETPILOT_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not (path / "te").is_dir():
        pytest.skip(f"staged datasets not found at {path} (set NETPILOT_SHARED_DATA)")
    return path


@pytest.fixture(scope="session")
def te_data(shared_data: Path) -> Path:
    return shared_data / "te"


@pytest.fixture(scope="session")
def zoo_dir() -> Path:
    return TEST_DATA / "topologyzoo"


def listening(port: int) -> bool:
    """Whether a real service (PostgreSQL 5432, NATS 4222) listens on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def postgres_available() -> bool:
    return listening(5432)
