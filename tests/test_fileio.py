"""Built-in FileIOs: round trips through the shared suite, memory-mapped loads, refusals that write nothing."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import strategies as st
from numpy.typing import NDArray

from persistable import (
    BytesFileIO,
    FileIO,
    JsonFileIO,
    NpyFileIO,
    NpzFileIO,
    Persistable,
    PersistableParams,
    PickleFileIO,
    TextFileIO,
)
from persistable.exceptions import PayloadSerializationError
from persistable.store import LocalStore, MemoryStore, Store
from persistable.testing import FileIOTests, assert_same_payload, roundtrip, roundtrip_path
from persistable.testing._fileio import arrays, json_values


class TestPickleFileIO(FileIOTests[Any]):
    """The shared FileIO suite on PickleFileIO with nested Python and numpy values."""

    def make_io(self) -> FileIO[Any]:
        return PickleFileIO()

    def payloads(self) -> st.SearchStrategy[Any]:
        # numpy itself pickles some swapped-byte-order arrays back as native: not ours to test.
        return json_values() | arrays(native_byte_order=True) | st.tuples(st.integers(), st.text())


class TestJsonFileIO(FileIOTests[Any]):
    """The shared FileIO suite on JsonFileIO with JSON values."""

    def make_io(self) -> FileIO[Any]:
        return JsonFileIO()

    def payloads(self) -> st.SearchStrategy[Any]:
        return json_values()


class TestCompactJsonFileIO(TestJsonFileIO):
    """The shared FileIO suite on JsonFileIO without indentation."""

    def make_io(self) -> FileIO[Any]:
        return JsonFileIO(indent=None)


class TestNpyFileIO(FileIOTests[NDArray[Any]]):
    """The shared FileIO suite on NpyFileIO with arrays of many dtypes, shapes and byte orders."""

    def make_io(self) -> FileIO[NDArray[Any]]:
        return NpyFileIO()

    def payloads(self) -> st.SearchStrategy[NDArray[Any]]:
        return arrays()


class TestMemmapNpyFileIO(TestNpyFileIO):
    """The shared FileIO suite on a memory-mapping NpyFileIO."""

    def make_io(self) -> FileIO[NDArray[Any]]:
        return NpyFileIO(mmap_mode="r")


class TestNpzFileIO(FileIOTests[dict[str, NDArray[Any]]]):
    """The shared FileIO suite on NpzFileIO with dicts of arrays."""

    def make_io(self) -> FileIO[dict[str, NDArray[Any]]]:
        return NpzFileIO()

    def payloads(self) -> st.SearchStrategy[dict[str, NDArray[Any]]]:
        names = st.text(alphabet="abcxyz_0123456789", min_size=1, max_size=6)
        return st.dictionaries(names, arrays(), max_size=3)


class TestCompressedNpzFileIO(TestNpzFileIO):
    """The shared FileIO suite on a compressing NpzFileIO."""

    def make_io(self) -> FileIO[dict[str, NDArray[Any]]]:
        return NpzFileIO(compressed=True)


class TestTextFileIO(FileIOTests[str]):
    """The shared FileIO suite on TextFileIO, including newlines of every kind."""

    def make_io(self) -> FileIO[str]:
        return TextFileIO()

    def payloads(self) -> st.SearchStrategy[str]:
        return st.text() | st.just("a\r\nb\rc\n")


class TestBytesFileIO(FileIOTests[bytes]):
    """The shared FileIO suite on BytesFileIO."""

    def make_io(self) -> FileIO[bytes]:
        return BytesFileIO()

    def payloads(self) -> st.SearchStrategy[bytes]:
        return st.binary(max_size=2048)


def test_npy_load_path_with_mmap_mode_returns_a_memmap(tmp_path: Path) -> None:
    """NpyFileIO(mmap_mode="r").load_path gives a read-only np.memmap with the saved values."""
    array = np.arange(12.0).reshape(3, 4)
    loaded = roundtrip_path(NpyFileIO(mmap_mode="r"), array, tmp_path)
    assert isinstance(loaded, np.memmap)
    assert not loaded.flags.writeable
    np.testing.assert_array_equal(loaded, array)


def test_npy_mmap_load_from_a_local_store_is_a_memmap(local_store: LocalStore) -> None:
    """A payload persisted with NpyFileIO(mmap_mode="r") on a local store loads as a read-only memmap."""
    array = np.arange(1000.0).reshape(10, 100)
    _AnyPayloadP(local_store, NpyFileIO(mmap_mode="r"), array).generate()
    loaded = _AnyPayloadP(local_store, NpyFileIO(mmap_mode="r"), None)
    loaded.load(verify=True)
    assert isinstance(loaded.payload, np.memmap)
    assert not loaded.payload.flags.writeable
    np.testing.assert_array_equal(loaded.payload, array)


def test_npy_mmap_mode_on_a_memory_store_loads_a_plain_array(memory_store: MemoryStore) -> None:
    """On a store without local files, NpyFileIO(mmap_mode="r") loads a plain array from the stream."""
    array = np.arange(10)
    _AnyPayloadP(memory_store, NpyFileIO(mmap_mode="r"), array).generate()
    loaded = _AnyPayloadP(memory_store, NpyFileIO(mmap_mode="r"), None)
    loaded.load()
    assert not isinstance(loaded.payload, np.memmap)
    np.testing.assert_array_equal(loaded.payload, array)


def test_npy_without_mmap_mode_loads_into_memory(tmp_path: Path) -> None:
    """NpyFileIO() without mmap_mode loads a plain in-memory array."""
    loaded = roundtrip_path(NpyFileIO(), np.arange(5), tmp_path)
    assert not isinstance(loaded, np.memmap)


@pytest.mark.parametrize(
    "array",
    [
        np.asfortranarray(np.arange(24, dtype=np.int32).reshape(2, 3, 4)),
        np.arange(40.0).reshape(5, 8)[::2, 1::3],
        np.arange(40.0).reshape(5, 8).T[1:, ::-1],
        np.arange(10, dtype=">i8")[::3],
        np.array("2020-01-01T10:00", dtype="datetime64[m]"),
        np.zeros((0, 3), dtype=np.float32),
        np.zeros(3, dtype=[("a", "<f8"), ("b", "<i2")]),
    ],
    ids=[
        "fortran",
        "strided",
        "transposed-reversed",
        "big-endian-strided",
        "0d",
        "empty",
        "structured",
    ],
)
def test_npy_roundtrips_any_memory_layout_exactly(array: NDArray[Any], tmp_path: Path) -> None:
    """Fortran-ordered, strided, reversed and 0-d arrays come back with the same dtype, shape and values."""
    for loaded in (roundtrip(NpyFileIO(), array), roundtrip_path(NpyFileIO("r"), array, tmp_path)):
        assert loaded.dtype == array.dtype
        assert loaded.shape == array.shape
        np.testing.assert_array_equal(loaded, array, strict=True)


def test_npy_files_are_readable_by_plain_numpy(tmp_path: Path) -> None:
    """A file written by NpyFileIO is a standard .npy that np.load reads, Fortran order included."""
    array = np.asfortranarray(np.arange(6.0).reshape(2, 3))
    path = tmp_path / "a.npy"
    with path.open("wb") as stream:
        NpyFileIO().save(array, stream)
    np.testing.assert_array_equal(np.load(path), array)


def test_npz_keeps_entries_named_like_savez_arguments() -> None:
    """NpzFileIO keeps entries named "file" and "allow_pickle" (np.savez would swallow them)."""
    payload = {"file": np.arange(3), "allow_pickle": np.ones(2), "x": np.zeros(1)}
    loaded = roundtrip(NpzFileIO(), payload)
    assert sorted(loaded) == ["allow_pickle", "file", "x"]
    np.testing.assert_array_equal(loaded["file"], payload["file"])


# -- refusals ---------------------------------------------------------------------


def _module_lambda(x: int) -> int:
    return x


@pytest.mark.parametrize(
    ("file_io", "payload", "type_name"),
    [
        (NpyFileIO(), [1, 2, 3], "builtins.list"),
        (NpyFileIO(), np.array([object()]), "numpy.ndarray"),
        (NpyFileIO(), np.ma.masked_array([1, 2], mask=[False, True]), "numpy.ma.MaskedArray"),
        (NpzFileIO(), {"a": [1]}, "builtins.dict"),
        (NpzFileIO(), {"a": np.ma.masked_array([1.0], mask=[True])}, "builtins.dict"),
        (NpzFileIO(), np.arange(3), "numpy.ndarray"),
        (JsonFileIO(), {1, 2}, "builtins.set"),
        (JsonFileIO(), {"x": float("nan")}, "builtins.dict"),
        (TextFileIO(), b"bytes", "builtins.bytes"),
        (BytesFileIO(), "text", "builtins.str"),
        (PickleFileIO(), lambda x: x, "builtins.function"),
    ],
    ids=[
        "npy-list",
        "npy-object",
        "npy-masked",
        "npz-list",
        "npz-masked",
        "npz-array",
        "json-set",
        "json-nan",
        "text-bytes",
        "bytes-str",
        "pickle-lambda",
    ],
)
def test_unwritable_payload_raises_naming_type_io_and_fix(
    file_io: FileIO[Any], payload: Any, type_name: str
) -> None:
    """save() of a payload the IO cannot write raises PayloadSerializationError naming the type, the IO and a fix."""
    with pytest.raises(PayloadSerializationError) as excinfo:
        file_io.save(payload, io.BytesIO())
    message = str(excinfo.value)
    assert type_name in message
    assert type(file_io).__name__ in message
    assert any(
        fix in message for fix in ("use ", "Use ", "convert", "Convert", "pass a payload_io")
    )
    assert isinstance(excinfo.value, TypeError)


@dataclass
class _Params(PersistableParams):
    kind: str


class _AnyPayloadP(Persistable[Any, _Params]):
    def __init__(self, store: Store, file_io: FileIO[Any], payload: Any) -> None:
        super().__init__(store, _Params(kind=file_io.name), None, payload_io=file_io)
        self._value = payload

    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        return self._value


def _files(store: Store) -> list[str]:
    if isinstance(store, LocalStore):
        if not store.root.exists():
            return []
        return sorted(
            p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file()
        )
    assert isinstance(store, MemoryStore)
    return sorted(store.files)


@pytest.mark.parametrize(
    ("file_io", "payload"),
    [
        (NpyFileIO(), [1.0, 2.0]),
        (PickleFileIO(), lambda x: x),
        (JsonFileIO(), {"a", "b"}),
        (NpzFileIO(), {"a": "text"}),
        (TextFileIO(), 42),
    ],
    ids=["npy-list", "pickle-lambda", "json-set", "npz-str", "text-int"],
)
def test_unwritable_payload_in_generate_leaves_nothing_in_the_store(
    local_or_memory_store: Store, file_io: FileIO[Any], payload: Any
) -> None:
    """generate() with a payload the IO cannot write raises PayloadSerializationError and the store holds no artifact file."""
    store = local_or_memory_store
    persistable = _AnyPayloadP(store, file_io, payload)
    with pytest.raises(PayloadSerializationError) as excinfo:
        persistable.generate()
    assert type(file_io).__name__ in str(excinfo.value)
    assert not persistable.exists()
    # Lock files and released leases are bookkeeping, not artifacts.
    leftovers = [
        f
        for f in _files(store)
        if not f.startswith((".persistable/locks/", ".persistable/leases/"))
    ]
    assert leftovers == []
    assert list(store.iter_artifacts()) == []


def test_pickle_error_raised_mid_write_leaves_no_staging_files(local_store: LocalStore) -> None:
    """A pickle that fails after writing some bytes leaves the local staging area empty."""
    payload = [np.arange(1000)] * 5 + [lambda: None]
    persistable = _AnyPayloadP(local_store, PickleFileIO(), payload)
    with pytest.raises(PayloadSerializationError):
        persistable.generate()
    staging = local_store.root / ".persistable" / "staging"
    assert not staging.exists() or list(staging.iterdir()) == []
    assert not (local_store.root / persistable.payload_name).exists()


@pytest.mark.parametrize(
    ("file_io", "payload"),
    [
        (PickleFileIO(), {"a": [1, 2], "b": np.arange(3)}),
        (JsonFileIO(), {"a": [1, 2.5, None, "x"]}),
        (NpyFileIO(), np.asfortranarray(np.arange(6.0).reshape(2, 3))),
        (NpzFileIO(compressed=True), {"file": np.arange(4), "b": np.ones((2, 2))}),
        (TextFileIO(), "héllo\nwörld\n"),
        (BytesFileIO(), bytes(range(256))),
    ],
    ids=["pickle", "json", "npy", "npz", "text", "bytes"],
)
def test_every_builtin_io_roundtrips_through_a_store(
    local_or_memory_store: Store, file_io: FileIO[Any], payload: Any
) -> None:
    """Each built-in FileIO persists into a store and loads back the same payload from a fresh instance."""
    store = local_or_memory_store
    _AnyPayloadP(store, file_io, payload).generate()
    fresh = _AnyPayloadP(store, file_io, None)
    fresh.load(verify=True)
    assert_same_payload(payload, fresh.payload)
    assert fresh.metadata["payload_io"] == file_io.name
    assert fresh.metadata["payload_file"] == f"payload{file_io.suffix}"


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12.0).reshape(3, 4),
        np.asfortranarray(np.arange(24, dtype=np.int16).reshape(2, 3, 4)),
        np.zeros((0, 3)),
        np.array(5.5),
        np.array(["a", "bc"]),
        np.zeros(3, dtype=[("x", "<f4"), ("y", "<i8")]),
    ],
    ids=["c-order", "fortran", "empty", "0-d", "unicode", "structured"],
)
def test_npy_load_from_an_in_memory_download_is_exact_and_writable(array: Any) -> None:
    """NpyFileIO.load of an in-memory buffer (how object-store downloads arrive) returns an equal, writable array."""
    buffer = io.BytesIO()
    NpyFileIO().save(array, buffer)
    loaded = NpyFileIO().load(io.BytesIO(buffer.getvalue()))
    assert loaded.dtype == array.dtype
    assert loaded.shape == array.shape
    assert np.array_equal(loaded, array)
    assert loaded.flags.writeable
