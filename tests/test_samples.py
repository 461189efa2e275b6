"""Samples, processors, Compose, Cache and Save: keys, history, copies, errors (datamultiproc's defects fixed)."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _samples_nodes import (
    Add,
    Cell,
    Normalize,
    Number,
    PlainSample,
    Scale,
    Segment,
    journal_entries,
)

from persistable.exceptions import InvalidSampleError, ProcessingError, UnhashableParamError
from persistable.samples import BaseSample, Cache, Compose, Processor, SampleArtifact, Save
from persistable.samples._run import plan
from persistable.store import LocalStore


def test_cache_key_covers_processor_params(tmp_path: Path) -> None:
    """Cache(Add(step=100)) after Cache(Add(step=1)) computes 100, not datamultiproc's stale 1."""
    store = tmp_path / "cache"
    first = Compose([Cache(Add(step=1))])(Number(id="a", value=0), store=store)
    second = Compose([Cache(Add(step=100))])(Number(id="a", value=0), store=store)
    assert first.value == 1
    assert second.value == 100


def test_a_relative_store_follows_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One pipeline called with store="cache" from two folders writes into each folder's cache."""
    pipeline = Compose([Cache(Add(step=1))])
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        assert pipeline(Number(id="a"), store="cache").value == 1
        assert LocalStore(tmp_path / name / "cache").list_keys("add")


def test_cache_hit_returns_the_subclass_with_every_field(tmp_path: Path) -> None:
    """A cache hit is a Cell with its image, mask and label, not a bare BaseSample."""
    journal = tmp_path / "journal"
    image = np.arange(16, dtype=np.float32).reshape(4, 4)
    pipeline = Compose(
        Cache(Normalize(percentile=90.0, journal=str(journal))), Segment(threshold=0.5)
    )
    cell = Cell(id="c1", image=image, label="neuron")
    made = pipeline(cell, store=tmp_path / "cache")
    loaded = pipeline(cell, store=tmp_path / "cache")
    assert journal_entries(journal, "Normalize") == ["c1"]  # the second run loaded
    assert type(loaded) is Cell
    assert loaded.label == "neuron"
    assert loaded.image.dtype == np.float32
    np.testing.assert_array_equal(loaded.image, made.image)
    assert loaded.mask is not None
    np.testing.assert_array_equal(loaded.mask, made.mask)
    assert loaded.processing_history == made.processing_history


def test_dataclass_samples_work_like_pydantic_ones(tmp_path: Path) -> None:
    """A dataclass with id and processing_history runs, caches and comes back as itself."""
    journal = tmp_path / "journal"
    pipeline = Compose([Cache(Add(step=2, journal=str(journal)))])
    first = pipeline(PlainSample(id="p", value=1.0), store=tmp_path / "cache")
    again = pipeline(PlainSample(id="p", value=1.0), store=tmp_path / "cache")
    assert type(again) is PlainSample
    assert again.value == first.value == 3.0
    assert journal_entries(journal) == ["p"]


def test_save_works_without_history_and_creates_its_folder(tmp_path: Path) -> None:
    """Save on a fresh sample (empty history) into a folder that does not exist yet writes it."""
    target = tmp_path / "not" / "there" / "yet"
    saved = Compose([Save(save_to_dir=target)])(Number(id="fresh", value=4.0))
    assert saved.processing_history == []
    store = LocalStore(target)
    [(name, key)] = list(store.iter_artifacts())
    assert name == "saved_samples"
    with (target / name / key / "payload.pkl").open("rb") as stream:
        assert pickle.load(stream) == saved


def test_save_always_writes_and_never_loads(tmp_path: Path) -> None:
    """A pipeline with Save (no Cache) runs its processors every time."""
    journal = tmp_path / "journal"
    pipeline = Compose([Add(step=1, journal=str(journal)), Save()])
    pipeline(Number(id="a"), store=tmp_path / "store")
    pipeline(Number(id="a"), store=tmp_path / "store")
    assert journal_entries(journal) == ["a", "a"]


def test_upstream_param_change_invalidates_the_cache(tmp_path: Path) -> None:
    """Changing Scale's factor before Cache(Add) recomputes Add; the same factor loads it."""
    journal = tmp_path / "journal"
    store = tmp_path / "cache"

    def pipeline(factor: float) -> Compose:
        return Compose([Scale(factor=factor), Cache(Add(step=1, journal=str(journal)))])

    assert pipeline(2.0)(Number(id="a", value=3.0), store=store).value == 7.0
    assert pipeline(2.0)(Number(id="a", value=3.0), store=store).value == 7.0
    assert pipeline(5.0)(Number(id="a", value=3.0), store=store).value == 16.0
    assert journal_entries(journal) == ["a", "a"]


