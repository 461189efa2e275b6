"""``persistable.sync`` copies complete, verified artifacts between stores and reports what it did."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import persistable
from persistable import MemoryStore, Persistable, PersistableParams, Store, SyncReport, sync
from persistable.exceptions import ReadOnlyStoreError
from persistable.store import LocalStore


@dataclass
class WordsParams(PersistableParams):
    """How many words."""

    n: int


class Words(Persistable[list[str], WordsParams]):
    """A list of n words."""

    def _generate_payload(self, **untracked_payload_params: Any) -> list[str]:
        return [f"word{i}" for i in range(self.params.n)]


class Letters(Persistable[str, WordsParams]):
    """n letters."""

    def _generate_payload(self, **untracked_payload_params: Any) -> str:
        return "a" * self.params.n


@pytest.fixture
def source() -> Iterator[MemoryStore]:
    """A memory store holding three Words and one Letters artifact."""
    name = f"sync-{uuid.uuid4().hex}"
    store = MemoryStore(name)
    for n in (1, 2, 3):
        Words(store, WordsParams(n=n)).load_generate()
    Letters(store, WordsParams(n=4)).load_generate()
    yield store
    MemoryStore.clear(name)


def test_sync_copies_then_skips(source: MemoryStore, tmp_path: Path) -> None:
    """The first sync copies every artifact with its bytes; the second finds them all present."""
    report = sync(source, tmp_path / "copy")
    assert isinstance(report, SyncReport)
    assert report.n_copied == 4
    assert report.n_skipped == 0
    assert report.ok
    expected_bytes = sum(
        source.size(f"{name}/{key}/{file}")
        for name, key in source.iter_artifacts()
        for file in source.list_dir(f"{name}/{key}")
    )
    assert report.bytes_copied == expected_bytes
    destination = LocalStore(tmp_path / "copy")
    assert list(destination.iter_artifacts()) == list(source.iter_artifacts())
    for name, key in source.iter_artifacts():
        for file in source.list_dir(f"{name}/{key}"):
            path = f"{name}/{key}/{file}"
            assert destination.read_bytes(path) == source.read_bytes(path)
    loaded = Words(tmp_path / "copy", WordsParams(n=3))
    loaded.load(verify=True)
    assert loaded.payload == ["word0", "word1", "word2"]
    again = sync(source, tmp_path / "copy")
    assert again.n_copied == 0
    assert again.n_skipped == 4
    assert again.bytes_copied == 0
    assert "skipped 4" in str(again)


def test_sync_filters_payload_names_and_dry_runs(source: MemoryStore, tmp_path: Path) -> None:
    """payload_names limits what is copied, and a dry run reports without writing."""
    dry = sync(source, tmp_path / "copy", payload_names=["letters"], dry_run=True)
    assert dry.dry_run
    assert dry.n_copied == 1
    assert dry.bytes_copied > 0
    assert not (tmp_path / "copy").exists()
    real = sync(source, tmp_path / "copy", payload_names=["letters"])
    assert real.copied == dry.copied
    assert LocalStore(tmp_path / "copy").list_payload_names() == ["letters"]


def test_sync_refuses_a_damaged_source_artifact(source: MemoryStore, tmp_path: Path) -> None:
    """A source file that no longer matches its checksum is reported as failed and not committed."""
    name, key = next(iter(source.iter_artifacts()))
    payload_path = f"{name}/{key}/payload.pkl"
    data = bytearray(source.files[payload_path])
    data[-2] ^= 0xFF
    source.files[payload_path] = bytes(data)
    report = sync(source, tmp_path / "copy")
    assert not report.ok
    assert [(n, k) for n, k, _ in report.failed] == [(name, key)]
    assert "checksum" in report.failed[0][2] or "xxh3_128" in report.failed[0][2]
    assert report.n_copied == 3
    assert not LocalStore(tmp_path / "copy").has_artifact(name, key)


def test_sync_into_a_read_only_store_fails_first(source: MemoryStore, tmp_path: Path) -> None:
    """A read-only destination is refused before anything is read or written."""
    destination = LocalStore(tmp_path / "copy", read_only=True)
    with pytest.raises(ReadOnlyStoreError):
        sync(source, destination)


def test_sync_is_exported() -> None:
    """sync and SyncReport are public names of the package."""
    assert {"sync", "SyncReport"} <= set(persistable.__all__)


@pytest.mark.s3
def test_sync_from_s3_to_a_folder(s3_bucket: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    """A colleague's S3 cache is pulled into a local folder, where its artifacts load unchanged,
    and a folder is pushed to another S3 prefix."""
    url, options = s3_bucket
    for n in (5, 6):
        Words(url, WordsParams(n=n), storage_options=options).load_generate()
    report = sync(url, tmp_path / "cache", src_storage_options=options)
    assert report.n_copied == 2
    assert report.ok
    local = Words(tmp_path / "cache", WordsParams(n=6))
    local.load(verify=True)
    assert local.payload[-1] == "word5"
    pushed = sync(tmp_path / "cache", f"{url}-pushed", dst_storage_options=options)
    assert pushed.n_copied == 2
    remote = Words(f"{url}-pushed", WordsParams(n=5), storage_options=options)
    remote.load(verify=True)
    assert remote.payload[-1] == "word4"
    back: Store = persistable.make_store(url, storage_options=options)
    reverse = sync(tmp_path / "cache", back)
    assert reverse.n_skipped == 2
    assert reverse.n_copied == 0
