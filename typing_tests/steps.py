"""Checked by mypy, never run: a decorated step keeps its function's signature and return type."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from typing_extensions import assert_type

from persistable import NpyFileIO, Persistable, step
from persistable.steps import Step, StepPersistable


@step(data_dir="memory://typing")
def _smooth(values: list[float], sigma: float = 1.0) -> list[float]:
    return [v * sigma for v in values]


@step(data_dir="memory://typing", payload_io=NpyFileIO())
def _segment(smoothed: list[float], threshold: float) -> NDArray[np.int32]:
    return np.asarray([v > threshold for v in smoothed], dtype=np.int32)


def _check() -> None:
    smooth: Step[..., list[float]] = _smooth
    assert_type(smooth.bind([1.0]), StepPersistable[list[float]])
    assert_type(_smooth([1.0], sigma=2.0), list[float])
    assert_type(_segment(_smooth([1.0]), threshold=0.5), NDArray[np.int32])
    lazy = _segment.bind(_smooth.bind([1.0], sigma=2.0), threshold=0.5)
    assert_type(lazy, StepPersistable[NDArray[np.int32]])
    assert_type(lazy.value, NDArray[np.int32])
    assert_type(lazy.payload, NDArray[np.int32])
    persistable: Persistable[Any, Any] = lazy
    assert_type(_smooth.key([1.0]), str)
    assert_type(_smooth.exists([1.0], 2.0), bool)
    assert_type(str(_smooth.explain([1.0])), str)
    assert_type(_smooth.delete([1.0]), bool)
    assert_type(_smooth.replace(data_dir="elsewhere")([1.0], 2.0), list[float])
    _smooth("not a list")  # type: ignore[arg-type]
    _smooth([1.0], sigma="wide")  # type: ignore[arg-type]
    _smooth([1.0], width=2.0)  # type: ignore[call-arg]
    del persistable