def test_sample_content_is_part_of_the_key(tmp_path: Path) -> None:
    """Two samples with one id but different content do not share a cached result."""
    store = tmp_path / "cache"
    pipeline = Compose([Cache(Add(step=1))])
    assert pipeline(Number(id="a", value=1.0), store=store).value == 2.0
    assert pipeline(Number(id="a", value=10.0), store=store).value == 11.0


def test_code_change_invalidates_the_cache(tmp_path: Path) -> None:
    """Two versions of a processor's code give different keys; comments and blank lines do not."""
    body = """
        from persistable.samples import Processor

        class Twice(Processor):
            def process(self, sample):
                {line}
                return sample
    """
    keys = []
    for index, line in enumerate(
        [
            "sample.value = sample.value * 2",
            "sample.value = sample.value * 2  \n\n                # why",
            "sample.value = sample.value * 3",
        ]
    ):
        module = tmp_path / f"twice_{index}.py"
        module.write_text(textwrap.dedent(body).format(line=line))
        sys.path.insert(0, str(tmp_path))
        try:
            namespace: dict[str, Any] = {}
            exec(compile(f"import twice_{index} as m", "<test>", "exec"), namespace)
            twice = namespace["m"].Twice
        finally:
            sys.path.remove(str(tmp_path))
        keys.append(plan([twice()], Number(id="a"))[0].key_out)
    assert keys[0] == keys[1]
    assert keys[0] != keys[2]


def test_version_bump_invalidates_the_cache() -> None:
    """Processor.version is part of the code fingerprint."""

    class Bumped(Add):
        version = 2

    assert plan([Add()], Number(id="a"))[0].code != plan([Bumped()], Number(id="a"))[0].code


def test_processing_history_records_name_params_and_key(tmp_path: Path) -> None:
    """History holds (name, params, key) per processor; caching a step does not change the keys."""
    sample = Number(id="h", value=1.0)
    plain = Compose([Scale(factor=3.0), Add(step=1.0)])(sample)
    cached = Compose([Cache(Scale(factor=3.0)), Add(step=1.0), Save()])(sample, store=tmp_path)
    assert [entry[0] for entry in plain.processing_history] == ["Scale", "Add"]
    assert plain.processing_history[0][1] == {"factor": 3.0, "journal": ""}
    assert all(entry[2].startswith("k1-") for entry in plain.processing_history)
    assert plain.processing_history == cached.processing_history
    assert plain.value == cached.value == 4.0


def test_the_callers_sample_is_not_changed(tmp_path: Path) -> None:
    """Processors that change the sample in place work on a copy."""
    image = np.ones((3, 3), dtype=np.float32) * 4
    cell = Cell(id="c", image=image)
    out = Compose([Normalize(percentile=50.0), Segment(threshold=0.5), Save()])(
        cell, store=tmp_path
    )
    assert cell.processing_history == []
    assert cell.mask is None
    np.testing.assert_array_equal(cell.image, np.ones((3, 3), dtype=np.float32) * 4)
    assert out.mask is not None


def test_processing_error_carries_id_processor_and_original() -> None:
    """A failing processor raises ProcessingError with the sample id, its name and the cause."""
    with pytest.raises(ProcessingError, match=r"Add failed on sample 'x'") as caught:
        Compose([Scale(), Add(fail_on="x")])(Number(id="x"))
    assert caught.value.sample_id == "x"
    assert caught.value.processor == "Add"
    assert isinstance(caught.value.original, ValueError)
    assert "cannot add to x" in caught.value.traceback
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.sample_id, copy.processor, str(copy)) == ("x", "Add", str(caught.value))


def test_a_failed_cached_step_writes_nothing(tmp_path: Path) -> None:
    """A processor that fails under Cache leaves no artifact, and a later good run caches normally."""
    store = tmp_path / "cache"
    with pytest.raises(ProcessingError):
        Compose([Cache(Add(fail_on="a"))])(Number(id="a"), store=store)
    assert list(LocalStore(store).iter_artifacts()) == []
    assert Compose([Cache(Add())])(Number(id="a"), store=store).value == 1.0
    assert len(list(LocalStore(store).iter_artifacts())) == 1


def test_a_processor_that_returns_nothing_is_named() -> None:
    """Forgetting `return sample` raises a ProcessingError that says so."""

    class Forgetful(Processor):
        def process(self, sample: Any) -> Any:
            sample.value = 1.0

    with pytest.raises(
        ProcessingError, match=r"Forgetful.process\(\) on sample 'a' did not return a sample"
    ):
        Compose([Forgetful()])(Number(id="a"))


