"""``import persistable`` loads only what every use needs; the rest loads on first use."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: Modules that ``import persistable`` must not load (each costs import time and is
#: needed only by some payloads or features).
DEFERRED = [
    "tempfile",
    "shutil",
    "random",
    "bz2",
    "lzma",
    "hashlib",
    "persistable._fingerprint",
    "persistable._map",
    "persistable._pristine",
    "persistable.artifact",
    "persistable.io._folder",
    "persistable.steps",
    "persistable.io._csv",
    "persistable.io._hdf5",
    "persistable.io._image",
    "persistable.io._parquet",
    "persistable.io._tiff",
    "persistable.io._zarr",
]


def _loaded_after(code: str) -> list[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps([m for m in {DEFERRED!r} if m in sys.modules]))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_import_persistable_defers_the_optional_modules() -> None:
    assert _loaded_after("import persistable") == []


def test_deferred_names_load_on_first_use() -> None:
    """``persistable.step`` and the science FileIOs resolve when asked for, from their modules."""
    import persistable
    import persistable.io

    assert persistable.step.__module__ == "persistable.steps._step"
    assert persistable.io.CsvFileIO.__module__ == "persistable.io._csv"
    from persistable.io import ZarrFileIO

    assert ZarrFileIO.__module__ == "persistable.io._zarr"
    assert {"CsvFileIO", "ZarrFileIO", "image_file_io"} <= set(dir(persistable.io))
    assert "persistable.steps" in _loaded_after("from persistable import step")


def test_artifact_package_is_an_attribute_after_a_plain_import() -> None:
    """``persistable.artifact`` loads on first use, also when reached as an attribute."""
    code = (
        "import persistable\n"
        "print(json.dumps([persistable.artifact.Artifact.__name__, 'hashlib' in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", f"import json, sys\n{code}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == ["Artifact", False]


def test_unknown_names_still_raise_attribute_error() -> None:
    import persistable
    import persistable.io

    for module in (persistable, persistable.io):
        with pytest.raises(AttributeError, match="NoSuchName"):
            getattr(module, "NoSuchName")  # noqa: B009
