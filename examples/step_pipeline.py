"""``@step`` on files: a two-step pipeline of plain functions (run by ``make demo``).

Each input is a CSV of numbers, given as a ``File``: it is keyed by its content, so
editing a file recomputes that file's chain only, and renaming one recomputes nothing.
Run it twice: the first run computes, the second loads everything.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

import persistable
from persistable import File, NpyFileIO, step

ROOT = Path(
    os.environ.get("PERSISTABLE_DEMO_DIR") or Path(__file__).resolve().parent.parent / "demo-data"
)
DATA_DIR = ROOT / "steps-store"
INPUTS = ROOT / "step-inputs"


@step(data_dir=DATA_DIR, payload_io=NpyFileIO())
def smooth(signal: File, width: int = 3) -> NDArray[np.float64]:
    """The signal of a CSV file, smoothed by a moving average."""
    time.sleep(0.3)  # stands in for an expensive computation
    values = np.loadtxt(signal, delimiter=",", dtype=np.float64)
    return np.convolve(values, np.ones(width) / width, mode="same")


@step(data_dir=DATA_DIR, outputs=("count", "highest"))
def peaks(smoothed: NDArray[np.float64], threshold: float) -> tuple[int, float]:
    """How many smoothed values exceed the threshold, and the highest one."""
    time.sleep(0.3)
    return int((smoothed > threshold).sum()), float(smoothed.max())


def write_inputs() -> list[File]:
    """Three small CSV files (written once; edit one and run again to see what recomputes)."""
    INPUTS.mkdir(parents=True, exist_ok=True)
    files = []
    for index in range(3):
        path = INPUTS / f"signal-{index}.csv"
        if not path.exists():
            values = np.random.default_rng(index).normal(size=50)
            path.write_text(",".join(f"{value:.6f}" for value in values))
        files.append(File(path))
    return files


def main() -> None:
    files = write_inputs()
    # Lazily: bound steps are persistables; the runner computes each distinct call once.
    targets = [peaks.bind(smooth.bind(file, width=5), threshold=0.3) for file in files]
    started = time.perf_counter()
    report = persistable.run(targets)
    print(report)
    print(f"run: {time.perf_counter() - started:.2f} s, computed {len(report.generated)} steps")
    for file, target in zip(files, targets, strict=True):
        result = target.value  # loads what the run committed: a named tuple
        print(f"{file.name}: {result.count} values above 0.3, highest {result.highest:.3f}")  # type: ignore[attr-defined]
    # Eagerly, like joblib.Memory: a call loads what the run committed (same key).
    smoothed = smooth(files[0], width=5)
    # Passing the *value* keys the call by the array's content, not by smooth's key:
    # a different artifact from the bound chain's, computed once and then loaded too.
    print("eager:", peaks(smoothed, threshold=0.3))
    print(smooth.explain(files[0], width=7))


if __name__ == "__main__":
    main()
