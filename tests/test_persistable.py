"""The Persistable lifecycle on local and memory stores: generate, persist, load, hooks and artifacts."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

import numpy as np
import pytest
import xxhash
from numpy.typing import NDArray

from persistable import (
    FileIO,
    LocalStore,
    MemoryStore,
    NpyFileIO,
    Persistable,
    PersistableParams,
    Store,
    __version__,
    untracked,
)
from persistable.exceptions import (
    ArtifactNotFoundError,
    DependencyError,
    InvalidParamsError,
    InvalidPayloadError,
    InvalidPayloadNameError,
    InvalidPayloadWarning,
    NoPayloadError,
    PayloadSerializationError,
    PersistableError,
)


@dataclass
class PointsParams(PersistableParams):
    n: int
    random_state: int = 100
    n_jobs: int = untracked(default=1)


class GaussianPointsP(Persistable[NDArray[np.float64], PointsParams]):
    """Counts its hook calls and records the untracked params each hook received."""

    calls: dict[str, list[dict[str, Any]]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls = {"generate": [], "post_generate": [], "post_load": [], "validate": []}

    def _generate_payload(self, **untracked_payload_params: Any) -> NDArray[np.float64]:
        self.calls["generate"].append(untracked_payload_params)
        self.logger.info("drawing %d points", self.params.n)
        rng = np.random.default_rng(self.params.random_state)
        return rng.normal(size=self.params.n)

    def _validate_payload(self, payload: NDArray[np.float64]) -> None:
        self.calls["validate"].append({})
        if payload.ndim != 1:
            raise InvalidPayloadError(f"expected a 1-D array, got {payload.ndim}-D")

    def _post_generate(self, **untracked_payload_params: Any) -> None:
        self.calls["post_generate"].append(untracked_payload_params)

    def _post_load(self, **untracked_payload_params: Any) -> None:
        self.calls["post_load"].append(untracked_payload_params)


@dataclass
class StatsParams(PersistableParams):
    scale: float = 1.0


class StatsP(Persistable[dict[str, float], StatsParams]):
    def __init__(
        self, store: Store, params: StatsParams, points: GaussianPointsP, **kwargs: Any
    ) -> None:
        super().__init__(store, params, [points], **kwargs)
        self.points = points

    def _generate_payload(self, **untracked_payload_params: Any) -> dict[str, float]:
        data = self.points.payload * self.params.scale
        return {"mean": float(data.mean()), "std": float(data.std())}


def _points(store: Store, n: int = 5, **kwargs: Any) -> GaussianPointsP:
    return GaussianPointsP(store, PointsParams(n=n), None, **kwargs)


def _tree(store: Store) -> list[str]:
    """Every file of the store, except lock files and released leases (bookkeeping, not artifacts)."""
    if isinstance(store, LocalStore):
        if not store.root.exists():
            return []
        paths = [p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file()]
    else:
        assert isinstance(store, MemoryStore)
        paths = list(store.files)
    return sorted(
        p for p in paths if not p.startswith((".persistable/locks/", ".persistable/leases/"))
    )


def _read(store: Store, p: Persistable[Any, Any], name: str) -> bytes:
    return store.read_bytes(f"{p.payload_name}/{p.persist_hash}/{name}")


# -- generate / persist / load -----------------------------------------------------------


def test_generate_persists_by_default(local_or_memory_store: Store) -> None:
    """generate() makes the payload and commits payload, params.json and metadata.json (with the short generation log)."""
    p = _points(local_or_memory_store)
    p.generate()
    assert p.exists()
    assert p.payload.shape == (5,)
    prefix = f"gaussian_points_p/{p.persist_hash}/"
    assert _tree(local_or_memory_store) == [
        prefix + name for name in ("metadata.json", "params.json", "payload.pkl")
    ]
    assert "drawing 5 points" in p.metadata["generation_log"]


def test_generate_without_persist_writes_nothing(local_or_memory_store: Store) -> None:
    """generate(persist=False) sets the payload and leaves the store empty; persist() then commits it."""
    p = _points(local_or_memory_store)
    p.generate(persist=False)
    assert p.payload.shape == (5,)
    assert not p.exists()
    assert _tree(local_or_memory_store) == []
    p.persist()
    assert p.exists()
    loaded = _points(local_or_memory_store)
    loaded.load()
    np.testing.assert_array_equal(loaded.payload, p.payload)


def test_persist_after_generate_keeps_duration_and_log(local_or_memory_store: Store) -> None:
    """persist() after generate(persist=False) records the generation's duration and log; after load() none."""
    p = _points(local_or_memory_store)
    p.generate(persist=False)
    p.persist()
    assert isinstance(p.metadata["generation_duration_s"], float)
    assert "drawing 5 points" in p.artifact.read_log()
    other = _points(local_or_memory_store, payload_name="copy")
    other._set_payload(p.payload)
    other.persist()
    assert other.metadata["generation_duration_s"] is None


