"""A reusable test suite for FileIOs whose payload is a folder of files (:class:`~persistable.io.FolderFileIO`).

Like :class:`~persistable.testing.FileIOTests`, subclass it and implement ``make_io``
and ``payloads``; every payload must come back through a local folder and through
artifacts on a local and a memory store (files checksummed and listed in metadata).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from persistable._artifact import file_record
from persistable._persistable import Persistable
from persistable.io import FolderFileIO, FolderLocation
from persistable.io._folder import _walk
from persistable.params import PersistableParams
from persistable.store import LocalStore, MemoryStore
from persistable.testing._fileio import assert_same_payload

__all__ = ["FolderFileIOTests"]

PayloadT = TypeVar("PayloadT")


@dataclass
class _Params(PersistableParams):
    number: int


class _Held(Persistable[Any, _Params]):
    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        return untracked_payload_params["payload"]


class FolderFileIOTests(Generic[PayloadT]):
    """The checks every folder FileIO passes; subclass it and implement :meth:`make_io` and :meth:`payloads`."""

    max_examples: int = 15

    def make_io(self) -> FolderFileIO[PayloadT]:
        """The FileIO under test."""
        raise NotImplementedError("FolderFileIOTests subclasses implement make_io().")

    def payloads(self) -> st.SearchStrategy[PayloadT]:
        """Payloads the FileIO must round-trip exactly."""
        raise NotImplementedError("FolderFileIOTests subclasses implement payloads().")

    def materialize(self, loaded: Any) -> Any:
        """Turn what ``load_folder`` returns (maybe lazy) into a comparable value."""
        return loaded

    def assert_same(self, expected: PayloadT, actual: Any) -> None:
        """Fail unless the loaded payload equals ``expected``."""
        assert_same_payload(expected, self.materialize(actual))

    def test_roundtrip_through_a_folder(self) -> None:
        """save_folder then load_folder on a local folder gives every payload back."""

        @settings(
            max_examples=self.max_examples,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(payload=self.payloads())
        def check(payload: PayloadT) -> None:
            file_io = self.make_io()
            with tempfile.TemporaryDirectory() as folder:
                file_io.check(payload)
                file_io.save_folder(payload, Path(folder))
                records = {name: file_record(Path(folder, name)) for name in _walk(Path(folder))}
                location = FolderLocation(LocalStore(folder), records, local=Path(folder))
                self.assert_same(payload, file_io.load_folder(location))

        check()

    def test_roundtrip_through_artifacts(self) -> None:
        """Through a local and a memory store the payload commits, verifies and loads back."""

        @settings(
            max_examples=max(3, self.max_examples // 3),
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(payload=self.payloads(), number=st.integers(0, 10**9))
        def check(payload: PayloadT, number: int) -> None:
            with tempfile.TemporaryDirectory() as folder:
                for store in (LocalStore(folder), MemoryStore(f"folder-io-tests-{number}")):
                    made = _Held(store, _Params(number), payload_io=self.make_io())
                    made.load_generate(payload=payload)
                    made.verify()
                    again = _Held(store, _Params(number), payload_io=self.make_io())
                    again.load(verify=True)
                    self.assert_same(payload, again.payload)
                    files = made.metadata["files"]
                    assert all(
                        name.startswith(f"{made.payload_file}/") or "/" not in name
                        for name in files
                    )
                MemoryStore.clear(f"folder-io-tests-{number}")

        check()

    def test_metadata_attributes(self) -> None:
        """The FileIO has a non-empty name and a suffix that starts with a dot."""
        file_io = self.make_io()
        assert file_io.name
        assert file_io.suffix.startswith(".")
        assert "/" not in file_io.suffix
        assert repr(file_io).startswith(type(file_io).__name__)
