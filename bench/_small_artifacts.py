"""Worker of the 1,000-small-artifacts benchmark; runs in the interpreter of one contender.

The same code runs against this project's ``persistable`` (in ``.venv``) and against
``persistable==1.3.1`` (in ``bench/.venv-persistable131``): both offer the seed API
used here. ``--impl joblib`` runs the equivalent ``joblib.Memory`` cached function.
``--impl floor`` makes only the system calls of our layout (key lock file, staging
folder, payload, ``params.json``, ``metadata.json``, the rename into place; a load: read
``metadata.json`` and the payload) with bytes of the sizes ours writes, no library code:
the least any implementation of this layout costs. ``--impl floor-joblib`` does the same
for joblib's layout (a folder, two files each written under a temporary name and renamed).
The last line printed is JSON with the timings in seconds::

    python bench/_small_artifacts.py --impl persistable --n 1000 --repeat 3
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
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


#: Bytes of the files one small artifact of ours holds (payload.pkl, params.json,
#: metadata.json, and the lock file's holder record), as measured on this benchmark.
_OUR_SIZES = {"payload.pkl": 639, "params.json": 31, "metadata.json": 1340}
_LOCK_RECORD = 110
#: joblib's files of one entry (output.pkl, metadata.json).
_JOBLIB_SIZES = {"output.pkl": 737, "metadata.json": 107}
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _write_new(path: str, size: int) -> None:
    fd = os.open(path, _CREATE, 0o666)
    try:
        os.write(fd, b"x" * size)
    finally:
        os.close(fd)


def _read_all(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 1 << 16)
    finally:
        os.close(fd)


def _floor_runs(root: Path, n: int) -> tuple[Callable[[], object], Callable[[], object]]:
    locks = os.path.join(root, ".persistable", "locks", "small")
    staging = os.path.join(root, ".persistable", "staging")
    folder = os.path.join(root, "small")
    for made in (locks, staging, folder):
        os.makedirs(made, exist_ok=True)
    # Names spread like real keys (a SHA-256 in hex), so directory inserts land alike.
    keys = [f"k1-{hashlib.sha256(str(index).encode()).hexdigest()}" for index in range(n)]

    def first() -> None:
        for key in keys:
            lock = os.path.join(locks, f"{key}.lock")
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.pwrite(fd, b"x" * _LOCK_RECORD, 0)
            stage = os.path.join(staging, key)
            os.mkdir(stage)
            for name, size in _OUR_SIZES.items():
                _write_new(os.path.join(stage, name), size)
            os.rename(stage, os.path.join(folder, key))
            os.unlink(lock)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def cached() -> None:
        for key in keys:
            _read_all(os.path.join(folder, key, "metadata.json"))
            _read_all(os.path.join(folder, key, "payload.pkl"))

    return first, cached


def _floor_joblib_runs(root: Path, n: int) -> tuple[Callable[[], object], Callable[[], object]]:
    folder = os.path.join(root, "module", "func")
    os.makedirs(folder)
    keys = [hashlib.md5(str(index).encode()).hexdigest() for index in range(n)]

    def first() -> None:
        for key in keys:
            entry = os.path.join(folder, key)
            os.mkdir(entry)
            for name, size in _JOBLIB_SIZES.items():
                final = os.path.join(entry, name)
                _write_new(f"{final}.tmp", size)
                os.rename(f"{final}.tmp", final)

    def cached() -> None:
        for key in keys:
            _read_all(os.path.join(folder, key, "metadata.json"))
            _read_all(os.path.join(folder, key, "output.pkl"))

    return first, cached


def _joblib_runs(root: Path, n: int) -> tuple[Callable[[], object], Callable[[], object]]:
    import joblib

    cached = joblib.Memory(root, verbose=0).cache(make_payload)

    def run() -> list[NDArray[np.float64]]:
        return [cached(index, PAYLOAD_SIZE) for index in range(n)]

    return run, run


_FACTORIES = {
    "persistable": _persistable_runs,
    "joblib": _joblib_runs,
    "floor": _floor_runs,
    "floor-joblib": _floor_joblib_runs,
}


def measure(impl: str, n: int, repeat: int) -> dict[str, Any]:
    """Median first-run and cached-run times of ``n`` artifacts over ``repeat`` fresh folders."""
    first: list[float] = []
    cached: list[float] = []
    for _ in range(repeat):
        with scratch_dir(f"small-{impl}") as root:
            run_first, run_cached = _FACTORIES[impl](root, n)
            first.append(time_call(run_first))
            cached.append(time_call(run_cached))
            if impl.startswith("floor"):
                continue  # bytes of the right sizes, not payloads
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
    parser.add_argument("--impl", choices=sorted(_FACTORIES), required=True)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.impl, args.n, args.repeat)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
