"""explain(): whether the artifact exists, else the nearest one and what differs (params, upstream, code, version)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import persistable._content as content
from persistable import File, Persistable, PersistableParams
from persistable._fingerprint import CodeFingerprint
from persistable.store import Store


@pytest.fixture(autouse=True)
def _private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PERSISTABLE_CACHE_DIR", str(tmp_path / "cache"))
    content.content_digest_cache.clear_memory()
    yield
    content.content_digest_cache.clear_memory()


@dataclass
class RawParams(PersistableParams):
    path: File


@dataclass
class FitParams(PersistableParams):
    alpha: float = 0.1
    depth: int = 3


class LoadRaw(Persistable[str, RawParams]):
    def _generate_payload(self, **untracked_payload_params: Any) -> str:
        return self.params.path.read_text()


class Fit(Persistable[str, FitParams]):
    def _generate_payload(self, **untracked_payload_params: Any) -> str:
        (raw,) = self.tracked_persistable_dependencies
        return f"{raw.payload}:{self.params.alpha}"


def _pipeline(store: Store, data: Path, **fit: Any) -> Fit:
    raw = LoadRaw(store, RawParams(File(data)), payload_name="load_raw")
    return Fit(store, FitParams(**fit), [raw])


def _data(tmp_path: Path, text: str = "1,2\n") -> Path:
    path = tmp_path / "data" / "raw.csv"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def test_existing_artifact_is_reported_with_its_location(
    local_store: Store, tmp_path: Path
) -> None:
    """When the artifact exists, explain() says so and where it is."""
    fit = _pipeline(local_store, _data(tmp_path))
    fit.load_generate()
    explanation = fit.explain()
    assert explanation.exists
    assert str(explanation).startswith("The artifact of Fit key k1-")
    assert str(fit.artifact_path) in str(explanation)


def test_no_artifact_at_all(local_store: Store, tmp_path: Path) -> None:
    """With no artifact of the payload name, explain() says nothing exists to compare."""
    explanation = _pipeline(local_store, _data(tmp_path)).explain()
    assert not explanation.exists
    assert explanation.nearest is None
    assert "no other fit artifact" in str(explanation)


def test_params_difference_names_the_field_and_both_values(
    local_or_memory_store: Store, tmp_path: Path
) -> None:
    """The nearest of several artifacts is found and its differing params field shown old -> new."""
    data = _data(tmp_path)
    for alpha, depth in [(0.1, 3), (0.5, 7), (0.3, 9)]:
        _pipeline(local_or_memory_store, data, alpha=alpha, depth=depth).load_generate()
    wanted = _pipeline(local_or_memory_store, data, alpha=0.2, depth=3)
    explanation = wanted.explain()
    assert explanation.compared == 3
    assert explanation.nearest == _pipeline(local_or_memory_store, data).persist_hash
    assert [item.where for item in explanation.differences] == ["params.alpha"]
    assert "params.alpha: 0.1 -> 0.2" in str(explanation)
    assert str(explanation).startswith("No artifact for Fit key k1-")
    assert "the nearest of 3 existing fit artifacts" in str(explanation)


def test_upstream_difference_is_followed_to_the_changed_file(
    local_store: Store, tmp_path: Path
) -> None:
    """A changed upstream key is followed down to the upstream field: the file whose content changed."""
    data = _data(tmp_path)
    _pipeline(local_store, data).load_generate()
    data.write_text("3,4,5\n")
    explanation = _pipeline(local_store, data).explain()
    (upstream,) = explanation.differences
    assert upstream.where == "upstream load_raw"
    (detail,) = upstream.details
    assert detail.where == "params.path"
    text = str(explanation)
    assert "upstream load_raw: key k1-" in text
    assert f"params.path: content of {data.as_posix()} changed (size 4 -> 6" in text


def test_code_difference_names_the_changed_functions(
    local_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With code_changes = "rerun", a changed function gives a new key; explain() names the function."""

    class Rerun(Fit):
        code_changes = "rerun"

    raw = LoadRaw(local_store, RawParams(File(_data(tmp_path))), payload_name="load_raw")
    made = Rerun(local_store, FitParams(), [raw])
    made.load_generate()
    real = made.code_fingerprint()
    edited = CodeFingerprint(
        digest="0" * 64,
        functions={**real.functions, f"{__name__}.helper": "1" * 64},
    )
    monkeypatch.setattr(Rerun, "code_fingerprint", lambda self: edited)
    explanation = Rerun(local_store, FitParams(), [raw]).explain()
    assert [item.where for item in explanation.differences] == ["code"]
    assert f"code (part of the key): {__name__}.helper changed" in str(explanation)


def test_version_difference(local_store: Store, tmp_path: Path) -> None:
    """A bumped version is reported as the difference."""
    data = _data(tmp_path)
    raw = LoadRaw(local_store, RawParams(File(data)), payload_name="load_raw")
    Fit(local_store, FitParams(), [raw]).load_generate()

    class Bumped(Fit):
        version = 2

    explanation = Bumped(local_store, FitParams(), [raw], payload_name="fit").explain()
    assert "version None -> 2" in str(explanation)


def test_html_view_escapes(local_store: Store, tmp_path: Path) -> None:
    """The notebook view is the text, HTML-escaped."""
    data = _data(tmp_path)
    _pipeline(local_store, data).load_generate()
    explanation = _pipeline(local_store, data, alpha=0.7).explain()
    assert explanation._repr_html_().startswith("<pre>No artifact")
    assert "-&gt;" in explanation._repr_html_()


def test_explain_on_s3(s3_bucket: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    """explain() reads the candidates from an object store as well."""
    url, options = s3_bucket
    data = _data(tmp_path)
    for alpha, depth in ((0.1, 3), (0.4, 9)):
        raw = LoadRaw(url, RawParams(File(data)), payload_name="load_raw", storage_options=options)
        Fit(url, FitParams(alpha, depth), [raw], storage_options=options).load_generate()
    raw = LoadRaw(url, RawParams(File(data)), payload_name="load_raw", storage_options=options)
    wanted = Fit(url, FitParams(alpha=0.45, depth=9), [raw], storage_options=options)
    explanation = wanted.explain()
    assert explanation.compared == 2
    assert "params.alpha: 0.4 -> 0.45" in str(explanation)
