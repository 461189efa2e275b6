"""1.x code runs unchanged: its import paths and names, path-based FileIOs, PersistableParam."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import v1_pipeline
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

import persistable
import persistable.base
import persistable.data
import persistable.io
import persistable.logging
from persistable import PersistableParams
from persistable.data import PersistableParam
from persistable.exceptions import ExplainedNotImplementedError
from persistable.io import DictEncodable, FileIO
from persistable.testing import FileIOTests


@pytest.fixture(autouse=True)
def _fresh_journal() -> Iterator[None]:
    v1_pipeline.GENERATED.clear()
    yield
    v1_pipeline.GENERATED.clear()


def test_the_1x_import_paths_give_the_package_s_own_classes() -> None:
    """persistable.data, persistable.base and persistable.io hold the same classes as the package."""
    assert persistable.data.PersistableParams is persistable.PersistableParams
    assert persistable.base.Persistable is persistable.Persistable
    assert persistable.base.PickleFileIO is persistable.PickleFileIO
    assert persistable.io.FileIO is persistable.FileIO
    assert issubclass(PersistableParams, DictEncodable)
    assert callable(persistable.logging.get_logger)


@dataclasses.dataclass
class WrappedParams(PersistableParams):
    quantile: float
    # 1.x's spelling of a default (the wrapper is not mutated, so sharing it is harmless).
    n_jobs: PersistableParam[int] = PersistableParam(1, exclude_from_file_hash=True)  # noqa: RUF009
    seed: PersistableParam[int] = PersistableParam(7)  # noqa: RUF009


def test_persistable_param_excluded_from_the_hash_really_leaves_the_key() -> None:
    """An excluded PersistableParam leaves the key and params.json; a kept one keys as its value."""
    one = WrappedParams(quantile=0.5)
    other = WrappedParams(quantile=0.5, n_jobs=PersistableParam(8, exclude_from_file_hash=True))
    assert one.to_dict() == other.to_dict() == {"quantile": 0.5, "seed": 7}


def test_excluded_persistable_param_gives_one_artifact(tmp_path: Path) -> None:
    """Two params differing only in an excluded PersistableParam load the same artifact."""
    _, scaled, summary = v1_pipeline.build(tmp_path)
    summary.load_generate()
    again = v1_pipeline.SummaryP(
        tmp_path,
        v1_pipeline.SummaryParams(
            quantile=0.9, n_jobs=PersistableParam(4, exclude_from_file_hash=True)
        ),
        scaled_p=scaled,
    )
    assert again.key == summary.key
    again.load()
    assert again.payload == summary.payload
    params_json = json.loads((Path(summary.artifact_path) / "params.json").read_text())
    assert "n_jobs" not in params_json


def test_custom_type_encoder_map_defines_identity() -> None:
    """_custom_type_encoder_map entries encode values for the key: what they map together shares a key."""

    @dataclasses.dataclass
    class Params(PersistableParams):
        source: Path

        @property
        def _custom_type_encoder_map(self) -> dict[type[Any], Callable[[Any], Any]]:
            return {Path: lambda path: path.name}

    assert Params(Path("a/data.csv")).to_dict() == {"source": "data.csv"}
    assert Params(Path("a/data.csv")).to_dict() == Params(Path("b/data.csv")).to_dict()
    assert Params(Path("a/data.csv")).get_str_repr() == "{'source': 'data.csv'}"


def test_1x_params_methods() -> None:
    """get_str_repr is 1.x's str(to_dict()); get_md5_hash is 1.x's md5 of repr, with a warning."""
    points = v1_pipeline.PointsParams(n=3)
    assert points.get_str_repr() == (
        "{'n': 3, 'distribution': 'UNIFORM', 'source': 'raw/points', 'random_state': 100}"
    )
    with pytest.warns(DeprecationWarning, match="not the key"):
        digest = points.get_md5_hash()
    # 1.3.1: md5(str(params).encode()), i.e. of the dataclass repr.
    import hashlib

    assert digest == hashlib.md5(repr(points).encode()).hexdigest()


def test_dict_almost_equal_as_in_1x(caplog: pytest.LogCaptureFixture) -> None:
    """dict_almost_equal compares floats and arrays within tolerance, nested dicts recursively."""
    first = {"a": 1.0, "b": {"c": np.array([1.0, 2.0])}, "d": "x"}
    close = {"a": 1.0 + 1e-9, "b": {"c": np.array([1.0, 2.0 + 1e-9])}, "d": "x"}
    assert DictEncodable.dict_almost_equal(first, close)
    assert PersistableParams.dict_almost_equal(first, close)
    with caplog.at_level(logging.WARNING, logger="persistable"):
        assert not DictEncodable.dict_almost_equal(first, {**close, "a": 1.1}, verbose=True)
    assert "a: 1.0 != 1.1" in caplog.text
    assert not DictEncodable.dict_almost_equal(first, {"a": 1.0})


def test_dict_encodable_mixin_as_in_1x() -> None:
    """DictEncodable.to_dict encodes attributes as 1.x did: paths as str, enums by name."""

    class Config(DictEncodable):
        def __init__(self) -> None:
            self.path = Path("x") / "y"
            self.kind = v1_pipeline.Distribution.NORMAL
            self.inner = v1_pipeline.PointsParams(n=2)

    assert Config().to_dict() == {
        "path": "x/y",
        "kind": "NORMAL",
        "inner": {"n": 2, "distribution": "UNIFORM", "source": "raw/points", "random_state": 100},
    }


def test_a_fileio_with_neither_interface_says_which_methods_to_write() -> None:
    """A FileIO subclass implementing neither pair fails at construction, naming both pairs."""

    class Nothing(FileIO[Any]):
        pass

    with pytest.raises(TypeError, match=r"save\(payload, stream\).*_load\(filepath\)"):
        Nothing()


def test_path_based_fileio_defaults_and_1x_calls(tmp_path: Path) -> None:
    """A 1.x FileIO gets a name and the .persistable suffix, and 1.x's save/load(filepath) work."""
    file_io = v1_pipeline.CsvFileIO()
    assert file_io.path_based
    assert file_io.name == "v1_pipeline:CsvFileIO"
    assert file_io.suffix == ".persistable"
    target = tmp_path / "new" / "points.csv"
    file_io.save(np.array([1.5, 2.5]), target)  # type: ignore[arg-type]  # 1.x's call
    assert target.read_text().splitlines()[0].startswith("1.5")
    np.testing.assert_array_equal(file_io.load(target), [1.5, 2.5])  # type: ignore[arg-type]


