"""File and Directory params: keyed by content, shown with their path, digests cached while unchanged."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import persistable._content as content
from persistable import Directory, File, Persistable, PersistableParams
from persistable.exceptions import InputFileError
from persistable.store import Store


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test gets its own digest cache folder and an empty in-memory cache."""
    monkeypatch.setenv("PERSISTABLE_CACHE_DIR", str(tmp_path / "cache"))
    content.content_digest_cache.clear_memory()
    yield
    content.content_digest_cache.clear_memory()


@dataclass
class FitParams(PersistableParams):
    data: File
    alpha: float = 0.1


@dataclass
class TreeParams(PersistableParams):
    images: Directory


class Fit(Persistable[str, FitParams]):
    def _generate_payload(self, **untracked_payload_params: Any) -> str:
        return self.params.data.read_text()


class Tree(Persistable[int, TreeParams]):
    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        return len(list(self.params.images.iterdir()))


def _old(path: Path) -> None:
    """Make a file look older than the racy window, so that its digest is remembered."""
    stamp = time.time() - 60
    os.utime(path, (stamp, stamp))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_file_is_keyed_by_content_not_path(tmp_path: Path, local_store: Store) -> None:
    """Equal content under two paths gives one key; changed content gives a new key and a fresh payload."""
    first = _write(tmp_path / "a" / "raw.csv", "1,2\n")
    second = _write(tmp_path / "b" / "moved.csv", "1,2\n")
    fit = Fit(local_store, FitParams(File(first)))
    assert fit.persist_hash == Fit(local_store, FitParams(File(second))).persist_hash
    fit.load_generate()
    assert fit.payload == "1,2\n"
    old_key = fit.persist_hash
    _write(first, "3,4\n")
    again = Fit(local_store, FitParams(File(first)))
    assert again.persist_hash != old_key
    again.load_generate()
    assert again.payload == "3,4\n"


def test_file_is_a_path(tmp_path: Path) -> None:
    """A File is usable wherever a Path is: open(), read_text(), joining, os.fspath."""
    path = _write(tmp_path / "x.txt", "hi")
    value = File(path)
    assert isinstance(value, Path)
    assert value.read_text() == "hi"
    with open(value) as stream:
        assert stream.read() == "hi"
    assert os.fspath(value) == str(path)


def test_plain_path_keeps_meaning_this_path(tmp_path: Path) -> None:
    """A plain Path param is keyed by its spelling: content changes do not change its encoding."""
    path = _write(tmp_path / "x.txt", "a")

    @dataclass
    class PathParams(PersistableParams):
        source: Path

    before = PathParams(path).to_dict()
    _write(path, "b")
    assert PathParams(path).to_dict() == before


def test_field_annotated_file_keys_a_str_by_content(tmp_path: Path) -> None:
    """A str passed to a field annotated File is keyed as File (content), not by its spelling."""
    path = _write(tmp_path / "x.txt", "a")
    by_str = FitParams(str(path)).to_dict()  # type: ignore[arg-type]
    assert by_str == FitParams(File(path)).to_dict()
    assert by_str["data"]["__type__"] == "file"


def test_params_json_shows_path_and_digest(tmp_path: Path, local_store: Store) -> None:
    """params.json shows the File's path next to its digest; the key tree holds no path."""
    path = _write(tmp_path / "raw.csv", "1\n")
    fit = Fit(local_store, FitParams(File(path)))
    fit.load_generate()
    shown = json.loads((Path(str(fit.artifact_path)) / "params.json").read_text())
    assert shown["data"]["path"] == path.as_posix()
    assert shown["data"]["size"] == 2
    assert "path" not in fit.key_tree()["params"]["data"]


def test_directory_is_keyed_by_its_tree(tmp_path: Path, local_store: Store) -> None:
    """A Directory's key covers names and contents of every file below it, not its own path."""
    one = tmp_path / "one"
    two = tmp_path / "two"
    for root in (one, two):
        _write(root / "a.txt", "a")
        _write(root / "sub" / "b.txt", "b")
    key = Tree(local_store, TreeParams(Directory(one))).persist_hash
    assert Tree(local_store, TreeParams(Directory(two))).persist_hash == key
    (two / "sub" / "b.txt").rename(two / "sub" / "c.txt")
    renamed = Tree(local_store, TreeParams(Directory(two))).persist_hash
    assert renamed != key
    _write(one / "sub" / "b.txt", "B")
    changed = Tree(local_store, TreeParams(Directory(one))).persist_hash
    assert len({key, renamed, changed}) == 3


