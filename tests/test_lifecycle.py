"""generate() replaces, load_generate() keeps, delete() removes; warnings are shown once and point at the user's line."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from persistable import LocalStore, Persistable, PersistableParams
from persistable.exceptions import MissingPayloadClassError, QuarantineWarning, ReadOnlyStoreError
from persistable.store import Store


@dataclass
class _Params(PersistableParams):
    n: int


class _Versioned(Persistable[dict[str, int], _Params]):
    code = 1  # stands for the code of _generate_payload, which a user edits

    def _generate_payload(self, **untracked_payload_params: Any) -> dict[str, int]:
        return {"n": self.params.n, "code": type(self).code}


@pytest.fixture(autouse=True)
def _reset_code() -> None:
    _Versioned.code = 1


def test_generate_replaces_the_stored_artifact_and_says_so(
    local_or_memory_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """After a code change, generate() stores the new payload (WARNING 'Replaced'), never 'another writer'."""
    store = local_or_memory_store
    _Versioned(store, _Params(1)).load_generate()
    _Versioned.code = 2
    item = _Versioned(store, _Params(1))
    with caplog.at_level(logging.INFO):
        item.generate()
    assert item.payload == {"n": 1, "code": 2}
    fresh = _Versioned(store, _Params(1))
    fresh.load()
    assert fresh.payload == {"n": 1, "code": 2}
    replaced = [r for r in caplog.records if "Replaced the stored artifact" in r.getMessage()]
    assert len(replaced) == 1
    assert replaced[0].levelno == logging.WARNING
    assert not any("another writer" in r.getMessage() for r in caplog.records)
    assert store.list_keys(item.payload_name) == [item.key]


def test_first_generate_does_not_warn(
    local_or_memory_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """generate() of a key that has no artifact yet persists it without a warning."""
    with caplog.at_level(logging.INFO):
        _Versioned(local_or_memory_store, _Params(5)).generate()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_load_generate_never_replaces(local_or_memory_store: Store) -> None:
    """load_generate() loads the stored artifact even after a code change."""
    store = local_or_memory_store
    _Versioned(store, _Params(2)).load_generate()
    _Versioned.code = 2
    item = _Versioned(store, _Params(2))
    item.load_generate()
    assert item.payload == {"n": 2, "code": 1}


def test_delete_removes_the_artifact(local_or_memory_store: Store) -> None:
    """delete() removes the artifact (True), a second delete() finds nothing (False); load_generate makes it again."""
    store = local_or_memory_store
    item = _Versioned(store, _Params(3))
    item.load_generate()
    assert item.delete() is True
    assert not item.exists()
    assert store.list_keys(item.payload_name) == []
    assert item.delete() is False
    item.load_generate()
    assert item.exists()


def test_delete_on_a_read_only_store_changes_nothing(tmp_path: Path) -> None:
    """delete() through a read-only store raises ReadOnlyStoreError and the artifact stays."""
    item = _Versioned(tmp_path / "store", _Params(4))
    item.load_generate()
    reader = _Versioned(LocalStore(tmp_path / "store", read_only=True), _Params(4))
    with pytest.raises(ReadOnlyStoreError):
        reader.delete()
    assert item.exists()


def test_quarantine_warning_is_shown_once_at_the_users_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A truncated payload is quarantined with one QuarantineWarning attributed to this test file, and no WARNING log record."""
    item = _Versioned(tmp_path / "store", _Params(6))
    item.load_generate()
    payload = tmp_path / "store" / item.artifact_dir / "payload.pkl"
    payload.write_bytes(payload.read_bytes()[:-3])
    fresh = _Versioned(tmp_path / "store", _Params(6))
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO):
        warnings.simplefilter("always")
        fresh.load_generate()
    quarantine = [w for w in caught if issubclass(w.category, QuarantineWarning)]
    assert len(quarantine) == 1
    assert quarantine[0].filename == __file__
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert fresh.payload == {"n": 6, "code": 1}


def test_a_class_pickled_by_a_script_is_not_quarantined(tmp_path: Path) -> None:
    """An artifact a script wrote as __main__.Model raises MissingPayloadClassError here, naming the class; it stays and verifies."""
    script = tmp_path / "writer.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from dataclasses import dataclass
            from persistable import Persistable, PersistableParams

            @dataclass
            class ModelParams(PersistableParams):
                n: int

            class Model:
                def __init__(self, n):
                    self.n = n

            class Fit(Persistable[Model, ModelParams]):
                def _generate_payload(self, **kwargs):
                    return Model(self.params.n)

            Fit({str(tmp_path / "store")!r}, ModelParams(3), payload_name="fit").load_generate()
            """
        )
    )
    subprocess.run([sys.executable, str(script)], check=True, cwd=tmp_path)

    @dataclass
    class ModelParams(PersistableParams):
        n: int

    class Fit(Persistable[Any, ModelParams]):
        code_changes = "ignore"  # this reader's code is not the writer's

        def _generate_payload(self, **untracked_payload_params: Any) -> Any:
            raise AssertionError("must not regenerate a colleague's artifact")

    reader = Fit(tmp_path / "store", ModelParams(3), payload_name="fit")
    with pytest.raises(
        MissingPayloadClassError, match=r"__main__\.Model, which cannot be imported here"
    ):
        reader.load_generate()
    reader.verify()
    assert (tmp_path / "store" / reader.artifact_dir / "payload.pkl").is_file()
    assert not (tmp_path / "store" / ".persistable" / "quarantine").exists()


def test_html_views(local_or_memory_store: Store) -> None:
    """A persistable, a listing and an artifact render as escaped HTML with their status."""
    from persistable.artifact import list_artifacts

    item = _Versioned(local_or_memory_store, _Params(7))
    assert "missing" in item._repr_html_()
    item.load_generate()
    page = item._repr_html_()
    assert "committed" in page
    assert item.key in page
    assert "_versioned" in page
    assert item.payload_name in list_artifacts(local_or_memory_store)._repr_html_()
    assert "payload.pkl" in item.artifact._repr_html_()
