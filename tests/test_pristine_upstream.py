"""A downstream is computed from its upstream artifacts as stored, never from a payload changed in memory."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import IO, Any

import numpy as np
import pytest
from numpy.typing import NDArray

from persistable import LocalStore, Persistable, PersistableParams
from persistable.io import FileIO, NpyFileIO, PickleFileIO


@dataclass
class Size(PersistableParams):
    n: int = 4


class Ramp(Persistable[NDArray[np.float64], Size]):
    default_payload_io = NpyFileIO()

    def _generate_payload(self, **untracked_payload_params: Any) -> NDArray[np.float64]:
        return np.arange(self.params.n, dtype=np.float64)


class Numbers(Persistable[list[int], Size]):
    default_payload_io = PickleFileIO()

    def _generate_payload(self, **untracked_payload_params: Any) -> list[int]:
        return list(range(self.params.n))


class Total(Persistable[float, Size]):
    def _generate_payload(self, **untracked_payload_params: Any) -> float:
        (upstream,) = self.tracked_persistable_dependencies
        return float(sum(upstream.payload))


class SaltedPickle(FileIO[Any]):
    """Writes different bytes on every save (like a format with a timestamp)."""

    name = "salted-pickle"
    suffix = ".salted"

    def save(self, payload: Any, stream: IO[bytes]) -> None:
        import pickle

        stream.write(os.urandom(8))
        pickle.dump(payload, stream)

    def load(self, stream: IO[bytes]) -> Any:
        import pickle

        stream.read(8)
        return pickle.load(stream)


def test_an_array_changed_in_place_after_loading_is_not_fed_downstream(
    local_store: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    """arr -= 10 on a loaded upstream: the downstream is computed from the stored array, with a WARNING."""
    Ramp(local_store, Size(), None).load_generate()
    ramp = Ramp(local_store, Size(), None)
    ramp.load_generate()
    values = ramp.payload
    values -= 10
    total = Total(local_store, Size(), [ramp])
    with caplog.at_level(logging.WARNING):
        total.load_generate()
    assert total.payload == 6.0
    assert "changed after it was loaded or generated" in caplog.text
    assert ramp.payload.tolist() == [0.0, 1.0, 2.0, 3.0]
    colleague = Total(local_store, Size(), [Ramp(local_store, Size(), None)])
    colleague.load()
    assert colleague.payload == 6.0


def test_a_list_changed_in_place_after_generating_is_not_fed_downstream(
    local_store: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A pickled upstream appended to after its generation: the downstream reads the stored list."""
    numbers = Numbers(local_store, Size(), None)
    numbers.load_generate()
    numbers.payload.append(100)
    total = Total(local_store, Size(), [numbers])
    with caplog.at_level(logging.WARNING):
        total.load_generate()
    assert total.payload == 6.0
    assert "Copy a payload before changing it in place" in caplog.text


def test_an_unchanged_upstream_payload_is_used_as_it_is(
    local_store: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    """No change in memory: the same object is used, nothing reloaded, no warning."""
    ramp = Ramp(local_store, Size(), None)
    ramp.load_generate()
    held = ramp.payload
    total = Total(local_store, Size(), [ramp])
    with caplog.at_level(logging.WARNING):
        total.load_generate()
    assert total.payload == 6.0
    assert ramp.payload is held
    assert "changed after it was loaded" not in caplog.text


def test_a_fileio_that_does_not_reproduce_its_bytes_reloads_without_a_false_warning(
    local_store: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Bytes that differ on every save cannot tell a change: the stored payload is used, no warning."""
    numbers = Numbers(local_store, Size(), None, payload_io=SaltedPickle())
    numbers.load_generate()
    held = numbers.payload
    total = Total(local_store, Size(), [numbers])
    with caplog.at_level(logging.WARNING):
        total.load_generate()
    assert total.payload == 6.0
    assert numbers.payload is not held  # reloaded: the only safe choice
    assert "changed after it was loaded" not in caplog.text
