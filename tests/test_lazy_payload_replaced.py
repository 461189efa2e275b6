"""A zarr array opened lazily, then its artifact replaced by another process or deleted.

Its later chunk reads give the array's own bytes or a clear error, never the new
artifact's chunks and never the fill value of a chunk whose file went away.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lazy_replace_worker import Filled, FilledParams

from persistable.exceptions import CorruptArtifactError

WORKER = Path(__file__).with_name("lazy_replace_worker.py")


def _replace_in_another_process(
    url: str, value: int, options: dict[str, Any] | None, env: dict[str, str] | None
) -> None:
    argv = [sys.executable, str(WORKER), url, str(value)]
    if options is not None:
        argv.append(json.dumps(options))
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr


def _loaded(url: str, options: dict[str, Any] | None) -> Any:
    item = Filled(url, FilledParams(value=1), storage_options=options)
    item.load()
    return item.payload


def _lazy_array_after_replace(
    url: str, options: dict[str, Any] | None, env: dict[str, str] | None
) -> None:
    first = Filled(url, FilledParams(value=1), storage_options=options)
    first.generate()
    held = _loaded(url, options)
    assert not isinstance(held, np.ndarray)  # lazy: chunks are read on access
    assert (held[:4, :4] == 1).all()
    _replace_in_another_process(url, 2, options, env)
    with pytest.raises(CorruptArtifactError, match="was replaced or deleted since it was read"):
        held[4:, 4:]
    with pytest.raises(CorruptArtifactError, match="was replaced or deleted since it was read"):
        held[...]
    again = _loaded(url, options)
    assert (again[...] == 2).all()  # a new load reads the new artifact, whole
    again_first_chunk = again[:4, :4]
    assert (again_first_chunk == 2).all()
    Filled(url, FilledParams(), storage_options=options).delete()
    with pytest.raises(CorruptArtifactError, match="was replaced or deleted since it was read"):
        again[4:, :4]


def test_a_lazy_zarr_array_on_a_local_store_never_mixes_in_a_replacement(tmp_path: Path) -> None:
    """Local store: after a replace by another process, the old array's reads raise, naming the replace."""
    _lazy_array_after_replace(str(tmp_path / "store"), None, None)


@pytest.mark.s3
def test_a_lazy_zarr_array_on_s3_never_reads_fill_values_after_a_replace(
    s3_bucket: tuple[str, dict[str, Any]], s3_env: dict[str, str]
) -> None:
    """S3: the old chunks are removed by the replace; the old array raises instead of reading zeros."""
    url, options = s3_bucket
    _lazy_array_after_replace(url, options, {**os.environ, **s3_env})


def test_a_damaged_chunk_of_a_lazy_zarr_array_is_named_as_damage(tmp_path: Path) -> None:
    """A chunk changed in place (the artifact not replaced) raises as damage, not as a replace."""
    item = Filled(tmp_path / "store", FilledParams(value=3))
    item.generate()
    item.load()
    held = item.payload
    chunk = next(p for p in Path(item.artifact_path).rglob("c/1/1") if p.is_file())
    chunk.write_bytes(chunk.read_bytes()[::-1])
    with pytest.raises(CorruptArtifactError, match="the artifact is damaged"):
        held[4:, 4:]
    assert (held[:4, :4] == 3).all()  # the intact chunks still read


def test_verify_of_a_handle_read_before_a_replace_or_delete_is_no_false_alarm(
    tmp_path: Path,
) -> None:
    """damage() (what `persistable verify` runs) checks a replaced artifact as it is now, and a deleted one is not damage."""
    from persistable.artifact import Artifact

    store = str(tmp_path / "store")
    Filled(store, FilledParams(value=1)).generate()
    item = Filled(store, FilledParams(value=1))
    handle = Artifact(item.store, item.payload_name, item.key)
    assert handle.damage() is None  # its metadata.json is read now
    Filled(store, FilledParams(value=2)).generate()  # replaced: the old files are gone
    assert handle.damage() is None
    assert handle.metadata.get("files_folder") is not None  # it checked the new artifact
    other = Artifact(item.store, item.payload_name, item.key)
    assert other.damage() is None
    item.delete()
    assert other.damage() is None
    # Real damage is still damage.
    Filled(store, FilledParams(value=3)).generate()
    damaged = Artifact(item.store, item.payload_name, item.key)
    chunk = next(p for p in Path(item.artifact_path).rglob("c/0/0") if p.is_file())
    chunk.write_bytes(b"x" + chunk.read_bytes()[1:])
    why = damaged.damage()
    assert why is not None
    assert "c/0/0" in why
