"""Stages of the example flow (found by class name: ``reco.yaml`` gives no ``path``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from persistable.flow import H5FlowResource, H5FlowStage, resources


class Geometry(H5FlowResource):
    """The detector's gain, shared by the stages."""

    class_version = "1.0.0"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.gain = float(params.get("gain", 1.0))

    def init(self, source_name: str) -> None:
        self.data_manager.set_attrs("geometry", gain=self.gain)


class HitBuilder(H5FlowStage):
    """Keeps the hits above ``threshold`` as ``reco/hits``, referenced from their event."""

    class_version = "1.0.0"
    HIT_DTYPE = np.dtype([("event", "i8"), ("charge", "f8")])

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.threshold = float(params.get("threshold", 0.0))

    def init(self, source_name: str) -> None:
        self.data_manager.create_dset("reco/hits", dtype=self.HIT_DTYPE)
        self.data_manager.create_ref(source_name, "reco/hits")
        self.data_manager.create_dset("reco/tmp", dtype="f8")
        self.data_manager.set_attrs("reco/hits", threshold=self.threshold)

    def run(self, source_name: str, source_slice: slice, cache: dict[str, Any]) -> None:
        raw = cache["raw/hits"]  # masked (events, max hits per event)
        keep = ~np.ma.getmaskarray(raw)["charge"] & (raw.data["charge"] > self.threshold)
        events = np.nonzero(keep)[0] + (source_slice.start if len(keep) else 0)
        hits = np.zeros(len(events), self.HIT_DTYPE)
        hits["event"] = events
        hits["charge"] = raw.data["charge"][keep] * resources["Geometry"].gain
        rows = self.data_manager.reserve_data("reco/hits", len(hits))
        self.data_manager.write_data("reco/hits", rows, hits)
        self.data_manager.write_ref(
            source_name, "reco/hits", np.c_[events, np.arange(rows.start, rows.stop)]
        )
        scratch = self.data_manager.reserve_data("reco/tmp", len(hits))
        self.data_manager.write_data("reco/tmp", scratch, hits["charge"])


class ChargeSum(H5FlowStage):
    """Per event: the summed charge of its reconstructed hits (``reco/charge``)."""

    class_version = "1.0.0"

    def init(self, source_name: str) -> None:
        self.data_manager.create_dset("reco/charge", dtype="f8")

    def run(self, source_name: str, source_slice: slice, cache: dict[str, Any]) -> None:
        hits = (
            self.data_manager[source_name, "reco/hits", source_slice]
            if len(cache[source_name])
            else None
        )
        total = np.zeros(0) if hits is None else np.asarray(hits["charge"].filled(0.0).sum(axis=-1))
        rows = self.data_manager.reserve_data("reco/charge", len(total))
        self.data_manager.write_data("reco/charge", rows, total)