def test_persist_without_payload_raises(local_or_memory_store: Store) -> None:
    """persist() before any generate or load raises NoPayloadError and writes nothing."""
    p = _points(local_or_memory_store)
    with pytest.raises(NoPayloadError, match="generate"):
        p.persist()
    assert _tree(local_or_memory_store) == []


def test_load_missing_artifact_raises_a_file_not_found_error(local_or_memory_store: Store) -> None:
    """load() of params never persisted raises ArtifactNotFoundError, which is a FileNotFoundError."""
    p = _points(local_or_memory_store)
    with pytest.raises(FileNotFoundError) as excinfo:
        p.load()
    assert isinstance(excinfo.value, ArtifactNotFoundError)
    assert isinstance(excinfo.value, PersistableError)
    assert "gaussian_points_p" in str(excinfo.value)
    assert p.persist_hash in str(excinfo.value)
    assert p.calls["generate"] == []


def test_load_generate_generates_once_then_loads(local_or_memory_store: Store) -> None:
    """load_generate() generates on the first call only; later instances load the same payload."""
    first = _points(local_or_memory_store)
    first.load_generate()
    assert len(first.calls["generate"]) == 1
    assert first.calls["post_load"] == []
    for _ in range(3):
        again = _points(local_or_memory_store)
        again.load_generate()
        assert again.calls["generate"] == []
        assert len(again.calls["post_load"]) == 1
        np.testing.assert_array_equal(again.payload, first.payload)


def test_payload_is_lazy(local_or_memory_store: Store) -> None:
    """Accessing .payload generates (or loads) on first access only."""
    p = _points(local_or_memory_store)
    assert p.calls["generate"] == []
    payload = p.payload
    assert len(p.calls["generate"]) == 1
    assert p.payload is payload
    assert len(p.calls["generate"]) == 1
    other = _points(local_or_memory_store)
    np.testing.assert_array_equal(other.payload, payload)
    assert other.calls["generate"] == []
    assert len(other.calls["post_load"]) == 1


def test_reset_payload_forgets_it_and_reloads(local_or_memory_store: Store) -> None:
    """reset_payload() drops the payload from memory; the next access loads the artifact."""
    p = _points(local_or_memory_store)
    p.generate()
    p.reset_payload()
    with pytest.raises(NoPayloadError):
        p.persist()
    assert p.payload.shape == (5,)
    assert len(p.calls["generate"]) == 1
    assert len(p.calls["post_load"]) == 1
    assert p.exists()


def test_validate_payload_checks_current_or_given_payload(local_or_memory_store: Store) -> None:
    """validate_payload() needs a payload, validates the current one, or the one passed."""
    p = _points(local_or_memory_store)
    with pytest.raises(NoPayloadError, match="generate or load"):
        p.validate_payload()
    p.generate(persist=False)
    p.validate_payload()
    with pytest.raises(InvalidPayloadError, match="1-D"):
        p.validate_payload(np.zeros((2, 2)))


class _TwoDPointsP(GaussianPointsP):
    def _generate_payload(self, **untracked_payload_params: Any) -> NDArray[np.float64]:
        return np.zeros((2, 2))


def test_invalid_generated_payload_raises_and_writes_nothing(local_or_memory_store: Store) -> None:
    """A payload rejected by _validate_payload raises InvalidPayloadError; nothing is persisted."""
    p = _TwoDPointsP(local_or_memory_store, PointsParams(n=4), None)
    with pytest.raises(InvalidPayloadError):
        p.generate()
    assert not p.exists()
    assert _tree(local_or_memory_store) == []
    with pytest.raises(InvalidPayloadError):
        p.load_generate()
    assert not p.exists()
    assert p.calls["post_generate"] == []


class _LenientP(GaussianPointsP):
    """Writes 2-D payloads without validation, so that GaussianPointsP later finds them invalid."""

    def _generate_payload(self, **untracked_payload_params: Any) -> NDArray[np.float64]:
        return np.zeros((2, 2))

    def _validate_payload(self, payload: NDArray[np.float64]) -> None:
        pass


