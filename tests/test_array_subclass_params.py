"""numpy array subclasses as params: equal bytes, other behaviour, other keys.

``np.matrix([[1, 2]])`` and ``np.array([[1, 2]])`` once had one key although ``a * a``
differs between them (the second silently got the first one's payload), and a masked
array raised a bare ValueError from inside the encoder.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from persistable import Persistable, PersistableParams
from persistable.params import encode_value

#: xxh3-128 of np.arange(3, dtype="<i8") as the key scheme has always encoded it.
GOLDEN_ARANGE_3 = "f27cc2aa51e865317fb6f0c094f81c5d"


@dataclass
class ArrayParams(PersistableParams):
    a: Any = None


class Square(Persistable[Any, ArrayParams]):
    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        return np.asarray(self.params.a * self.params.a)


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_matrix_and_array_are_other_inputs(tmp_path: Path) -> None:
    matrix = Square(tmp_path, ArrayParams(np.matrix([[1, 2], [3, 4]])))
    array = Square(tmp_path, ArrayParams(np.array([[1, 2], [3, 4]])))
    matrix.load_generate()
    array.load_generate()
    assert matrix.key != array.key
    assert array.payload.tolist() == [[1, 4], [9, 16]]
    assert matrix.payload.tolist() == [[7, 10], [15, 22]]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (np.ma.array([1, 2], mask=[False, True]), np.ma.array([1, 2], mask=[True, False])),
        (np.ma.array([1, 2], mask=[False, True]), np.array([1, 2])),
        (np.ma.array([1.0, 2.0], fill_value=0.0), np.ma.array([1.0, 2.0], fill_value=9.0)),
    ],
)
def test_masked_arrays_are_keyed_by_data_mask_and_fill(first: Any, second: Any) -> None:
    assert encode_value(first) != encode_value(second)


def test_a_memory_map_keys_as_the_plain_array() -> None:
    values = np.arange(6.0)
    with tempfile.TemporaryDirectory() as folder:
        mapped = np.memmap(Path(folder) / "m.dat", dtype="float64", mode="w+", shape=(6,))
        mapped[:] = values
        assert encode_value(mapped) == encode_value(values)
        del mapped


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_plain_arrays_keep_their_encoding() -> None:
    """Golden: the plain ndarray encoding did not change (digest frozen here)."""
    assert encode_value(np.arange(3, dtype="<i8")) == {
        "__type__": "ndarray",
        "dtype": "<i8",
        "shape": [3],
        "xxh3_128": GOLDEN_ARANGE_3,
    }
    assert encode_value(np.matrix([[1]]))["class"] == "matrix"
