"""Samples and processors of bench_samples.py, importable by worker processes."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from persistable.samples import BaseSample, Processor


class Image(BaseSample):
    """A sample with one image."""

    image: NDArray[np.float32]
    value: float = 0.0


class Normalize(Processor):
    """Divides the image by its maximum."""

    scale: float = 1.0

    def process(self, sample: Image) -> Image:
        sample.image = (sample.image * (self.scale / float(sample.image.max() or 1.0))).astype(
            np.float32
        )
        return sample


class Burn(Processor):
    """CPU-bound work: rounds of integer arithmetic."""

    rounds: int = 300_000

    def process(self, sample: Image) -> Image:
        total = 0
        for index in range(self.rounds):
            total = (total + index * index) % 1_000_003
        sample.value = float(total)
        return sample