@pytest.mark.filterwarnings("ignore::persistable.exceptions.ForeignArtifactWarning")
def test_load_of_invalid_payload_raises_or_warns(local_or_memory_store: Store) -> None:
    """load() raises when the stored payload fails validation; with warn_if_validation_fails it warns and loads."""
    _LenientP(
        local_or_memory_store, PointsParams(n=4), None, payload_name="gaussian_points_p"
    ).generate()
    strict = _points(local_or_memory_store, n=4)
    with pytest.raises(InvalidPayloadError):
        strict.load()
    with pytest.warns(InvalidPayloadWarning, match="failed validation"):
        strict.load(warn_if_validation_fails=True)
    assert strict.payload.shape == (2, 2)
    assert len(strict.calls["post_load"]) == 1


def test_untracked_params_reach_every_hook(local_or_memory_store: Store) -> None:
    """Untracked params given to generate/load/load_generate reach _generate_payload, _post_generate and _post_load."""
    p = _points(local_or_memory_store)
    p.generate(progress=True, workers=3)
    assert p.calls["generate"] == [{"progress": True, "workers": 3}]
    assert p.calls["post_generate"] == [{"progress": True, "workers": 3}]
    p.load(workers=4)
    assert p.calls["post_load"] == [{"workers": 4}]
    fresh = _points(local_or_memory_store, n=6)
    fresh.load_generate(flag="a")
    assert fresh.calls["generate"] == [{"flag": "a"}]
    assert fresh.calls["post_generate"] == [{"flag": "a"}]
    again = _points(local_or_memory_store, n=6)
    again.load_generate(flag="b")
    assert again.calls["post_load"] == [{"flag": "b"}]


def test_untracked_params_do_not_change_the_key(local_or_memory_store: Store) -> None:
    """An untracked params field and untracked keyword arguments leave the artifact shared."""
    first = GaussianPointsP(local_or_memory_store, PointsParams(n=3, n_jobs=1), None)
    first.load_generate(progress=True)
    second = GaussianPointsP(local_or_memory_store, PointsParams(n=3, n_jobs=8), None)
    second.load_generate(progress=False)
    assert second.calls["generate"] == []


class _JobsP(GaussianPointsP):
    def _generate_payload(self, **untracked_payload_params: Any) -> NDArray[np.float64]:
        self.calls["generate"].append({"n_jobs": self.params.n_jobs})
        return np.zeros(self.params.n)


def test_untracked_field_is_usable_and_absent_from_artifacts(local_or_memory_store: Store) -> None:
    """An untracked params field reaches _generate_payload but appears in neither params.json nor the key tree."""
    p = _JobsP(local_or_memory_store, PointsParams(n=2, n_jobs=6))
    p.generate()
    assert p.calls["generate"] == [{"n_jobs": 6}]
    params_json = json.loads(_read(local_or_memory_store, p, "params.json"))
    assert params_json == {"n": 2, "random_state": 100}
    assert "n_jobs" not in json.dumps(p.key_tree())
    assert "n_jobs" not in _read(local_or_memory_store, p, "metadata.json").decode()


