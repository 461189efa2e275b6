"""1.x's ``persist_filepath`` names the committed payload file, also after a replace."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from persistable import BytesFileIO, Persistable, PersistableParams, untracked
from persistable.store import make_store


@dataclass
class _TextParams(PersistableParams):
    """One key whatever the text."""

    text: str = untracked(default="old")


class _Text(Persistable[bytes, _TextParams]):
    def _generate_payload(self, **untracked_payload_params: Any) -> bytes:
        return self.params.text.encode()


def _filepath(item: _Text) -> Path | str:
    with pytest.warns(DeprecationWarning, match="artifact_path"):
        return item.persist_filepath


def _check(data_dir: str, options: dict[str, Any] | None) -> None:
    def make(text: str) -> _Text:
        return _Text(data_dir, _TextParams(text), payload_io=BytesFileIO(), storage_options=options)

    fresh = make("old")
    before = _filepath(fresh)  # not committed yet: where it will be
    fresh.generate()
    assert _filepath(fresh) == before
    make("new").generate()  # a replace: the files move into the folder metadata.json names
    after = _filepath(make("old"))
    assert after != before
    store = make_store(data_dir, storage_options=options)
    relative = str(after)[len(store.url.rstrip("/")) + 1 :]
    assert store.read_bytes(relative) == b"new"
    assert not store.exists(str(before)[len(store.url.rstrip("/")) + 1 :])


def test_persist_filepath_of_a_replaced_local_artifact(tmp_path: Path) -> None:
    """Local store: after a replace, persist_filepath is the new payload file; the old place is empty."""
    _check(str(tmp_path / "store"), None)


@pytest.mark.s3
def test_persist_filepath_of_a_replaced_s3_artifact(s3_bucket: tuple[str, dict[str, Any]]) -> None:
    """S3: the same, as a URL."""
    url, options = s3_bucket
    _check(url, options)
