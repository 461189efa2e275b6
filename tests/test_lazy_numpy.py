"""numpy (and datetime, decimal) are imported lazily; sliced, preallocated checksummed writes are exact.

``import persistable`` must not import numpy (it dominates the import time, see
docs/benchmarks.md), yet numpy params and payloads must behave exactly as if it had:
the numpy encoders register on first use, whichever of numpy and persistable came first.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from persistable import NpyFileIO, NpzFileIO, Persistable, PersistableParams
from persistable._artifact import HashingWriter
from persistable._hashing import BULK_ALGORITHM, bulk_digest
from persistable.params import encode_value

# Prints the keys of a few numpy-valued params; run with numpy imported before or after.
_KEYS_SCRIPT = """
import json, sys
from dataclasses import dataclass
{first}
assert {check}
import numpy as np
from persistable import Persistable, PersistableParams

@dataclass
class P(PersistableParams):
    value: object = None

class A(Persistable):
    pass

values = [
    np.arange(6, dtype=np.int32).reshape(2, 3),
    np.float64(1.5),
    np.int64(3),
    np.bool_(True),
    np.str_("x"),
    np.datetime64("2024-01-02"),
    [np.float32(0.25), {{"k": np.uint8(7)}}],
]
print(json.dumps([A(".", P(value=v)).persist_hash for v in values]))
"""


def _keys(numpy_first: bool) -> list[str]:
    script = _KEYS_SCRIPT.format(
        first="import numpy" if numpy_first else "import persistable",
        check="True" if numpy_first else "'numpy' not in sys.modules",
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    keys: list[str] = json.loads(completed.stdout)
    return keys


def test_import_persistable_does_not_import_numpy() -> None:
    """A fresh interpreter that imports persistable has not imported numpy."""
    completed = subprocess.run(
        [sys.executable, "-c", "import sys, persistable; print('numpy' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert completed.stdout.strip() == "False"


def test_numpy_keys_do_not_depend_on_import_order() -> None:
    """Keys of numpy params are the same whether numpy was imported before or after persistable."""
    after = _keys(numpy_first=False)
    before = _keys(numpy_first=True)
    assert after == before
    assert len(set(after)) == len(after)


_STDLIB_SCRIPT = """
import sys
import persistable
from persistable.params import encode_value
assert "datetime" not in sys.modules and "decimal" not in sys.modules
import datetime, decimal, json
values = [
    datetime.datetime(2024, 1, 2, 3, 4, 5), datetime.date(2024, 1, 2), datetime.time(1, 2),
    datetime.timedelta(seconds=1.5), decimal.Decimal("1.10"),
]
print(json.dumps([encode_value(v) for v in values]))
"""


def test_datetime_and_decimal_encoders_register_on_first_use() -> None:
    """import persistable skips datetime and decimal, yet their values encode as in a process that had them."""
    completed = subprocess.run(
        [sys.executable, "-c", _STDLIB_SCRIPT], capture_output=True, text=True, check=True
    )
    assert json.loads(completed.stdout) == [
        {"__type__": "datetime", "value": "2024-01-02T03:04:05"},
        {"__type__": "date", "value": "2024-01-02"},
        {"__type__": "time", "value": "01:02:00"},
        {"__type__": "timedelta", "seconds": 1.5},
        {"__type__": "decimal", "value": "1.10"},
    ]


def test_numpy_scalar_encodes_by_its_python_type_or_its_dtype() -> None:
    """Once numpy is in use, np.float64 encodes like float (it is one) and np.int64 keeps its dtype."""
    assert encode_value(np.float64(1.5)) == encode_value(1.5)
    assert encode_value(np.int64(3)) == {"__type__": "numpy", "dtype": "<i8", "value": 3}
    assert encode_value(np.arange(3))["__type__"] == "ndarray"


@pytest.mark.parametrize("size", [0, 1, 4 << 20, (4 << 20) + 1, (9 << 20) + 17])
def test_hashing_writer_digest_matches_one_shot_digest(size: int) -> None:
    """Writes below, at and above the slice size give the bytes, size and digest of the whole."""
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    sink = io.BytesIO()
    writer = HashingWriter(sink)
    assert writer.write(data) == size
    assert sink.getvalue() == data
    assert writer.record == {"size": size, BULK_ALGORITHM: bulk_digest(data)}


def test_hashing_writer_accepts_typed_buffers() -> None:
    """A float64 buffer of several slices is written whole and counted and hashed as its bytes."""
    array = np.arange(3 << 20, dtype=np.float64)  # 24 MiB: six slices
    sink = io.BytesIO()
    writer = HashingWriter(sink)
    assert writer.write(array.data) == array.nbytes
    assert writer.write(b"tail") == 4
    expected = array.tobytes() + b"tail"
    assert sink.getvalue() == expected
    assert writer.record == {"size": len(expected), BULK_ALGORITHM: bulk_digest(expected)}


def test_hashing_writer_on_a_file_keeps_exact_size_and_bytes(tmp_path: Path) -> None:
    """A big write after a small buffered one (space reserved ahead on Linux) leaves exactly the bytes written."""
    big = np.random.default_rng(1).integers(0, 256, (6 << 20) + 5, dtype=np.uint8).tobytes()
    path = tmp_path / "payload.bin"
    with HashingWriter(path.open("wb")) as writer:
        writer.write(b"header")
        writer.write(big)
        writer.write(b"tail")
    expected = b"header" + big + b"tail"
    assert path.stat().st_size == len(expected)
    assert path.read_bytes() == expected
    assert writer.record == {"size": len(expected), BULK_ALGORITHM: bulk_digest(expected)}


@dataclass
class _ArrayParams(PersistableParams):
    n: int


class _Array(Persistable[NDArray[np.float64], _ArrayParams]):
    default_payload_io = NpyFileIO()

    def _generate_payload(self, **untracked_payload_params: object) -> NDArray[np.float64]:
        return np.arange(self.params.n, dtype=np.float64)


def test_big_npy_artifact_checksum_verifies(tmp_path: Path) -> None:
    """A multi-slice .npy payload is committed with a checksum that verify() and load(verify=True) accept."""
    artifact = _Array(tmp_path, _ArrayParams(n=(5 << 20) // 8 + 3))
    artifact.load_generate()
    artifact.verify()
    again = _Array(tmp_path, _ArrayParams(n=(5 << 20) // 8 + 3))
    again.load(verify=True)
    np.testing.assert_array_equal(again.payload, artifact.payload)


def test_npz_io_round_trips_with_deferred_imports() -> None:
    """NpzFileIO (its zipfile and numpy imports are deferred) still writes and reads a dict of arrays."""
    stream = io.BytesIO()
    NpzFileIO().save({"a": np.arange(3), "b": np.ones((2, 2))}, stream)
    stream.seek(0)
    loaded = NpzFileIO().load(stream)
    np.testing.assert_array_equal(loaded["a"], np.arange(3))
    np.testing.assert_array_equal(loaded["b"], np.ones((2, 2)))
