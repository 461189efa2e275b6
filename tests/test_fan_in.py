"""Fan-in dependencies: a mapping from a role to a sequence of upstream persistables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

import persistable
from persistable import Persistable, PersistableParams
from persistable.exceptions import DependencyError
from persistable.store import MemoryStore


@dataclass
class SampleParams(PersistableParams):
    """One sample."""

    index: int


class Sample(Persistable[int, SampleParams]):
    """A sample whose payload is its index squared."""

    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        return self.params.index**2


@dataclass
class DatasetParams(PersistableParams):
    """A dataset-level step."""

    scale: int = 1


class Dataset(Persistable[list[int], DatasetParams]):
    """The payloads of every sample, in order, times a scale."""

    def __init__(self, store: MemoryStore, params: DatasetParams, samples: list[Sample]) -> None:
        super().__init__(store, params, {"samples": samples})
        self.samples = samples

    def _generate_payload(self, **untracked_payload_params: Any) -> list[int]:
        return [sample.payload * self.params.scale for sample in self.samples]


def _samples(store: MemoryStore, indices: list[int]) -> list[Sample]:
    return [Sample(store, SampleParams(index=i)) for i in indices]


def test_fan_in_key_lists_every_upstream_key_in_order(memory_store: MemoryStore) -> None:
    """A sequence role enters the key as the list of upstream keys, so order and membership change the key."""
    samples = _samples(memory_store, [1, 2, 3])
    dataset = Dataset(memory_store, DatasetParams(), samples)
    assert dataset.dependency_keys() == {"samples": [s.persist_hash for s in samples]}
    reordered = Dataset(memory_store, DatasetParams(), list(reversed(samples)))
    fewer = Dataset(memory_store, DatasetParams(), samples[:2])
    assert len({dataset.persist_hash, reordered.persist_hash, fewer.persist_hash}) == 3
    again = Dataset(memory_store, DatasetParams(), _samples(memory_store, [1, 2, 3]))
    assert again.persist_hash == dataset.persist_hash


def test_fan_in_params_tree_nests_a_list_under_the_role(memory_store: MemoryStore) -> None:
    """params_tree shows the sequence role as a list of the upstream params trees."""
    dataset = Dataset(memory_store, DatasetParams(scale=2), _samples(memory_store, [4, 5]))
    assert dataset.params_tree == {"scale": 2, "samples": [{"index": 4}, {"index": 5}]}


def test_a_single_persistable_role_differs_from_a_one_item_sequence(
    memory_store: MemoryStore,
) -> None:
    """{"samples": s} and {"samples": [s]} are different inputs and get different keys."""
    (sample,) = _samples(memory_store, [7])
    single = Persistable.__new__(Dataset)
    Persistable.__init__(single, memory_store, DatasetParams(), {"samples": sample})
    listed = Dataset(memory_store, DatasetParams(), [sample])
    assert single.dependency_keys() == {"samples": sample.persist_hash}
    assert single.persist_hash != listed.persist_hash


def test_iterable_dependencies_with_one_payload_name_still_raise(memory_store: MemoryStore) -> None:
    """Passing two same-named dependencies as a plain list raises and suggests the mapping form."""
    samples = _samples(memory_store, [1, 2])
    with pytest.raises(DependencyError, match="pass a mapping"):
        Persistable.__init__(
            Persistable.__new__(Dataset),
            memory_store,
            DatasetParams(),
            tracked_persistable_dependencies=samples,
        )


def test_role_clashing_with_a_params_field_raises(memory_store: MemoryStore) -> None:
    """A role named like a tracked params field is refused, as a dependency name would be."""
    with pytest.raises(DependencyError, match="'scale'"):
        Persistable.__init__(
            Persistable.__new__(Dataset),
            memory_store,
            DatasetParams(),
            {"scale": _samples(memory_store, [1])},
        )


def test_non_string_role_raises(memory_store: MemoryStore) -> None:
    """A mapping role that is not a non-empty string is refused with the expected form."""
    with pytest.raises(DependencyError, match="non-empty strings"):
        Persistable.__init__(
            Persistable.__new__(Dataset),
            memory_store,
            DatasetParams(),
            {"": _samples(memory_store, [1])},
        )


def test_run_generates_each_sample_once_then_the_dataset(memory_store: MemoryStore) -> None:
    """persistable.run resolves a fan-in DAG: every sample once, then the dataset-level step, which loads them."""
    samples = _samples(memory_store, [1, 2, 3, 4])
    dataset = Dataset(memory_store, DatasetParams(scale=10), samples)
    report = persistable.run([dataset], executor="threads", max_workers=2, progress=False)
    assert report.ok
    statuses = {result.payload_name: result.status for result in report.results}
    assert statuses == {"sample": "generated", "dataset": "generated"}
    assert len(report.results) == 5
    fresh = Dataset(memory_store, DatasetParams(scale=10), _samples(memory_store, [1, 2, 3, 4]))
    fresh.load()
    assert fresh.payload == [10, 40, 90, 160]
