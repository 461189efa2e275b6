"""Bad inputs: each gives a clear error, and nothing is written to the store.

"Nothing written" is checked on the real folder: no artifact folder and no staging
leftover (lock files under ``.persistable/locks`` are allowed: they are names to
lock, not data). docs/errors.md lists these tests beside each error.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from persistable import JsonFileIO, LocalStore, NpyFileIO, Persistable, PersistableParams
from persistable.exceptions import (
    InvalidParamsError,
    InvalidPayloadError,
    InvalidPayloadNameError,
    PayloadSerializationError,
    ReadOnlyStoreError,
    StoreConfigurationError,
    UnhashableParamError,
)

WORKER = Path(__file__).resolve().parent / "reliability_worker.py"


@dataclass(frozen=True)
class SizeParams(PersistableParams):
    """How many items."""

    n: int


class Items(Persistable[Any, SizeParams]):
    """A list of n ints, pickled."""

    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        return list(range(self.params.n))


def written_files(root: Path) -> list[str]:
    """Files under ``root`` other than lock files: what a failed call must not leave."""
    if not root.exists():
        return []
    found = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not relative.startswith(".persistable/locks/"):
            found.append(relative)
    return found


def assert_nothing_written(root: Path) -> None:
    """No artifact and no staging leftover in the store folder."""
    assert written_files(root) == []
    staging = root / ".persistable" / "staging"
    assert not staging.exists() or list(staging.iterdir()) == []


def test_params_that_are_not_a_dataclass_are_refused(tmp_path: Path) -> None:
    """A dict, a PersistableParams subclass without @dataclass, or a dataclass not derived from PersistableParams raise InvalidParamsError at construction."""

    class NotDataclass(PersistableParams):
        n = 3

    @dataclass
    class PlainDataclass:
        n: int

    for params in ({"n": 3}, NotDataclass(), PlainDataclass(3)):
        with pytest.raises(
            InvalidParamsError,
            match=r"must be an instance of a @dataclass subclass of PersistableParams",
        ):
            Items(tmp_path / "store", params)  # type: ignore[arg-type]
    assert not (tmp_path / "store").exists()


def test_unhashable_params_are_refused_naming_the_field(tmp_path: Path) -> None:
    """A params field without a stable encoding raises UnhashableParamError naming the field, before anything is written."""

    @dataclass
    class OddParams(PersistableParams):
        thing: Any

    item = Items(tmp_path / "store", OddParams(thing=object()))  # type: ignore[arg-type]
    with pytest.raises(UnhashableParamError, match=r"thing"):
        item.load_generate()
    assert not (tmp_path / "store").exists()


def test_data_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    """A data_dir that is a file raises StoreConfigurationError at construction and the file is untouched."""
    path = tmp_path / "not-a-folder"
    path.write_bytes(b"data")
    with pytest.raises(StoreConfigurationError, match=r"is a file, expected a directory"):
        Items(path, SizeParams(n=1))
    assert path.read_bytes() == b"data"


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[str]:
    """Make ``folder`` unwritable for this process with a real OS mechanism; yields which.

    Permission bits do not stop root, so as root the folder is made immutable
    (``chattr +i``, which stops root too); otherwise it is ``chmod 0o500``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        folder.chmod(0o500)
        try:
            yield "chmod 0o500"
        finally:
            folder.chmod(0o700)
        return
    chattr = shutil.which("chattr")
    assert chattr is not None, "tests run as root need chattr to make a folder unwritable"
    subprocess.run([chattr, "+i", str(folder)], check=True)
    try:
        yield "chattr +i (running as root)"
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)


def test_unwritable_directory_is_refused_before_generating(tmp_path: Path) -> None:
    """A data_dir the process cannot write raises ReadOnlyStoreError before generating, and nothing is written."""
    root = tmp_path / "store"
    generated = []

    class Counted(Items):
        def _generate_payload(self, **untracked_payload_params: Any) -> Any:
            generated.append(1)
            return [1]

    with unwritable(root) as how:
        with pytest.raises(ReadOnlyStoreError, match=r"is not writable by this user"):
            Counted(root, SizeParams(n=1)).load_generate()
        with pytest.raises(ReadOnlyStoreError):
            Counted(root, SizeParams(n=1)).generate()
    print(f"\n[bad inputs] unwritable folder made with {how}")
    assert generated == []
    assert list(root.iterdir()) == []