def test_missing_file_names_the_field_and_the_path(tmp_path: Path, local_store: Store) -> None:
    """A missing File raises InputFileError naming the field path and the file, and nothing is written."""
    fit = Fit(local_store, FitParams(File(tmp_path / "nope.csv")))
    with pytest.raises(
        InputFileError, match=r"params\.data is the file '.*nope\.csv', which does not exist"
    ):
        fit.load_generate()
    assert not (tmp_path / "store").exists()


def test_directory_that_is_a_file_is_refused(tmp_path: Path, local_store: Store) -> None:
    """A Directory naming a file raises InputFileError saying so."""
    path = _write(tmp_path / "x.txt", "a")
    with pytest.raises(InputFileError, match="which is a file, not a directory"):
        TreeParams(Directory(path)).to_dict()
    with pytest.raises(InputFileError, match="which is a directory"):
        FitParams(File(tmp_path)).to_dict()


def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    """A File that cannot be read raises InputFileError naming it."""
    if os.geteuid() == 0:  # root reads anything: make it a dangling symlink instead
        link = tmp_path / "dangling"
        link.symlink_to(tmp_path / "gone")
        with pytest.raises(InputFileError, match="dangling"):
            FitParams(File(link)).to_dict()
        return
    path = _write(tmp_path / "secret.txt", "a")
    path.chmod(0)
    try:
        with pytest.raises(InputFileError, match="cannot be read"):
            FitParams(File(path)).to_dict()
    finally:
        path.chmod(0o600)


def test_unchanged_file_is_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The digest of an unchanged file comes from the cache (also in a fresh process); a changed file is re-hashed."""
    path = _write(tmp_path / "x.txt", "a")
    _old(path)
    reads: list[str] = []
    real = content._hash_file

    def counting(name: str) -> str:
        reads.append(name)
        return real(name)

    monkeypatch.setattr(content, "_hash_file", counting)
    first = FitParams(File(path)).to_dict()
    FitParams(File(path)).to_dict()
    assert len(reads) == 1
    content.content_digest_cache.clear_memory()  # as a new process would: only the SQLite file
    assert FitParams(File(path)).to_dict() == first
    assert len(reads) == 1
    _write(path, "b")
    _old(path)
    assert FitParams(File(path)).to_dict() != first
    assert len(reads) == 2


def test_recently_written_file_is_not_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file written in the last seconds is hashed every time: a same-tick rewrite cannot hide."""
    path = _write(tmp_path / "x.txt", "a")
    reads: list[str] = []
    real = content._hash_file

    def counting(name: str) -> str:
        reads.append(name)
        return real(name)

    monkeypatch.setattr(content, "_hash_file", counting)
    FitParams(File(path)).to_dict()
    FitParams(File(path)).to_dict()
    assert len(reads) == 2


def test_file_url_is_keyed_by_size_and_checksum(s3_bucket: tuple[str, dict[str, Any]]) -> None:
    """File("s3://...") is keyed by the object's size and ETag; a rewrite changes it, a missing object is named."""
    import s3fs

    url, options = s3_bucket
    filesystem = s3fs.S3FileSystem(**options, skip_instance_cache=True)
    target = f"{url}/inputs/raw.csv"
    filesystem.pipe(target, b"1,2\n")
    value = File(target, storage_options=options)
    assert str(value) == target
    assert os.fspath(value) == target
    first = FitParams(value).to_dict()
    assert first["data"]["__type__"] == "remote_file"
    assert first["data"]["size"] == 4
    assert FitParams(File(target, storage_options=options)).to_dict() == first
    filesystem.pipe(target, b"3,4\n")
    assert FitParams(File(target, storage_options=options)).to_dict() != first
    with pytest.raises(
        InputFileError, match=r"params\.data is the file 's3://.*nope\.csv', which does not exist"
    ):
        FitParams(File(f"{url}/nope.csv", storage_options=options)).to_dict()
