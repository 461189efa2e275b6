"""Stages for ``bench_flow.py`` (imported as ``path: _flow_bench_stages``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from persistable.flow import H5FlowStage


def calibrate(energy: np.ndarray[Any, Any], work: int) -> np.ndarray[Any, Any]:
    """The per-chunk computation shared by the flow stage and the hand-written loop."""
    out: np.ndarray[Any, Any] = np.sqrt(np.abs(energy)) * 2.0
    for _ in range(work):
        out = np.sin(out) + 1.0
    return out


class Calibrate(H5FlowStage):
    """Writes ``reco/calibrated``: a function of each event's energy (``work`` sets the CPU cost)."""

    class_version = "1.0.0"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.work = int(params.get("work", 0))

    def init(self, source_name: str) -> None:
        self.data_manager.create_dset("reco/calibrated", dtype="f8")

    def run(self, source_name: str, source_slice: slice, cache: dict[str, Any]) -> None:
        values = calibrate(cache[source_name]["energy"], self.work)
        rows = self.data_manager.reserve_data("reco/calibrated", len(values))
        self.data_manager.write_data("reco/calibrated", rows, values)


class StopAt(H5FlowStage):
    """Raises at one row once (to leave a journal for the resume benchmark)."""

    armed = True

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.at_row = int(params.get("at_row", -1))

    def run(self, source_name: str, source_slice: slice, cache: dict[str, Any]) -> None:
        if StopAt.armed and source_slice.start <= self.at_row < source_slice.stop:
            raise RuntimeError("stop for the resume benchmark")