def test_read_only_store_flag_is_refused_before_generating(tmp_path: Path) -> None:
    """A store opened with read_only=True raises ReadOnlyStoreError on load_generate() of a missing key and writes nothing."""
    root = tmp_path / "store"
    with pytest.raises(ReadOnlyStoreError, match=r"is read-only"):
        Items(LocalStore(root, read_only=True), SizeParams(n=1)).load_generate()
    assert not root.exists()


def test_payload_the_fileio_cannot_write_is_refused_and_nothing_is_committed(
    tmp_path: Path,
) -> None:
    """A payload the FileIO cannot serialize raises PayloadSerializationError naming the IO and the type, and nothing is committed."""
    root = tmp_path / "store"

    class SetPayload(Persistable[Any, SizeParams]):
        def _generate_payload(self, **untracked_payload_params: Any) -> Any:
            return {"values": {1, 2, 3}}  # a set is not JSON

    class ListPayload(Persistable[Any, SizeParams]):
        def _generate_payload(self, **untracked_payload_params: Any) -> Any:
            return [1, 2, 3]  # not an ndarray

    with pytest.raises(PayloadSerializationError, match=r"JsonFileIO"):
        SetPayload(root, SizeParams(n=1), payload_io=JsonFileIO()).load_generate()
    with pytest.raises(
        PayloadSerializationError,
        match=r"NpyFileIO expected a numpy.ndarray but the payload is a builtins.list",
    ):
        ListPayload(root, SizeParams(n=1), payload_io=NpyFileIO()).load_generate()
    assert_nothing_written(root)


class GenerationFailed(RuntimeError):
    """The error the failing generator raises."""


FAILURE = GenerationFailed("the instrument was offline")


class Failing(Persistable[NDArray[np.uint8], SizeParams]):
    """A generator that always raises the same exception object."""

    default_payload_io = NpyFileIO()

    def _generate_payload(self, **untracked_payload_params: Any) -> NDArray[np.uint8]:
        raise FAILURE


def test_generate_payload_that_raises_propagates_unchanged_and_releases_the_lock(
    tmp_path: Path,
) -> None:
    """An exception from _generate_payload propagates as the same object, nothing is committed, and another process gets the lock at once."""
    root = tmp_path / "store"
    item = Failing(root, SizeParams(n=1), payload_name="blob")
    with pytest.raises(GenerationFailed) as caught:
        item.load_generate()
    assert caught.value is FAILURE
    assert_nothing_written(root)
    # This process is still alive; if it still held the lock, the other process would wait.
    config = {
        "store": {"kind": "local", "path": str(root)},
        "mode": "lock",
        "key": item.key,
        "timeout": 1.0,
    }
    result = subprocess.run(
        [sys.executable, str(WORKER), json.dumps(config)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert result.stdout.splitlines() == ["ready", "locked"]


def test_payload_rejected_by_validate_payload_is_not_committed(tmp_path: Path) -> None:
    """A payload that _validate_payload rejects raises that error and nothing is committed."""
    root = tmp_path / "store"

    class Picky(Items):
        def _validate_payload(self, payload: Any) -> None:
            if len(payload) < 5:
                raise InvalidPayloadError(f"expected at least 5 items, got {len(payload)}")

    with pytest.raises(InvalidPayloadError, match=r"expected at least 5 items, got 2"):
        Picky(root, SizeParams(n=2)).load_generate()
    assert_nothing_written(root)


@pytest.mark.parametrize(
    "name", ["../escape", "a/b", "/abs", ".hidden", "", "a\\b", "..", "x" * 201, "-dash"]
)
def test_payload_name_that_could_escape_the_store_is_refused(tmp_path: Path, name: str) -> None:
    """A payload_name that is not one plain folder name raises InvalidPayloadNameError at construction."""
    with pytest.raises(InvalidPayloadNameError, match=r"payload_name .* is not allowed"):
        Items(tmp_path / "store", SizeParams(n=1), payload_name=name)
    assert not (tmp_path / "store").exists()
