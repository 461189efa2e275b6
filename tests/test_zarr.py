"""ZarrFileIO: folder payloads checksummed file by file, lazy loads, dask writes within a memory budget, S3."""

from __future__ import annotations

import importlib
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import strategies as st

from persistable import Persistable, PersistableParams, sync
from persistable.exceptions import CorruptArtifactError, PayloadSerializationError
from persistable.io import FolderFileIO, ZarrFileIO
from persistable.store import LocalStore
from persistable.testing import FolderFileIOTests, assert_same_payload
from persistable.testing._fileio import arrays


class TestZarrFileIO(FolderFileIOTests[Any]):
    """ZarrFileIO round-trips numeric arrays of any shape through folders and artifacts."""

    def make_io(self) -> FolderFileIO[Any]:
        return ZarrFileIO()

    def payloads(self) -> st.SearchStrategy[Any]:
        return arrays(native_byte_order=True).filter(lambda array: array.dtype.kind in "biufc")

    def materialize(self, loaded: Any) -> Any:
        return np.asarray(loaded[...])


@dataclass
class ArrayParams(PersistableParams):
    """Names one array."""

    name: str


class Held(Persistable[Any, ArrayParams]):
    """Persists the payload handed to load_generate()."""

    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        return untracked_payload_params["payload"]


def test_zarr_loads_lazily_and_as_dask(tmp_path: Path) -> None:
    """A zarr payload loads as a zarr.Array, or a dask array on request, without reading the chunks."""
    import zarr

    values = np.arange(1000, dtype=np.int32).reshape(40, 25)
    Held(tmp_path, ArrayParams("a"), payload_io=ZarrFileIO(chunks=(10, 25))).load_generate(
        payload=values
    )
    lazy = Held(tmp_path, ArrayParams("a"), payload_io=ZarrFileIO())
    assert isinstance(lazy.payload, zarr.Array)
    assert lazy.payload.chunks == (10, 25)
    assert_same_payload(values[12:14], np.asarray(lazy.payload[12:14]))
    as_dask = Held(tmp_path, ArrayParams("a"), payload_io=ZarrFileIO(as_dask=True))
    assert type(as_dask.payload).__module__.startswith("dask.")
    assert_same_payload(values, as_dask.payload.compute())


def test_every_zarr_file_is_checksummed_and_damage_is_caught(tmp_path: Path) -> None:
    """metadata.json lists each chunk file; a changed chunk fails verify() and load(verify=True)."""
    values = np.arange(400, dtype=np.float64).reshape(20, 20)
    made = Held(tmp_path, ArrayParams("v"), payload_io=ZarrFileIO(chunks=(5, 20)))
    made.load_generate(payload=values)
    chunks = sorted(name for name in made.metadata["files"] if name.startswith("payload.zarr/c/"))
    assert len(chunks) == 4
    chunk = Path(made.artifact_path) / chunks[1]
    data = bytearray(chunk.read_bytes())
    data[-1] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(CorruptArtifactError, match=r"payload\.zarr/c/1/0"):
        made.verify()
    with pytest.raises(CorruptArtifactError):
        Held(tmp_path, ArrayParams("v"), payload_io=ZarrFileIO()).load(verify=True)
    chunk.write_bytes(bytes(data[:-3]))
    with pytest.raises(CorruptArtifactError, match=r"has \d+ bytes, metadata\.json says"):
        Held(tmp_path, ArrayParams("v"), payload_io=ZarrFileIO()).load()


def test_a_failed_zarr_write_leaves_no_artifact(tmp_path: Path) -> None:
    """A dask array whose computation fails halfway commits nothing."""
    da: Any = importlib.import_module("dask.array")

    def explode(block: Any, block_info: Any = None) -> Any:
        if block_info and block_info[None]["chunk-location"][0] == 3:
            raise RuntimeError("chunk 3 cannot be computed")
        return block

    bad = da.ones((50, 10), chunks=(10, 10)).map_blocks(explode, dtype=float)
    with pytest.raises(Exception, match="chunk 3 cannot be computed"):
        Held(tmp_path, ArrayParams("bad"), payload_io=ZarrFileIO()).load_generate(payload=bad)
    assert list(LocalStore(tmp_path).iter_artifacts()) == []
    assert not (tmp_path / "held").exists() or not any((tmp_path / "held").iterdir())


def test_zarr_writes_a_dask_array_larger_than_the_memory_budget(tmp_path: Path) -> None:
    """A 256 MiB dask array is written chunk by chunk: Python's allocations stay under 64 MiB."""
    da: Any = importlib.import_module("dask.array")
    budget = 64 << 20
    image = da.ones((256, 1024, 128), chunks=(8, 1024, 128), dtype=np.float64)  # 256 MiB
    assert image.nbytes >= 4 * budget
    tracemalloc.start()
    try:
        Held(tmp_path, ArrayParams("big"), payload_io=ZarrFileIO()).load_generate(payload=image)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < budget, f"peak {peak / 2**20:.0f} MiB"
    again = Held(tmp_path, ArrayParams("big"), payload_io=ZarrFileIO())
    assert again.payload.shape == (256, 1024, 128)
    assert float(again.payload[255, 1023, 127]) == 1.0


@pytest.mark.s3
def test_zarr_on_s3_loads_lazily_and_syncs(
    s3_bucket: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    """On S3 a zarr payload written from dask opens lazily through fsspec and syncs to a local store."""
    import zarr

    da: Any = importlib.import_module("dask.array")
    url, options = s3_bucket
    values = np.random.default_rng(0).random((30, 40))
    Held(url, ArrayParams("s3"), payload_io=ZarrFileIO(), storage_options=options).load_generate(
        payload=da.from_array(values, chunks=(10, 40))
    )
    remote = Held(url, ArrayParams("s3"), payload_io=ZarrFileIO(), storage_options=options)
    remote.load(verify=True)
    assert isinstance(remote.payload, zarr.Array)
    assert_same_payload(values, np.asarray(remote.payload[...]))
    from persistable.store import make_store

    report = sync(make_store(url, storage_options=options), tmp_path)
    assert report.copied == [("held", remote.persist_hash)] or len(report.copied) == 1
    local = Held(tmp_path, ArrayParams("s3"), payload_io=ZarrFileIO())
    local.verify()
    assert_same_payload(values, np.asarray(local.payload[...]))


def test_zarr_refuses_what_it_cannot_keep() -> None:
    """str arrays and mismatched dimension names name the serializer and an alternative."""
    with pytest.raises(PayloadSerializationError, match="NpyFileIO"):
        ZarrFileIO().check(np.array(["a"]))
    with pytest.raises(PayloadSerializationError, match="2 dimension_names for an array of 3"):
        ZarrFileIO(dimension_names=("y", "x")).check(np.zeros((1, 2, 3)))
    with pytest.raises(PayloadSerializationError, match="writes a folder"):
        ZarrFileIO().save(np.zeros(2), None)  # type: ignore[arg-type]
