"""FileIOs by name: the name metadata.json records is enough to load an artifact."""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any, ClassVar

import pytest

from persistable import FileIO, JsonFileIO, NpyFileIO, Persistable, PersistableParams, PickleFileIO
from persistable.exceptions import UnknownFileIOError
from persistable.io import file_io_for, file_io_names, register_file_io
from persistable.store import Store


@dataclass
class _Params(PersistableParams):
    n: int


class _Doubles(Persistable[Any, _Params]):
    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        return {"n": self.params.n, "doubles": [2 * i for i in range(self.params.n)]}


def test_builtin_names_give_their_fileio() -> None:
    """Every built-in FileIO is registered under its own name."""
    for name in ("pickle", "json", "npy", "npz", "text", "bytes"):
        assert name in file_io_names()
        assert file_io_for(name).name == name
    assert isinstance(file_io_for("npy"), NpyFileIO)


def test_unknown_name_is_a_clear_error() -> None:
    """An unregistered name raises UnknownFileIOError listing the known names."""
    with pytest.raises(
        UnknownFileIOError,
        match=r"No FileIO named .no-such-io. .*known: bytes, command-zip, csv, directory, h5file, hdf5",
    ):
        file_io_for("no-such-io")


def test_register_by_decorator_and_by_dotted_path() -> None:
    """A FileIO registers by class decorator or by a lazy 'module:attribute' string; a clash is refused."""

    @register_file_io
    class _Reversed(FileIO[bytes]):
        name: ClassVar[str] = "test-reversed"
        suffix: ClassVar[str] = ".rev"

        def save(self, payload: bytes, stream: IO[bytes]) -> None:
            stream.write(payload[::-1])

        def load(self, stream: IO[bytes]) -> bytes:
            return stream.read()[::-1]

    assert isinstance(file_io_for("test-reversed"), _Reversed)
    register_file_io("test-json-alias", "persistable.io._builtin:JsonFileIO")
    assert isinstance(file_io_for("test-json-alias"), JsonFileIO)
    with pytest.raises(ValueError, match="already registered"):
        register_file_io("test-json-alias", "persistable.io._builtin:TextFileIO")
    register_file_io("test-missing-module", "no_such_module_here:Thing")
    with pytest.raises(UnknownFileIOError, match="no_such_module_here"):
        file_io_for("test-missing-module")


def test_a_different_payload_io_loads_with_the_recorded_one(local_or_memory_store: Store) -> None:
    """An artifact written as JSON loads as JSON even when the persistable now asks for pickle, and is not quarantined."""
    store = local_or_memory_store
    writer = _Doubles(store, _Params(3), payload_name="doubles", payload_io=JsonFileIO())
    writer.load_generate()
    reader = _Doubles(store, _Params(3), payload_name="doubles", payload_io=PickleFileIO())
    reader.load_generate()
    assert reader.payload == {"n": 3, "doubles": [0, 2, 4]}
    assert store.list_dir(".persistable/quarantine") == []
    assert reader.artifact.payload_io_name == "json"
