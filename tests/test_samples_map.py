"""``map`` over many samples: input order, per-sample failures, resume, on serial, threads, processes and Dask."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _samples_nodes import Add, Brighten, Cell, Number, OnlyHere, Scale, journal_entries

from persistable.exceptions import InvalidSampleError, MapError, ProcessingError
from persistable.samples import Cache, Compose, Save, map


def _samples(count: int) -> list[Number]:
    return [Number(id=f"s{index:03d}", value=float(index)) for index in range(count)]


@pytest.mark.parametrize("executor", ["serial", "threads", "processes"])
def test_map_returns_every_sample_once_in_input_order(tmp_path: Path, executor: str) -> None:
    """Each sample is processed exactly once and comes back to the caller, in input order."""
    journal = tmp_path / "journal"
    samples = _samples(12)
    pipeline = Compose([Scale(factor=2.0, journal=str(journal)), Cache(Add(step=1.0)), Save()])
    results = pipeline.map(samples, store=tmp_path / "store", executor=executor, max_workers=2)
    assert [sample.id for sample in results] == [sample.id for sample in samples]
    assert [sample.value for sample in results] == [2.0 * index + 1.0 for index in range(12)]
    assert all(type(sample) is Number for sample in results)
    assert sorted(journal_entries(journal)) == [sample.id for sample in samples]
    assert all(sample.processing_history == [] for sample in samples)  # inputs unchanged


def test_map_on_processes_isolates_one_failing_sample(tmp_path: Path) -> None:
    """On processes, one failing sample is reported with id and traceback; the others complete."""
    samples = _samples(6)
    pipeline = Compose([Cache(Scale(factor=3.0)), Add(fail_on="s003")])
    with pytest.raises(
        MapError, match="1 of 6 samples failed: Add failed on sample 's003'"
    ) as caught:
        pipeline.map(samples, store=tmp_path / "store", executor="processes", max_workers=2)
    [failure] = caught.value.failures
    assert failure.sample_id == "s003"
    assert failure.processor == "Add"
    assert isinstance(failure.original, ValueError)
    assert "cannot add to s003" in failure.traceback
    values = [getattr(result, "value", None) for result in caught.value.results]
    assert values == [0.0 * 3 + 1, 4.0, 7.0, None, 13.0, 16.0]


@pytest.mark.dask
def test_map_on_a_dask_local_cluster_with_one_failing_sample(tmp_path: Path) -> None:
    """On a real Dask LocalCluster the results come back in order and the failure in its place."""
    distributed = importlib.import_module("distributed")
    samples = _samples(8)
    pipeline = Compose([Cache(Add(step=1.0, fail_on="s005"))])
    tests_dir = str(Path(__file__).resolve().parent)
    with pytest.MonkeyPatch.context() as patch:
        # Worker processes import the test processors from tests/ (pickle refers to them).
        patch.setenv(
            "PYTHONPATH", os.pathsep.join(filter(None, [tests_dir, os.environ.get("PYTHONPATH")]))
        )
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        )
    with cluster, distributed.Client(cluster) as client:
        results = pipeline.map(
            samples, store=tmp_path / "store", executor=client, on_error="return"
        )
    assert [getattr(result, "id", None) for result in results[:5]] == [f"s00{i}" for i in range(5)]
    assert isinstance(results[5], ProcessingError)
    assert results[5].sample_id == "s005"
    assert [result.value for result in results if isinstance(result, Number)] == [
        float(index) + 1.0 for index in range(8) if index != 5
    ]


def test_map_resumes_after_a_failure_without_recomputing(tmp_path: Path) -> None:
    """A second map after a failure loads the cached steps and runs only what is missing."""
    journal = tmp_path / "journal"
    store = tmp_path / "store"
    samples = _samples(5)

    def pipeline(fail_on: str) -> Compose:
        return Compose(
            [Cache(Scale(factor=2.0, journal=str(journal))), Cache(Add(step=1.0, fail_on=fail_on))]
        )

    with pytest.raises(MapError):
        pipeline("s002").map(samples, store=store)
    assert sorted(journal_entries(journal, "Scale")) == [sample.id for sample in samples]
    # fail_on is a param: the fixed pipeline is another Add, but Scale's cache is reused.
    results = pipeline("").map(samples, store=store)
    assert sorted(journal_entries(journal, "Scale")) == [sample.id for sample in samples]
    assert [result.value for result in results] == [2.0 * index + 1.0 for index in range(5)]
    # A third run loads the last cached step straight away: nothing runs.
    pipeline("").map(samples, store=store)
    assert len(journal_entries(journal, "Scale")) == 5


def test_map_refuses_duplicate_ids_and_missing_ids_before_running(tmp_path: Path) -> None:
    """Two samples with one id, or a sample without one, are refused before any processing."""
    journal = tmp_path / "journal"
    pipeline = Compose([Add(journal=str(journal))])
    with pytest.raises(InvalidSampleError, match=r"Samples #0 and #2 share the id 'a'"):
        pipeline.map([Number(id="a"), Number(id="b"), Number(id="a")])
    with pytest.raises(InvalidSampleError, match=r"Sample #1"):
        map(pipeline, [Number(id="a"), {"value": 1}])
    assert journal_entries(journal) == []


def test_map_on_error_return_keeps_failures_in_place() -> None:
    """on_error='return' gives the ProcessingError in the failed sample's place."""
    results: list[Any] = Compose([Add(fail_on="s001")]).map(_samples(3), on_error="return")
    assert isinstance(results[1], ProcessingError)
    assert [results[0].value, results[2].value] == [1.0, 3.0]
    with pytest.raises(ValueError, match="on_error"):
        Compose([Add()]).map(_samples(1), on_error="ignore")


def test_map_on_processes_sends_short_samples_in_batches_each_on_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Short samples travel several to a task; each still fails alone and keeps its place.

    Three samples share one array object: in a batch each is pickled alone, so a processor
    that changes its sample's array in place never changes the others' (as serially).
    One sample holds a value that a worker cannot unpickle: it alone fails, named by id.
    """
    from persistable.samples import _map, _ship

    tasks: list[int] = []
    real_received = _ship.received

    def counting(data: bytes) -> Any:
        outcomes = real_received(data)
        tasks.append(len(outcomes))
        return outcomes

    monkeypatch.setattr(_map, "received", counting)
    shared = np.zeros(3, np.float32)
    samples: list[Any] = [
        Cell(
            id=f"c{index:02d}", image=shared if 20 <= index < 23 else np.full(3, index, np.float32)
        )
        for index in range(60)
    ]
    samples[30].mask = OnlyHere()
    pipeline = Compose([Cache(Brighten(step=1.0, fail_on="c41"))])
    with pytest.raises(MapError) as caught:
        pipeline.map(samples, store=tmp_path / "store", executor="processes", max_workers=2)
    assert sum(tasks) == 60
    assert max(tasks) > 1
    failures = {str(failure.sample_id): failure for failure in caught.value.failures}
    assert sorted(failures) == ["c30", "c41"]
    assert "could not unpickle sample 'c30'" in str(failures["c30"])
    assert failures["c41"].processor == "Brighten"
    results: list[Any] = caught.value.results
    assert [result.id for result in results if result is not None] == [
        f"c{index:02d}" for index in range(60) if index not in (30, 41)
    ]
    assert [results[index].image.tolist() for index in (20, 21, 22)] == [[1.0, 1.0, 1.0]] * 3
    assert results[59].image.tolist() == [60.0, 60.0, 60.0]
    assert shared.tolist() == [0.0, 0.0, 0.0]  # the caller's array is unchanged
