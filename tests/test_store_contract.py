"""Every store implementation passes the same Store contract suite (persistable.testing.StoreTests)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from persistable.exceptions import StoreConfigurationError
from persistable.store import FsspecStore, LocalStore, MemoryStore, Store, make_store
from persistable.testing import StoreTests


class TestLocalStore(StoreTests):
    """The contract on a local folder."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        """A local store in a fresh folder."""
        return LocalStore(tmp_path / "store")

    @pytest.fixture
    def read_only_store(self, store: Store) -> Store:
        """The same folder opened read-only."""
        assert isinstance(store, LocalStore)
        return LocalStore(store.root, read_only=True)


class TestMemoryStore(StoreTests):
    """The contract on the in-process memory store."""

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        """A memory store with a unique name."""
        name = f"contract-{uuid.uuid4().hex}"
        yield MemoryStore(name)
        MemoryStore.clear(name)

    @pytest.fixture
    def read_only_store(self, store: Store) -> Store:
        """The same memory store opened read-only."""
        assert isinstance(store, MemoryStore)
        return MemoryStore(store.name, read_only=True)


class TestFsspecMemoryStore(StoreTests):
    """The contract through fsspec's own memory filesystem (the generic fsspec path)."""

    @pytest.fixture
    def store(self) -> Iterator[Store]:
        """An fsspec memory:// store with a unique root, removed afterwards."""
        url = f"memory://contract-{uuid.uuid4().hex}"
        store = FsspecStore(url)
        yield store
        if store.fs.exists(store.root):
            store.fs.rm(store.root, recursive=True)

    @pytest.fixture
    def read_only_store(self, store: Store) -> Store:
        """The same root opened read-only."""
        return FsspecStore(store.url, read_only=True)


@pytest.mark.s3
class TestS3Store(StoreTests):
    """The contract on a bucket of the loopback S3 server, through s3fs."""

    @pytest.fixture
    def store(self, s3_bucket: tuple[str, dict[str, Any]]) -> Store:
        """A store under a fresh bucket."""
        url, storage_options = s3_bucket
        return make_store(url, storage_options=storage_options)

    @pytest.fixture
    def read_only_store(self, s3_bucket: tuple[str, dict[str, Any]]) -> Store:
        """The same prefix opened read-only."""
        url, storage_options = s3_bucket
        return make_store(url, storage_options=storage_options, read_only=True)


def test_router_sends_urls_to_the_right_store(tmp_path: Path) -> None:
    """No scheme and file:// give a LocalStore, memory:// a MemoryStore, memory:// with options fsspec."""
    assert isinstance(make_store(str(tmp_path)), LocalStore)
    assert isinstance(make_store(f"file://{tmp_path}"), LocalStore)
    assert isinstance(make_store("memory://router"), MemoryStore)
    routed = make_store("memory://router", storage_options={"skip_instance_cache": True})
    assert isinstance(routed, FsspecStore)
    assert routed.url == "memory://router"


def test_local_list_keys_lists_committed_artifacts_only_sorted(tmp_path: Path) -> None:
    """LocalStore's own list_keys answers as the shared one: committed folders only, sorted, the name checked."""
    store = LocalStore(tmp_path / "store")
    for key in ("k2", "k1"):
        transaction = store.begin(f"p/{key}")
        transaction.write_bytes("payload.bin", key.encode())
        assert transaction.commit(b"{}")
    folder = tmp_path / "store" / "p"
    (folder / "k0").mkdir()  # no metadata.json: not an artifact
    (folder / "k3" / "metadata.json").mkdir(parents=True)  # not a file
    (folder / "stray").write_bytes(b"")
    assert store.list_keys("p") == ["k1", "k2"]
    assert store.list_keys("p") == Store.list_keys(store, "p")
    assert store.list_keys("absent") == []
    with pytest.raises(StoreConfigurationError):
        store.list_keys("../elsewhere")
