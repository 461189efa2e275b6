"""The fast Cache hit on a local store: it checks the payload's checksum, and it is the path taken."""

from __future__ import annotations

import json
import os
import pickle
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xxhash
from _samples_nodes import Add, Cell, Normalize, Number, journal_entries

from persistable.exceptions import QuarantineWarning
from persistable.samples import Cache, Compose, SampleArtifact
from persistable.samples._hit import FULL_PATH, load_local_hit
from persistable.samples._run import SampleStepParams, plan
from persistable.store import LocalStore


def _payload(store: Path, payload_name: str) -> Path:
    (folder,) = (store / payload_name).iterdir()
    return folder / "payload.pkl"


def test_a_hit_does_not_go_through_the_general_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second call is served by the fast path: SampleArtifact.load is never called."""
    pipeline = Compose([Cache(Add(step=2.0))])
    made = pipeline(Number(id="a", value=1.0), store=tmp_path / "cache")

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the general load path was taken for a plain local hit")

    monkeypatch.setattr(SampleArtifact, "load", refuse)
    loaded = pipeline(Number(id="a", value=1.0), store=tmp_path / "cache")
    assert loaded.value == made.value == 3.0
    assert loaded.processing_history == made.processing_history


def test_a_changed_byte_of_a_cached_sample_is_caught_and_recomputed(tmp_path: Path) -> None:
    """One flipped byte in the image (same size, still a valid pickle) is never returned."""
    journal = tmp_path / "journal"
    store = tmp_path / "cache"
    image = np.arange(64, dtype=np.float32).reshape(8, 8)
    pipeline = Compose([Cache(Normalize(percentile=50.0, journal=str(journal)))])
    made = pipeline(Cell(id="c", image=image), store=store)
    pipeline(Cell(id="c", image=image), store=store)  # a hit: the record is memoised
    payload = _payload(store, "normalize")
    data = bytearray(payload.read_bytes())
    at = data.index(made.image.tobytes()) + 5  # inside the image's bytes
    data[at] ^= 0xFF
    payload.write_bytes(bytes(data))
    with pytest.warns(QuarantineWarning):
        again = pipeline(Cell(id="c", image=image), store=store)
    np.testing.assert_array_equal(again.image, made.image)
    assert journal_entries(journal, "Normalize") == ["c", "c"]  # computed again
    assert list((store / ".persistable" / "quarantine").rglob("payload.pkl"))
    np.testing.assert_array_equal(
        pipeline(Cell(id="c", image=image), store=store).image, made.image
    )


def test_a_replaced_artifact_is_read_again(tmp_path: Path) -> None:
    """A new metadata.json (another payload under the same key) replaces the memoised record."""
    store = tmp_path / "cache"
    pipeline = Compose([Cache(Add(step=1.0))])
    assert pipeline(Number(id="a"), store=store).value == 1.0
    assert pipeline(Number(id="a"), store=store).value == 1.0  # memoised
    payload = _payload(store, "add")
    metadata_path = payload.parent / "metadata.json"
    sample = Number(id="a", value=41.0)
    data = pickle.dumps(sample, protocol=5)
    payload.write_bytes(data)
    metadata = json.loads(metadata_path.read_text())
    metadata["files"]["payload.pkl"] = {
        "size": len(data),
        "xxh3_128": xxhash.xxh3_128_hexdigest(data),
    }
    staged = metadata_path.with_name("metadata.json.new")
    staged.write_text(json.dumps(metadata))
    os.replace(staged, metadata_path)  # as a commit does: a new file
    assert pipeline(Number(id="a"), store=store).value == 41.0


def test_the_fast_path_leaves_unusual_artifacts_to_the_general_path(tmp_path: Path) -> None:
    """An untrusted store, or a record naming another class, is not decided by the fast path."""
    store = tmp_path / "cache"
    sample = Number(id="a")
    pipeline = Compose([Cache(Add(step=1.0))])
    pipeline(sample, store=store)
    (planned,) = plan(pipeline.steps, sample)
    key = SampleArtifact(
        store,
        SampleStepParams(
            step=planned.name,
            params=planned.params,
            code=planned.code,
            sample_id="a",
            upstream=planned.key_in,
        ),
        payload_name="add",
    ).persist_hash
    assert load_local_hit(LocalStore(store), "add", key, None).value == 1.0
    assert load_local_hit(LocalStore(store, trusted=False), "add", key, None) is FULL_PATH
    metadata_path = _payload(store, "add").parent / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["code"]["class"] = "elsewhere.OtherClass"
    metadata_path.write_text(json.dumps(metadata))
    assert load_local_hit(LocalStore(store), "add", key, None) is FULL_PATH


def test_two_sample_classes_of_one_name_never_share_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """lab_a.Item and lab_b.Item with the same fields and values: each gets its own class back."""
    for module in ("lab_a", "lab_b"):
        (tmp_path / f"{module}.py").write_text(
            textwrap.dedent(
                """
                from persistable.samples import BaseSample

                class Item(BaseSample):
                    value: float = 0.0
                """
            )
        )
    monkeypatch.syspath_prepend(str(tmp_path))
    import lab_a  # type: ignore[import-not-found]
    import lab_b  # type: ignore[import-not-found]

    try:
        pipeline = Compose([Cache(Add(step=1.0))])
        first = pipeline(lab_a.Item(id="x", value=1.0), store=tmp_path / "cache")
        second = pipeline(lab_b.Item(id="x", value=1.0), store=tmp_path / "cache")
        assert type(first) is lab_a.Item
        assert type(second) is lab_b.Item
    finally:
        sys.modules.pop("lab_a", None)
        sys.modules.pop("lab_b", None)
