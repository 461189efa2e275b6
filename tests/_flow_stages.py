"""Stages and an input writer for the flow tests (imported as ``path: _flow_stages``)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from persistable.flow import (
    H5FlowDataManager,
    H5FlowDatasetLoopGenerator,
    H5FlowResource,
    H5FlowStage,
    resources,
)

EVENT_DTYPE = np.dtype([("id", "i8"), ("energy", "f8")])
HIT_DTYPE = np.dtype([("event", "i8"), ("charge", "f8")])


def write_events(path: Path, n_events: int = 40, seed: int = 1) -> None:
    """An input file with ``raw/events`` and ``raw/hits`` (1-4 hits per event) and their references."""
    rng = np.random.default_rng(seed)
    n_hits = rng.integers(1, 5, n_events)
    events = np.zeros(n_events, EVENT_DTYPE)
    events["id"] = np.arange(n_events)
    events["energy"] = rng.random(n_events)
    parents = np.repeat(np.arange(n_events), n_hits)
    hits = np.zeros(len(parents), HIT_DTYPE)
    hits["event"] = parents
    hits["charge"] = rng.random(len(parents)) * 10
    with H5FlowDataManager(path) as dm:
        dm.create_dset("raw/events", EVENT_DTYPE)
        dm.create_dset("raw/hits", HIT_DTYPE)
        dm.create_ref("raw/events", "raw/hits")
        dm.write_data("raw/events", dm.reserve_data("raw/events", n_events), events)
        dm.write_data("raw/hits", dm.reserve_data("raw/hits", len(hits)), hits)
        dm.write_ref("raw/events", "raw/hits", np.c_[parents, np.arange(len(parents))])
        dm.set_attrs("raw", detector="test")


class Geometry(H5FlowResource):
    """A resource holding a scale factor."""

    class_version = "1.0.0"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.scale = float(params.get("scale", 1.0))

    def init(self, source_name: str) -> None:
        self.data_manager.set_attrs("geometry", scale=self.scale)


class HitSum(H5FlowStage):
    """Per event: the summed charge of its hits (through the references), scaled by Geometry."""

    class_version = "1.0.0"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.output = params.get("output", "reco/sums")
        self.hits_name = params.get("hits", "raw/hits")

    def init(self, source_name: str) -> None:
        self.data_manager.create_dset(self.output, dtype="f8")
        self.data_manager.create_ref(source_name, self.output)
        self.data_manager.set_attrs(self.output, classname=self.classname)

    def run(self, source_name: str, source_slice: slice, cache: dict[str, Any]) -> None:
        events = cache[source_name]
        hits = cache[self.hits_name]
        charge = np.asarray(hits["charge"].filled(0.0).sum(axis=-1), dtype="f8")
        charge *= resources["Geometry"].scale
        rows = self.data_manager.reserve_data(self.output, len(events))
        self.data_manager.write_data(self.output, rows, charge)
        parents = np.arange(rows.stop - rows.start) + (source_slice.start if len(events) else 0)
        self.data_manager.write_ref(
            source_name, self.output, np.c_[parents, np.arange(rows.start, rows.stop)]
        )


class Scratch(H5FlowStage):
    """Writes a scratch dataset (for drop tests): two rows per event."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.output = params.get("output", "scratch/tmp")

    def init(self, source_name: str) -> None:
        self.data_manager.create_dset(self.output, dtype="f8")

    def run(self, source_name: str, source_slice: slice, cache: dict[str, Any]) -> None:
        n = len(cache[source_name])
        rows = self.data_manager.reserve_data(self.output, 2 * n)
        self.data_manager.write_data(self.output, rows, np.full(2 * n, 1.5))


class Trouble(H5FlowStage):
    """Raises, SIGKILLs its own process or sleeps (once), on one rank at one chunk (set by params)."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.at_row = int(params.get("at_row", 0))
        self.on_rank = int(params.get("on_rank", 0))
        self.action = params.get("action", "raise")
        self.marker = params.get("marker")

    def run(self, source_name: str, source_slice: slice, cache: dict[str, Any]) -> None:
        hit = self.rank == self.on_rank and source_slice.start <= self.at_row < source_slice.stop
        if not hit:
            return
        if self.action == "raise":
            if self.marker:  # raise once: a transient failure
                if Path(self.marker).exists():
                    return
                Path(self.marker).write_text("raised once")
            raise ValueError(f"bad row {self.at_row}")
        if self.action == "kill" and self.marker and not Path(self.marker).exists():
            Path(self.marker).write_text("killed once")
            os.kill(os.getpid(), signal.SIGKILL)
        if self.action == "sleep" and self.marker and not Path(self.marker).exists():
            Path(self.marker).write_text("waiting for Ctrl-C")
            time.sleep(120)


class Stateful(Scratch):
    """A stage that declares state across chunks: its flow reruns every chunk instead of resuming."""

    resumable = False


class Accumulate(H5FlowStage):
    """Keeps a running total across chunks (state) and writes it in finish()."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.total = 0.0

    def run(self, source_name: str, source_slice: slice, cache: dict[str, Any]) -> None:
        self.total += float(np.sum(cache[source_name]["energy"]))

    def finish(self, source_name: str) -> None:
        self.data_manager.set_attrs("summary", total=self.total)


class Shifting(H5FlowDatasetLoopGenerator):
    """A generator that is not deterministic across runs: its chunk size is read from a file."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.chunk_size = int(Path(params["size_file"]).read_text())


class Reuse(H5FlowStage):
    """Writes one array, changes it in place, writes it again (a reused buffer)."""

    def init(self, source_name: str) -> None:
        self.data_manager.create_dset("reuse/first", dtype="f8")
        self.data_manager.create_dset("reuse/second", dtype="f8")
        self.data_manager.set_attrs("reuse/first", offsets=np.zeros(2))

    def run(self, source_name: str, source_slice: slice, cache: dict[str, Any]) -> None:
        values = np.asarray(cache[source_name]["energy"], dtype="f8").copy()
        for name in ("reuse/first", "reuse/second"):
            rows = self.data_manager.reserve_data(name, len(values))
            self.data_manager.write_data(name, rows, values)
            values += 100.0  # the written rows must keep the values they had when written


class Labels(H5FlowStage):
    """Writes one variable-length string per event (data parallel HDF5 cannot write)."""

    def init(self, source_name: str) -> None:
        self.data_manager.create_dset("labels", dtype=h5py.string_dtype())

    def run(self, source_name: str, source_slice: slice, cache: dict[str, Any]) -> None:
        ids = cache[source_name]["id"]
        rows = self.data_manager.reserve_data("labels", len(ids))
        labels = np.array([f"event-{i}" + "!" * (int(i) % 4) for i in ids], dtype=object)
        self.data_manager.write_data("labels", rows, labels)


class RankZeroAttrs(Scratch):
    """Sets an attribute on rank 0 only (fine with replicas; not on a shared mpio file)."""

    def run(self, source_name: str, source_slice: slice, cache: dict[str, Any]) -> None:
        if self.rank == 0:
            self.data_manager.set_attrs(self.output, seen=source_slice.start)
        super().run(source_name, source_slice, cache)
