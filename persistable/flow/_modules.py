"""Built-in flow classes: the default dataset loop generator and a logging test stage."""

from __future__ import annotations

import logging
from typing import Any

from persistable.flow._classes import H5FlowGenerator, H5FlowStage
from persistable.flow._errors import FlowConfigError

__all__ = ["AUTO_CHUNK_BYTES", "H5FlowDatasetLoopGenerator", "H5FlowTestStage"]

logger = logging.getLogger(__name__)

#: Chunk length target for ``chunk_size: auto`` on a contiguous (unchunked) dataset.
AUTO_CHUNK_BYTES = 1 << 20


class H5FlowDatasetLoopGenerator(H5FlowGenerator):
    """Loop over ``dset_name`` in chunks of ``chunk_size`` rows, round-robin over ranks.

    ``chunk_size: auto`` (the default) uses the dataset's HDF5 chunk length, or rows
    of about 1 MiB when the dataset is contiguous. Chunk boundaries do not depend on
    the number of ranks: chunk ``i`` covers rows ``start + i*chunk_size`` onwards and
    goes to rank ``i % size``.
    """

    class_version = "1.0.0"

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.chunk_size: Any = params.get("chunk_size", "auto")
        self.iteration = 0
        self.slices: list[slice] = []

    def init(self) -> None:
        super().init()
        dset = self.data_manager.get_dset(self.dset_name)
        start = 0 if self.start_position is None else int(self.start_position)
        end = len(dset) if self.end_position is None else min(int(self.end_position), len(dset))
        self.start_position, self.end_position = start, end
        if self.chunk_size == "auto":
            if dset.chunks is not None:
                self.chunk_size = int(dset.chunks[0])
            else:
                self.chunk_size = max(1, AUTO_CHUNK_BYTES // max(1, dset.dtype.itemsize))
        if (
            not isinstance(self.chunk_size, int)
            or isinstance(self.chunk_size, bool)
            or self.chunk_size < 1
        ):
            raise FlowConfigError(
                f"chunk_size of the loop over {self.dset_name!r} must be a positive int or 'auto' "
                f"(got {self.chunk_size!r}); fix params.chunk_size."
            )
        size = self.chunk_size
        self.chunks = [slice(i, min(i + size, end)) for i in range(start, end, size)]
        self.slices = self.chunks[self.rank :: self.size]

    def __len__(self) -> int:
        return len(self.slices)

    def next(self) -> slice:
        current = (
            self.slices[self.iteration]
            if self.iteration < len(self.slices)
            else H5FlowGenerator.EMPTY
        )
        self.iteration += 1
        return current


class H5FlowTestStage(H5FlowStage):
    """Does nothing but log (at DEBUG) what it is given: for trying configs."""

    def run(self, source_name: str, source_slice: slice, cache: dict[str, Any]) -> None:
        logger.debug("%s: %s %s, cache %s", self.name, source_name, source_slice, sorted(cache))
