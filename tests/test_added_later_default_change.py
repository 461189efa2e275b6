"""Changing the default of an ``added_later`` field must never hand over the old default's payload."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from persistable import Persistable, PersistableParams, added_later
from persistable.exceptions import InvalidParamsError


def _scaled(default: float) -> type[Persistable[Any, Any]]:
    @dataclass
    class ScaleParams(PersistableParams):
        n: int = 3
        scale: float = added_later(default=default)

    class Scaled(Persistable[float, ScaleParams]):
        def _generate_payload(self, **untracked: Any) -> float:
            return self.params.n * self.params.scale

    Scaled.params_class = ScaleParams  # type: ignore[attr-defined]
    return Scaled


def _make(tmp_path: Path, default: float, **values: Any) -> Persistable[Any, Any]:
    cls = _scaled(default)
    params = cls.params_class(**values)  # type: ignore[attr-defined]
    return cls(data_dir=tmp_path, params=params, tracked_persistable_dependencies=None)


def test_a_changed_default_is_refused_not_loaded(tmp_path: Path) -> None:
    first = _make(tmp_path, 1.0)
    first.load_generate()
    assert first.payload == 3.0
    metadata = json.loads((tmp_path / "scaled" / first.key / "metadata.json").read_text())
    assert metadata["added_later_defaults"] == {"params.scale": "1.0"}

    changed = _make(tmp_path, 2.0)
    assert changed.key == first.key  # the field at its default stays out of the key
    with pytest.raises(InvalidParamsError, match=r"params.scale = 1.0 .* default is now 2.0"):
        changed.load_generate()
    # "Why did this miss?" says the same, not that load_generate() loads it.
    assert "but load_generate() refuses it: scaled key" in str(changed.explain())
    assert "load_generate() loads it" in str(_make(tmp_path, 1.0).explain())
    # Nothing was written or removed: the artifact made with 1.0 still loads as it was.
    again = _make(tmp_path, 1.0)
    again.load_generate()
    assert again.payload == 3.0


def test_an_explicit_value_and_an_unchanged_default_load_as_before(tmp_path: Path) -> None:
    _make(tmp_path, 1.0).load_generate()
    explicit = _make(tmp_path, 2.0, scale=1.0)  # not its default now: in the key, a new artifact
    explicit.load_generate()
    assert explicit.payload == 3.0
    metadata = json.loads((tmp_path / "scaled" / explicit.key / "metadata.json").read_text())
    assert "added_later_defaults" not in metadata
    other = _make(tmp_path, 1.0, scale=2.0)
    other.load_generate()
    assert other.payload == 6.0


def _downstream(tmp_path: Path, default: float) -> Persistable[Any, Any]:
    @dataclass
    class SumParams(PersistableParams):
        offset: int = 10

    class Summed(Persistable[float, SumParams]):
        def _generate_payload(self, **untracked: Any) -> float:
            (upstream,) = self.tracked_persistable_dependencies
            return float(upstream.payload) + self.params.offset

    return Summed(
        data_dir=tmp_path,
        params=SumParams(),
        tracked_persistable_dependencies=[_make(tmp_path, default)],
    )


def test_a_changed_default_upstream_is_refused_downstream(tmp_path: Path) -> None:
    first = _downstream(tmp_path, 1.0)
    first.load_generate()
    assert first.payload == 13.0
    metadata = json.loads((tmp_path / "summed" / first.key / "metadata.json").read_text())
    assert isinstance(metadata["upstream_added_later"], str)

    changed = _downstream(tmp_path, 2.0)
    assert changed.key == first.key  # neither key holds the upstream field at its default
    with pytest.raises(
        InvalidParamsError,
        match=r"summed key .* added_later defaults have changed.*scaled \(params.scale\)",
    ):
        changed.load_generate()
    # The downstream artifact made from 1.0 is still there and still loads as it was.
    again = _downstream(tmp_path, 1.0)
    again.load_generate()
    assert again.payload == 13.0


def test_a_tree_without_omitted_defaults_records_nothing(tmp_path: Path) -> None:
    # The upstream's field holds an explicit value: it is in the upstream key, nothing to record.
    @dataclass
    class SumParams(PersistableParams):
        offset: int = 10

    class Plain(Persistable[float, SumParams]):
        def _generate_payload(self, **untracked: Any) -> float:
            return float(self.params.offset)

    upstream = _make(tmp_path, 1.0, scale=5.0)
    plain = Plain(
        data_dir=tmp_path, params=SumParams(), tracked_persistable_dependencies=[upstream]
    )
    plain.load_generate()
    metadata = json.loads((tmp_path / "plain" / plain.key / "metadata.json").read_text())
    assert "upstream_added_later" not in metadata


_BY_VALUE = """
import sys
from dataclasses import dataclass
from typing import Any

import cloudpickle

from persistable import Persistable, PersistableParams, added_later


@dataclass
class ScaleParams(PersistableParams):
    n: int = 3
    scale: float = added_later(default=1.0)


class Scaled(Persistable[float, ScaleParams]):
    def _generate_payload(self, **untracked: Any) -> float:
        return self.params.n * self.params.scale


p = Scaled(data_dir=sys.argv[1], params=ScaleParams(), tracked_persistable_dependencies=None)
sys.stdout.buffer.write(cloudpickle.dumps(p))
"""

_WORKER = """
import pickle
import sys

p = pickle.loads(sys.stdin.buffer.read())  # the classes come by value: added_later() never runs
p.load_generate()
print(p.key)
"""


def test_a_class_rebuilt_by_value_in_a_worker_still_records_its_defaults(tmp_path: Path) -> None:
    # What a Dask or process worker does with classes of a notebook's __main__.
    made = subprocess.run(
        [sys.executable, "-c", _BY_VALUE, str(tmp_path)], capture_output=True, check=True
    )
    ran = subprocess.run(
        [sys.executable, "-c", _WORKER], input=made.stdout, capture_output=True, check=True
    )
    key = ran.stdout.decode().strip()
    metadata = json.loads((tmp_path / "scaled" / key / "metadata.json").read_text())
    assert metadata["added_later_defaults"] == {"params.scale": "1.0"}
