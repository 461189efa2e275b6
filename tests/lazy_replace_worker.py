"""A zarr payload whose values a writer chooses; run as a script it replaces the artifact.

``python lazy_replace_worker.py URL VALUE [STORAGE_OPTIONS_JSON]`` generates (replaces)
the one artifact with every element equal to VALUE.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from persistable import Persistable, PersistableParams, untracked
from persistable.io import ZarrFileIO


@dataclass
class FilledParams(PersistableParams):
    """One key whatever the value (the value is untracked)."""

    shape: tuple[int, int] = (8, 8)
    value: int = untracked(default=1)


class Filled(Persistable[Any, FilledParams]):
    """An int32 array of one value, stored as zarr in 4 x 4 chunks."""

    def __init__(self, data_dir: Any, params: FilledParams, **kwargs: Any) -> None:
        super().__init__(
            data_dir, params, payload_name="filled", payload_io=ZarrFileIO(chunks=(4, 4)), **kwargs
        )

    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        return np.full(self.params.shape, self.params.value, dtype=np.int32)


if __name__ == "__main__":
    options = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
    item = Filled(sys.argv[1], FilledParams(value=int(sys.argv[2])), storage_options=options)
    item.generate()
