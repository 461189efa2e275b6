"""Short nodes travel in batches on process pools and Dask; a bad node in a batch fails alone."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest
from _batch_nodes import PoisonOnLoad
from _run_nodes import Step, journal_counts, step

from persistable import LocalStore, run
from persistable.run import _executors

TESTS_DIR = str(Path(__file__).resolve().parent)


@pytest.fixture
def counted_submits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each submitted task's node count, for both backends; batches as big as the queue allows."""
    sizes: list[int] = []
    for backend in (_executors.FuturesBackend, _executors.DaskBackend):
        original = backend.submit

        def submit(self: Any, task: Any, identities: Any, _original: Any = original) -> Any:
            sizes.append(len(identities))
            return _original(self, task, identities)

        monkeypatch.setattr(backend, "submit", submit)
    # However slow the machine, the time budget never limits the batches here.
    monkeypatch.setattr(_executors, "POOL_BATCH_SECONDS", 60.0)
    monkeypatch.setattr(_executors, "DASK_BATCH_SECONDS", 60.0)
    return sizes


def short_nodes(store: LocalStore, journal: Path, count: int) -> list[Step]:
    return [
        step(store, f"n{i}", payload_name="n", value=i, journal=str(journal)) for i in range(count)
    ]


def test_short_nodes_go_in_batches_on_a_process_pool(
    local_store: LocalStore, tmp_path: Path, counted_submits: list[int]
) -> None:
    """60 short nodes on 2 processes: fewer tasks than nodes, every node generated once."""
    journal = tmp_path / "journal"
    journal.mkdir()
    targets = short_nodes(local_store, journal, 60)
    report = run(targets, executor="processes", max_workers=2, progress=False)
    assert report.ok
    assert len(report.generated) == 60
    assert sum(counted_submits) == 60
    assert len(counted_submits) < 60
    assert max(counted_submits) > 1
    assert counted_submits[:4] == [1, 1, 1, 1]  # no duration known yet: one node per task
    assert journal_counts(journal) == {f"n.n{i}": 1 for i in range(60)}
    for target in targets:
        target.load()
    assert sorted(target.payload for target in targets) == list(range(60))


def test_a_node_that_cannot_unpickle_in_a_batch_fails_alone(
    local_store: LocalStore, tmp_path: Path, counted_submits: list[int]
) -> None:
    """A batch a worker cannot unpickle is sent again node by node: only the bad one fails."""
    journal = tmp_path / "journal"
    journal.mkdir()
    targets = short_nodes(local_store, journal, 40)
    poisoned = targets[30]
    poisoned.poison = PoisonOnLoad()  # type: ignore[attr-defined]
    report = run(targets, executor="processes", max_workers=2, progress=False)
    assert [r.payload_name for r in report.failed] == ["n"]
    assert report.failed[0].key == poisoned.persist_hash
    assert report.failed[0].error is not None
    assert "cannot be unpickled in another process" in report.failed[0].error
    assert len(report.generated) == 39
    assert not poisoned.exists()
    assert all(t.exists() for t in targets if t is not poisoned)
    assert counted_submits.count(1) >= 5  # the 4 probes, then the bad batch's nodes alone


def test_a_node_that_cannot_pickle_in_a_batch_fails_alone(
    local_store: LocalStore, tmp_path: Path, counted_submits: list[int]
) -> None:
    """A batch that cannot be pickled here is split: only the node holding a lock fails."""
    journal = tmp_path / "journal"
    journal.mkdir()
    targets = short_nodes(local_store, journal, 40)
    bad = targets[25]
    bad.lock = threading.Lock()  # type: ignore[attr-defined]
    report = run(targets, executor="processes", max_workers=2, progress=False)
    assert len(report.failed) == 1
    assert report.failed[0].key == bad.persist_hash
    assert report.failed[0].error is not None
    assert report.failed[0].error.startswith("TypeError")
    assert len(report.generated) == 39


@pytest.mark.dask
def test_short_nodes_go_in_batches_on_dask(
    local_store: LocalStore,
    tmp_path: Path,
    counted_submits: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """executor='dask' batches short nodes too, and still generates each once."""
    # Worker processes import the test persistables from tests/ (pickle refers to them).
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [TESTS_DIR, os.environ.get("PYTHONPATH")]))
    )
    journal = tmp_path / "journal"
    journal.mkdir()
    targets = short_nodes(local_store, journal, 60)
    report = run(targets, executor="dask", max_workers=2, progress=False)
    assert report.ok
    assert len(report.generated) == 60
    assert sum(counted_submits) == 60
    assert len(counted_submits) < 60
    assert journal_counts(journal) == {f"n.n{i}": 1 for i in range(60)}