def test_unencodable_param_names_processor_and_field() -> None:
    """A processor field without a canonical encoding names the processor and the field."""

    class Holder(Processor):
        thing: object = None

        def process(self, sample: Any) -> Any:
            return sample

    with pytest.raises(UnhashableParamError, match=r"Holder\.thing"):
        Compose([Holder(thing=object())])(Number(id="a"))


def test_samples_without_id_or_history_are_refused() -> None:
    """A sample without id, with an empty id, or without processing_history is refused with a fix."""
    from dataclasses import dataclass

    @dataclass
    class NoId:
        value: int
        processing_history: list[Any]

    @dataclass
    class NoHistory:
        id: str

    with pytest.raises(InvalidSampleError, match="without an `id` field"):
        Compose([Add()])(NoId(1, []))
    with pytest.raises(InvalidSampleError, match="no `processing_history` list"):
        Compose([Add()])(NoHistory("a"))
    with pytest.raises(InvalidSampleError, match="non-empty str or an int"):
        Compose([Add()])(PlainSample(id="", value=1.0))
    with pytest.raises(InvalidSampleError, match="The sample must be a pydantic model"):
        Compose([Add()])({"id": "a"})


def test_unknown_processor_params_are_refused() -> None:
    """A typo in a processor's keyword is an error, not a silently ignored param."""
    with pytest.raises(ValueError, match="stepp"):
        Add(stepp=2)  # type: ignore[call-arg]


def test_cache_without_a_store_says_where_to_pass_one() -> None:
    """A Cache step with no cache_dir and no store= names both ways to give one."""
    with pytest.raises(InvalidSampleError, match="cache_dir="):
        Compose([Cache(Add())])(Number(id="a"))


def test_cache_artifacts_are_ordinary_artifacts(tmp_path: Path) -> None:
    """The cached sample is a verified artifact under the processor's snake_case name."""
    store = LocalStore(tmp_path)
    Compose([Cache(Add(step=3))])(Number(id="a"), store=store)
    [(name, key)] = list(store.iter_artifacts())
    assert name == "add"
    metadata = store.read_metadata(name, key)
    assert metadata["payload_io"] == "pickle"
    params = (tmp_path / name / key / "params.json").read_text()
    assert '"sample_id": "a"' in params
    assert '"step": "Add"' in params


def test_cache_on_s3(s3_bucket: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    """Cache works on S3 by changing only the store string (and its options)."""
    url, options = s3_bucket
    from persistable.store import make_store

    store = make_store(url, storage_options=options)
    journal = tmp_path / "journal"
    pipeline = Compose([Cache(Add(step=5, journal=str(journal)))])
    assert pipeline(Number(id="s3"), store=store).value == 5.0
    again = pipeline(Number(id="s3"), store=store)
    assert type(again) is Number
    assert again.value == 5.0
    assert journal_entries(journal) == ["s3"]


def test_base_sample_is_a_pydantic_model() -> None:
    """BaseSample validates its fields and keeps numpy arrays as they are."""
    cell = Cell(id="c", image=np.zeros(2, dtype=np.float32))
    assert isinstance(cell, BaseSample)
    assert cell.processing_history == []
    with pytest.raises(ValueError, match="id"):
        Cell(image=np.zeros(2, dtype=np.float32))  # type: ignore[call-arg]


def test_sample_artifact_is_a_persistable() -> None:
    """SampleArtifact is the Persistable the steps store samples with."""
    from persistable import Persistable

    assert issubclass(SampleArtifact, Persistable)


SEED_SCRIPT = Path(__file__).parent.parent / "examples" / "seed_example_3_datamultiproc.py"


def test_datamultiproc_readme_runs(tmp_path: Path) -> None:
    """datamultiproc's README code (imports changed, placeholders filled) runs end to end."""
    done = subprocess.run(
        [sys.executable, str(SEED_SCRIPT)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "processed 6 samples" in done.stdout
    assert "failed processing" not in done.stdout


def test_samples_public_api_is_pinned() -> None:
    """persistable.samples exports exactly these names, sorted."""
    import persistable.samples

    assert persistable.samples.__all__ == [
        "BaseSample",
        "Cache",
        "Compose",
        "InvalidSampleError",
        "MapError",
        "ProcessingError",
        "Processor",
        "SampleArtifact",
        "SampleStepParams",
        "Save",
        "map",
        "sample_key",
    ]
