"""Shared fixtures: temporary stores of every kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from persistable.store import LocalStore, MemoryStore


@pytest.fixture
def local_store(tmp_path: Path) -> LocalStore:
    """A local store in a fresh temporary folder."""
    return LocalStore(tmp_path / "store")


@pytest.fixture
def memory_store(request: pytest.FixtureRequest) -> Iterator[MemoryStore]:
    """A memory store private to one test."""
    name = f"test-{request.node.nodeid}"
    store = MemoryStore(name)
    yield store
    MemoryStore.clear(name)