def test_generate_again_replaces_the_committed_artifact(
    local_or_memory_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """An explicit generate() (and persist()) of an existing key writes, unless the store has those very bytes; load_generate() keeps it."""
    p = _points(local_or_memory_store)
    p.generate()
    metadata = _read(local_or_memory_store, p, "metadata.json")
    p.load_generate()
    assert _read(local_or_memory_store, p, "metadata.json") == metadata
    with caplog.at_level(logging.INFO):
        p.generate()
        p.persist()
    # The same random_state gives the same bytes: the stored artifact is kept, twice.
    kept = [r for r in caplog.records if "same bytes already; kept it" in r.getMessage()]
    assert len(kept) == 2
    assert not any("Replaced the stored artifact" in r.getMessage() for r in caplog.records)
    assert _read(local_or_memory_store, p, "metadata.json") == metadata
    assert len(p.calls["generate"]) == 2
    assert local_or_memory_store.list_keys(p.payload_name) == [p.key]
    p.verify()


# -- identity and dependencies --------------------------------------------------------


def test_params_tree_nests_dependencies_by_payload_name(local_or_memory_store: Store) -> None:
    """params_tree is the params dict plus, under each dependency's payload name, its params_tree."""
    points = _points(local_or_memory_store, n=7)
    stats = StatsP(local_or_memory_store, StatsParams(scale=2.0), points)
    assert points.params_tree == {"n": 7, "random_state": 100}
    assert stats.params_tree == {"scale": 2.0, "gaussian_points_p": {"n": 7, "random_state": 100}}

    @dataclass
    class TopParams(PersistableParams):
        level: int = 3

    class TopP(Persistable[int, TopParams]):
        def _generate_payload(self, **untracked_payload_params: Any) -> int:
            return 0

    top = TopP(local_or_memory_store, TopParams(), [stats])
    assert top.params_tree == {"level": 3, "stats_p": stats.params_tree}


def test_downstream_generates_its_upstream_and_records_its_key(
    local_or_memory_store: Store,
) -> None:
    """A downstream load_generate() generates the upstream through .payload and records the upstream key."""
    points = _points(local_or_memory_store, n=50)
    stats = StatsP(local_or_memory_store, StatsParams(scale=2.0), points)
    stats.load_generate()
    assert points.exists()
    assert stats.exists()
    assert stats.metadata["dependencies"] == {"gaussian_points_p": points.persist_hash}
    assert stats.payload["std"] == pytest.approx(2.0 * float(points.payload.std()))
    reloaded = StatsP(
        local_or_memory_store, StatsParams(scale=2.0), _points(local_or_memory_store, n=50)
    )
    reloaded.load_generate()
    assert reloaded.points.calls["generate"] == []
    assert reloaded.points.calls["post_load"] == []
    assert reloaded.payload == stats.payload


def test_upstream_change_gives_a_new_downstream_artifact(local_or_memory_store: Store) -> None:
    """Changing an upstream param changes the downstream key and makes a second downstream artifact."""
    a = StatsP(local_or_memory_store, StatsParams(), _points(local_or_memory_store, n=5))
    b = StatsP(local_or_memory_store, StatsParams(), _points(local_or_memory_store, n=6))
    a.load_generate()
    b.load_generate()
    assert a.persist_hash != b.persist_hash
    assert local_or_memory_store.list_keys("stats_p") == sorted([a.persist_hash, b.persist_hash])


def test_two_dependencies_with_one_name_raise(local_or_memory_store: Store) -> None:
    """Two tracked dependencies with the same payload_name raise DependencyError at construction."""

    class PairP(Persistable[int, StatsParams]):
        def _generate_payload(self, **untracked_payload_params: Any) -> int:
            return 0

    with pytest.raises(DependencyError, match="distinct payload_name"):
        PairP(
            local_or_memory_store,
            StatsParams(),
            [_points(local_or_memory_store, 1), _points(local_or_memory_store, 2)],
        )
    PairP(
        local_or_memory_store,
        StatsParams(),
        [
            _points(local_or_memory_store, 1),
            _points(local_or_memory_store, 2, payload_name="other"),
        ],
    )


def test_dependency_named_like_a_params_field_raises(local_or_memory_store: Store) -> None:
    """A tracked dependency whose payload_name equals a tracked params field raises DependencyError (params.json would hide one)."""

    @dataclass
    class ScaleParams(PersistableParams):
        points: int = 1
        workers: int = untracked(default=1)

    class ScaleP(Persistable[int, ScaleParams]):
        def _generate_payload(self, **untracked_payload_params: Any) -> int:
            return 0

    with pytest.raises(DependencyError, match="'points'"):
        ScaleP(
            local_or_memory_store,
            ScaleParams(),
            [_points(local_or_memory_store, payload_name="points")],
        )
    ScaleP(
        local_or_memory_store,
        ScaleParams(),
        [_points(local_or_memory_store, payload_name="workers")],
    )


def test_persist_hash_is_the_key_and_names_the_folder(local_or_memory_store: Store) -> None:
    """persist_hash equals key, names the artifact folder, and artifact_path points at it."""
    p = _points(local_or_memory_store)
    assert p.key == p.persist_hash
    assert p.artifact_dir == f"gaussian_points_p/{p.persist_hash}"
    p.generate()
    if isinstance(local_or_memory_store, LocalStore):
        assert p.artifact_path == local_or_memory_store.root / "gaussian_points_p" / p.persist_hash
        assert isinstance(p.artifact_path, Path)
        assert (p.artifact_path / "metadata.json").is_file()
    else:
        assert p.artifact_path == f"{local_or_memory_store.url}/gaussian_points_p/{p.persist_hash}"


def test_exists_follows_the_store(local_or_memory_store: Store) -> None:
    """exists() is False before generate, True after, and False for other params."""
    p = _points(local_or_memory_store)
    assert not p.exists()
    p.generate()
    assert p.exists()
    assert not _points(local_or_memory_store, n=6).exists()


# -- artifacts --------------------------------------------------------------------------


def test_metadata_records_provenance_and_checksums(local_or_memory_store: Store) -> None:
    """metadata.json holds key, schemes, UTC time, duration, host, user, versions, dependencies, IO and file checksums."""
    points = _points(local_or_memory_store)
    stats = StatsP(local_or_memory_store, StatsParams(), points)
    stats.load_generate()
    metadata = stats.metadata
    assert metadata["key"] == stats.persist_hash
    assert metadata["key_scheme"] == 1
    assert metadata["metadata_scheme"] == 1
    assert metadata["payload_name"] == "stats_p"
    created = dt.datetime.fromisoformat(metadata["created_utc"])
    assert created.utcoffset() == dt.timedelta(0)
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 60
    assert isinstance(metadata["generation_duration_s"], float)
    assert metadata["generation_duration_s"] >= 0
    assert metadata["host"]
    assert metadata["user"]
    assert metadata["versions"]["python"] == platform.python_version()
    assert metadata["versions"]["persistable"] == __version__
    assert metadata["versions"]["numpy"] == np.__version__
    assert metadata["dependencies"] == {"gaussian_points_p": points.persist_hash}
    assert metadata["payload_io"] == "pickle"
    assert metadata["code"]["class"].endswith("StatsP")
    assert set(metadata["files"]) == {"payload.pkl", "params.json"}
    for name, record in metadata["files"].items():
        data = _read(local_or_memory_store, stats, name)
        assert record["size"] == len(data)
        assert record["xxh3_128"] == xxhash.xxh3_128_hexdigest(data)


def test_params_json_is_indented_and_holds_the_lineage(local_or_memory_store: Store) -> None:
    """params.json is indented, human-readable JSON: own params, and each dependency's payload name and key."""
    points = _points(local_or_memory_store)
    stats = StatsP(local_or_memory_store, StatsParams(scale=0.5), points)
    stats.load_generate()
    text = _read(local_or_memory_store, stats, "params.json").decode("utf-8")
    assert json.loads(text) == stats.lineage()
    assert json.loads(text)["gaussian_points_p"] == {
        "payload_name": "gaussian_points_p",
        "key": points.persist_hash,
    }
    assert '\n  "gaussian_points_p": {\n    "key": "k1-' in text
    assert text.endswith("\n")


@dataclass
class _TextParams(PersistableParams):
    label: str


class _TextP(Persistable[str, _TextParams]):
    def _generate_payload(self, **untracked_payload_params: Any) -> str:
        return self.params.label


def test_params_json_keeps_unicode_readable_and_exact(local_or_memory_store: Store) -> None:
    """params.json shows non-ASCII text as is and round-trips even a lone surrogate exactly."""
    p = _TextP(local_or_memory_store, _TextParams(label="café-\udcff"))
    p.generate()
    raw = _read(local_or_memory_store, p, "params.json")
    assert "café".encode() in raw
    assert json.loads(raw.decode("utf-8")) == p.params_tree == {"label": "café-\udcff"}
    assert _TextP(local_or_memory_store, _TextParams(label="café-\udcff")).exists()
    assert not _TextP(local_or_memory_store, _TextParams(label="café-\\udcff")).exists()


def test_generation_log_holds_each_message_once(local_or_memory_store: Store) -> None:
    """generation.log holds the generation's messages, each exactly once, also with verbose instances around."""
    for _ in range(3):
        _points(local_or_memory_store, n=9, verbose=True)
    p = _points(local_or_memory_store, n=9, verbose=True)
    p.generate()
    lines = p.artifact.read_log().splitlines()
    assert any("drawing 9 points" in line for line in lines)
    assert any("Generating gaussian_points_p" in line for line in lines)
    assert len(lines) == len(set(lines)), lines
    assert sum("drawing 9 points" in line for line in lines) == 1


def test_generation_log_with_a_user_logger_has_no_duplicates(local_or_memory_store: Store) -> None:
    """With a user's own logger the generation log still holds each message once."""
    import logging

    p = _points(local_or_memory_store, n=8, logger=logging.getLogger("user.pipeline.points"))
    p.generate()
    lines = p.artifact.read_log().splitlines()
    assert sum("drawing 8 points" in line for line in lines) == 1
    assert len(lines) == len(set(lines)), lines


# -- payload names ------------------------------------------------------------------------


class HTTPResponseCacheP(GaussianPointsP):
    pass


def test_payload_name_defaults_to_snake_case_class_name(local_or_memory_store: Store) -> None:
    """The default payload_name is the snake_case class name."""
    assert _points(local_or_memory_store).payload_name == "gaussian_points_p"
    assert (
        HTTPResponseCacheP(local_or_memory_store, PointsParams(1)).payload_name
        == "http_response_cache_p"
    )
    assert (
        StatsP(local_or_memory_store, StatsParams(), _points(local_or_memory_store)).payload_name
        == "stats_p"
    )


@pytest.mark.parametrize(
    "name",
    [
        "",
        "a/b",
        "..",
        ".",
        ".hidden",
        "a\\b",
        "../x",
        "x/../y",
        "a" * 201,
        "-dash",
        "sp ace",
        "a\x00b",
        "nl\n",
        "trailing.",
    ],
    ids=[
        "empty",
        "slash",
        "dotdot",
        "dot",
        "hidden",
        "backslash",
        "parent",
        "inner-parent",
        "long",
        "dash",
        "space",
        "nul",
        "newline",
        "trailing-dot",
    ],
)
def test_invalid_payload_names_are_rejected(local_or_memory_store: Store, name: str) -> None:
    """Payload names that could escape the store or collide raise InvalidPayloadNameError (a ValueError)."""
    with pytest.raises(InvalidPayloadNameError) as excinfo:
        _points(local_or_memory_store, payload_name=name)
    assert isinstance(excinfo.value, ValueError)
    assert _tree(local_or_memory_store) == []


def test_non_str_payload_name_is_rejected(local_or_memory_store: Store) -> None:
    """A payload_name that is not a str raises InvalidPayloadNameError naming its type."""
    with pytest.raises(InvalidPayloadNameError, match="must be a str"):
        _points(local_or_memory_store, payload_name=3)


@pytest.mark.parametrize("name", ["model.v2", "a", "A_b-1", "x" * 200, "v1.2.3"])
def test_names_with_dots_are_fine(local_or_memory_store: Store, name: str) -> None:
    """Names with dots, dashes and up to 200 characters work and name the artifact folder."""
    p = _points(local_or_memory_store, payload_name=name)
    p.generate()
    assert local_or_memory_store.list_keys(name) == [p.persist_hash]


def test_suffix_with_separator_is_rejected(local_or_memory_store: Store) -> None:
    """A payload_file_suffix with a path separator raises InvalidPayloadNameError."""
    with pytest.raises(InvalidPayloadNameError, match="separators"):
        _points(local_or_memory_store, payload_file_suffix="/../x")


def test_params_must_be_a_persistable_params_dataclass(local_or_memory_store: Store) -> None:
    """params that are not a PersistableParams dataclass raise InvalidParamsError naming the fix."""
    with pytest.raises(InvalidParamsError, match="@dataclass"):
        GaussianPointsP(local_or_memory_store, {"n": 3}, None)


def test_missing_generate_hook_raises_not_implemented(local_or_memory_store: Store) -> None:
    """A subclass without _generate_payload raises NotImplementedError naming the method."""

    class EmptyP(Persistable[int, StatsParams]):
        pass

    with pytest.raises(NotImplementedError, match=r"EmptyP\._generate_payload"):
        EmptyP(local_or_memory_store, StatsParams()).generate()


# -- nothing on disk until a write, nothing visible after a failure ------------------------------


def test_constructing_and_querying_creates_nothing(tmp_path: Path) -> None:
    """Constructing, hashing, exists(), params_tree and a failed load() leave data_dir uncreated."""
    data_dir = tmp_path / "data"
    p = GaussianPointsP(data_dir, PointsParams(n=3), None, verbose=True)
    stats = StatsP(LocalStore(data_dir), StatsParams(), p)
    assert p.persist_hash != stats.persist_hash
    assert stats.params_tree["gaussian_points_p"] == {"n": 3, "random_state": 100}
    assert not p.exists()
    with pytest.raises(ArtifactNotFoundError):
        stats.load()
    assert not data_dir.exists()


def test_constructing_on_a_str_data_dir_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """data_dir may be a str or a Path, relative to the working directory, like in the seed README."""
    monkeypatch.chdir(tmp_path)
    p = GaussianPointsP("example-data", PointsParams(n=3), None)
    q = GaussianPointsP(Path("example-data"), PointsParams(n=3), None)
    p.generate()
    assert q.exists()
    assert (
        tmp_path / "example-data" / "gaussian_points_p" / p.persist_hash / "metadata.json"
    ).is_file()


class BoomError(Exception):
    pass


class _FailingP(GaussianPointsP):
    def _generate_payload(self, **untracked_payload_params: Any) -> NDArray[np.float64]:
        self.logger.info("about to fail")
        raise BoomError("boom")


def test_failed_generate_propagates_unchanged_and_leaves_nothing(
    local_or_memory_store: Store,
) -> None:
    """An exception in _generate_payload propagates as is; no artifact folder, empty staging area."""
    p = _FailingP(local_or_memory_store, PointsParams(n=3), None)
    for call in (p.generate, p.load_generate):
        with pytest.raises(BoomError, match=r"^boom$"):
            call()
    assert not p.exists()
    assert _tree(local_or_memory_store) == []
    assert local_or_memory_store.list_payload_names() == []
    with pytest.raises(NoPayloadError):
        p.persist()


class _HalfWritingIO(FileIO[Any]):
    """Writes some bytes, then fails like a full disk."""

    name: ClassVar[str] = "half"
    suffix: ClassVar[str] = ".half"

    def save(self, payload: Any, stream: IO[bytes]) -> None:
        stream.write(b"x" * 100_000)
        raise OSError(28, "No space left on device")

    def load(self, stream: IO[bytes]) -> Any:
        return stream.read()


def test_failed_persist_leaves_no_artifact_folder(local_or_memory_store: Store) -> None:
    """A write failing mid-file (disk full) propagates its OSError and leaves no <payload_name>/<key> folder."""
    p = _points(local_or_memory_store, payload_io=_HalfWritingIO())
    with pytest.raises(OSError, match="No space left") as excinfo:
        p.generate()
    assert excinfo.value.errno == 28
    assert not isinstance(excinfo.value, PayloadSerializationError)
    assert _tree(local_or_memory_store) == []
    if isinstance(local_or_memory_store, LocalStore):
        assert not (local_or_memory_store.root / "gaussian_points_p").exists()
        staging = local_or_memory_store.root / ".persistable" / "staging"
        assert list(staging.iterdir()) == []
    assert not p.exists()


def test_folder_without_metadata_is_not_an_artifact(local_or_memory_store: Store) -> None:
    """A complete-looking folder without metadata.json does not exist, does not load, and is replaced by load_generate."""
    p = _points(local_or_memory_store)
    p.generate()
    first_payload = p.payload
    for name in ("payload.pkl", "params.json"):
        assert _read(local_or_memory_store, p, name)
    path = f"{p.artifact_dir}/metadata.json"
    if isinstance(local_or_memory_store, LocalStore):
        (local_or_memory_store.root / path).unlink()
    else:
        assert isinstance(local_or_memory_store, MemoryStore)
        del local_or_memory_store.files[path]
    fresh = _points(local_or_memory_store)
    assert not fresh.exists()
    with pytest.raises(ArtifactNotFoundError):
        fresh.load()
    assert local_or_memory_store.list_keys("gaussian_points_p") == []
    fresh.load_generate()
    assert len(fresh.calls["generate"]) == 1
    assert fresh.exists()
    np.testing.assert_array_equal(fresh.payload, first_payload)


_CRASH_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from dataclasses import dataclass
    from typing import Any, IO

    import numpy as np
    from persistable import NpyFileIO, Persistable, PersistableParams

    class CrashingIO(NpyFileIO):
        def save(self, payload: Any, stream: IO[bytes]) -> None:
            stream.write(b"\\x93NUMPY partial")
            stream.flush()
            os._exit(17)  # the process dies mid-write: no exception handler, no clean-up

    @dataclass
    class Params(PersistableParams):
        n: int

    class CrashP(Persistable[Any, Params]):
        def _generate_payload(self, **untracked_payload_params: Any) -> Any:
            return np.arange(self.params.n)

    CrashP(sys.argv[1], Params(n=4), None, payload_io=CrashingIO()).load_generate()
    """
)


def test_process_killed_mid_write_leaves_nothing_visible(tmp_path: Path) -> None:
    """A process that dies while writing leaves no visible artifact; the next load_generate generates it."""
    data_dir = tmp_path / "data"
    script = tmp_path / "crash.py"
    script.write_text(_CRASH_SCRIPT)
    completed = subprocess.run(
        [sys.executable, str(script), str(data_dir)], check=False, capture_output=True
    )
    assert completed.returncode == 17, completed.stderr

    @dataclass
    class Params(PersistableParams):
        n: int

    class CrashP(Persistable[Any, Params]):
        def _generate_payload(self, **untracked_payload_params: Any) -> Any:
            return np.arange(self.params.n)

    p = CrashP(data_dir, Params(n=4), None, payload_io=NpyFileIO())
    assert not p.exists()
    assert not (data_dir / "crash_p").exists()
    assert list(LocalStore(data_dir).iter_artifacts()) == []
    staged = list((data_dir / ".persistable" / "staging").iterdir())
    assert len(staged) == 1  # the dead writer's leftovers sit in the hidden staging area only
    p.load_generate()
    np.testing.assert_array_equal(p.payload, np.arange(4))
    assert list(LocalStore(data_dir).iter_artifacts()) == [("crash_p", p.persist_hash)]


def _make_points_class() -> type[GaussianPointsP]:
    class FreshPointsP(GaussianPointsP):
        pass

    return FreshPointsP


def test_many_threads_persisting_new_classes_at_once(local_or_memory_store: Store) -> None:
    """Threads that persist instances of never-persisted classes at the same time all succeed (source fingerprints)."""
    classes = [_make_points_class() for _ in range(8)]
    barrier = threading.Barrier(len(classes))
    errors: list[BaseException] = []

    def work(index: int) -> None:
        p = classes[index](
            local_or_memory_store, PointsParams(n=index + 1), payload_name=f"fresh_{index}"
        )
        barrier.wait(timeout=30)
        try:
            p.generate()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(classes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    for index in range(len(classes)):
        metadata = local_or_memory_store.read_metadata(
            f"fresh_{index}", local_or_memory_store.list_keys(f"fresh_{index}")[0]
        )
        assert len(metadata["code"]["source_sha256"]) == 64


@pytest.mark.slow
def test_source_fingerprints_are_safe_in_threads(tmp_path: Path) -> None:
    """code_fingerprint() from many threads at once always records the source hash (ast.parse is not thread-safe on 3.11)."""
    import gc
    import importlib.util
    import time

    from persistable._artifact import code_fingerprint

    body = "".join(
        f"def helper_{i}(x):\n    return [x + {i} for _ in range(3)]\n\n" for i in range(150)
    )
    module_file = tmp_path / "fresh_classes_module.py"
    module_file.write_text(
        "def make():\n    class Fresh:\n        pass\n\n    return Fresh\n\n" + body
    )
    spec = importlib.util.spec_from_file_location("fresh_classes_module", module_file)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fresh_classes_module"] = module
    spec.loader.exec_module(module)
    results: list[str | None] = []

    def yield_in_gc(phase: str, info: dict[str, int]) -> None:
        time.sleep(0)  # lets another thread run in the middle of building an AST

    def work() -> None:
        for _ in range(15):
            results.append(code_fingerprint(module.make()))

    interval, thresholds = sys.getswitchinterval(), gc.get_threshold()
    sys.setswitchinterval(1e-6)
    gc.set_threshold(50, 1, 1)
    gc.callbacks.append(yield_in_gc)
    try:
        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        gc.callbacks.remove(yield_in_gc)
        gc.set_threshold(*thresholds)
        sys.setswitchinterval(interval)
        del sys.modules["fresh_classes_module"]
    assert len(results) == 60
    assert None not in results


def test_memory_and_local_stores_give_the_same_key(
    tmp_path: Path, memory_store: MemoryStore
) -> None:
    """The key depends on params, not on the store: the same params hash alike on every store."""
    assert _points(LocalStore(tmp_path)).persist_hash == _points(memory_store).persist_hash


def test_repr_names_class_payload_and_store(memory_store: MemoryStore) -> None:
    """repr() shows the class, payload name, params and store URL."""
    text = repr(_points(memory_store))
    assert text.startswith("GaussianPointsP(payload_name='gaussian_points_p'")
    assert memory_store.url in text


@dataclass
class _ArrayParams(PersistableParams):
    values: Any
    labels: list[str] = field(default_factory=list)


class _ArrayP(Persistable[NDArray[Any], _ArrayParams]):
    default_payload_io = NpyFileIO()

    def _generate_payload(self, **untracked_payload_params: Any) -> NDArray[Any]:
        return np.asarray(self.params.values) * 2


def test_array_params_and_default_payload_io(local_or_memory_store: Store) -> None:
    """Array-valued params hash by content; a class default_payload_io is used when none is passed."""
    a = _ArrayP(local_or_memory_store, _ArrayParams(np.arange(4.0)[::-1].copy()))
    b = _ArrayP(local_or_memory_store, _ArrayParams(np.arange(4.0)[::-1]))
    assert a.persist_hash == b.persist_hash
    a.load_generate()
    assert a.metadata["payload_io"] == "npy"
    assert a.payload_file == "payload.npy"
    b.load_generate()
    np.testing.assert_array_equal(b.payload, [6.0, 4.0, 2.0, 0.0])
    assert (
        json.loads(_read(local_or_memory_store, a, "params.json"))["values"]["__type__"]
        == "ndarray"
    )


def test_generate_works_without_user_environment(tmp_path: Path) -> None:
    """Generating in a process without HOME, USER or LOGNAME works and still records a user in metadata.json."""
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "USER", "LOGNAME", "USERNAME")}
    script = textwrap.dedent(
        """
        import json, sys
        from dataclasses import dataclass
        from persistable import Persistable, PersistableParams

        @dataclass
        class Params(PersistableParams):
            n: int

        class EnvP(Persistable[int, Params]):
            def _generate_payload(self, **untracked_payload_params):
                return self.params.n

        p = EnvP(sys.argv[1], Params(n=1))
        p.generate()
        print(json.dumps(p.metadata))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "data")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    metadata = json.loads(completed.stdout)
    assert metadata["user"]
    assert metadata["payload_name"] == "env_p"