def test_a_read_only_1x_fileio_refuses_to_save_with_a_clear_error(tmp_path: Path) -> None:
    """A 1.x FileIO with only _load (allowed in 1.x) loads, and saving says what is missing."""

    class ReadOnly(FileIO[str]):
        def _load(self, filepath: Path, **kwargs: Any) -> str:
            return filepath.read_text()

    (tmp_path / "x").write_text("hello")
    assert ReadOnly().load_path(tmp_path / "x") == "hello"
    with pytest.raises(ExplainedNotImplementedError, match=r"ReadOnly\._save"):
        ReadOnly().save("x", tmp_path / "y")  # type: ignore[arg-type]


class TestCsvFileIO(FileIOTests[NDArray[np.float64]]):
    """The 1.x path-based CSV FileIO passes the FileIO suite (non-seekable streams, local files)."""

    max_examples = 10

    def make_io(self) -> FileIO[NDArray[np.float64]]:
        return v1_pipeline.CsvFileIO()

    def payloads(self) -> st.SearchStrategy[NDArray[np.float64]]:
        return hnp.arrays(
            np.float64,
            st.integers(1, 20),
            elements=st.floats(allow_nan=False, allow_infinity=False, width=64),
        )


def _run_pipeline(data_dir: Any) -> float:
    _, _, summary = v1_pipeline.build(data_dir)
    summary.load_generate()
    return summary.payload


def test_the_1x_pipeline_runs_unchanged_on_a_local_folder(tmp_path: Path) -> None:
    """The 1.x-style module generates once, then loads, with its CSV payload as a real CSV file."""
    first = _run_pipeline(tmp_path)
    assert sorted(v1_pipeline.GENERATED) == ["points_p", "scaled_p", "summary_p"]
    v1_pipeline.GENERATED.clear()
    assert _run_pipeline(tmp_path) == first
    assert v1_pipeline.GENERATED == []
    points, _, _ = v1_pipeline.build(tmp_path)
    artifact = Path(points.artifact_path)
    assert points.payload_file == "payload.csv"
    lines = (artifact / "payload.csv").read_text().splitlines()
    assert len(lines) == 50
    assert float(lines[0]) == points.payload[0]
    assert points.metadata["payload_io"] == "v1_pipeline:CsvFileIO"
    with pytest.warns(DeprecationWarning, match="artifact_path"):
        assert points.persist_filepath == artifact / "payload.csv"


@pytest.mark.s3
def test_the_1x_pipeline_runs_unchanged_on_s3(
    s3_bucket: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    """On S3 the path-based FileIO writes through a temporary file; keys equal the local ones."""
    url, options = s3_bucket
    first = _run_pipeline(url)
    assert sorted(v1_pipeline.GENERATED) == ["points_p", "scaled_p", "summary_p"]
    v1_pipeline.GENERATED.clear()
    assert _run_pipeline(url) == first
    assert v1_pipeline.GENERATED == []
    points, _, summary = v1_pipeline.build(url)
    store = persistable.make_store(url, storage_options=options)
    text = store.read_bytes(f"points_p/{points.key}/payload.csv").decode()
    assert float(text.splitlines()[0]) == points.payload[0]
    summary.verify()
    _, _, local = v1_pipeline.build(tmp_path)
    assert local.key == summary.key


def test_a_path_based_fileio_that_writes_nothing_is_refused(tmp_path: Path) -> None:
    """A 1.x _save that writes no file fails with a clear error and commits nothing."""

    class Forgetful(FileIO[Any]):
        def _save(self, payload: Any, filepath: Path, **kwargs: Any) -> None:
            pass

        def _load(self, filepath: Path, **kwargs: Any) -> Any:
            return None

    points, _, _ = v1_pipeline.build(tmp_path)
    points.payload_io = Forgetful()
    with pytest.raises(persistable.exceptions.PayloadSerializationError, match="wrote no file"):
        points.generate()
    assert not points.exists()
