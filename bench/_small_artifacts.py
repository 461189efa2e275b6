"""Worker of the 1,000-small-artifacts benchmark; runs in the interpreter of one contender.

The same code runs against this project's ``persistable`` (in ``.venv``) and against
``persistable==1.3.1`` (in ``bench/.venv-persistable131``): both offer the seed API
used here. ``--impl joblib`` runs the equivalent ``joblib.Memory`` cached function.
The last line printed is JSON with the timings in seconds::

    python bench/_small_artifacts.py --impl persistable --n 1000 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import scratch_dir, time_call
from numpy.typing import NDArray

PAYLOAD_SIZE = 64


def make_payload(index: int, size: int) -> NDArray[np.float64]:
    """The payload of artifact ``index``: ``size`` Gaussian floats from seed ``index``."""
    return np.random.default_rng(index).standard_normal(size)


def _persistable_runs(root: Path, n: int) -> tuple[Callable[[], object], Callable[[], object]]:
    from persistable import Persistable, PersistableParams

    @dataclass
    class SmallParams(PersistableParams):
        index: int
        size: int = PAYLOAD_SIZE

    class SmallArtifact(Persistable[NDArray[np.float64], SmallParams]):
        def _generate_payload(self, **untracked_payload_params: Any) -> NDArray[np.float64]:
            return make_payload(self.params.index, self.params.size)

    def run() -> list[NDArray[np.float64]]:
        payloads = []
        for index in range(n):
            artifact = SmallArtifact(root, SmallParams(index=index), None)
            artifact.load_generate()
            payloads.append(artifact.payload)
        return payloads

    return run, run


def _joblib_runs(root: Path, n: int) -> tuple[Callable[[], object], Callable[[], object]]:
    import joblib

    cached = joblib.Memory(root, verbose=0).cache(make_payload)

    def run() -> list[NDArray[np.float64]]:
        return [cached(index, PAYLOAD_SIZE) for index in range(n)]

    return run, run


def measure(impl: str, n: int, repeat: int) -> dict[str, Any]:
    """Median first-run and cached-run times of ``n`` artifacts over ``repeat`` fresh folders."""
    first: list[float] = []
    cached: list[float] = []
    for _ in range(repeat):
        with scratch_dir(f"small-{impl}") as root:
            factory = _joblib_runs if impl == "joblib" else _persistable_runs
            run_first, run_cached = factory(root, n)
            first.append(time_call(run_first))
            cached.append(time_call(run_cached))
            results: Any = run_cached()
            expected = make_payload(n - 1, PAYLOAD_SIZE)
            if not np.array_equal(results[-1], expected):
                raise RuntimeError(f"{impl} returned a wrong payload for artifact {n - 1}.")
    return {
        "impl": impl,
        "n": n,
        "first": statistics.median(first),
        "cached": statistics.median(cached),
        "first_all": first,
        "cached_all": cached,
    }


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments, measure, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--impl", choices=["persistable", "joblib"], required=True)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.impl, args.n, args.repeat)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
