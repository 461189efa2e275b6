"""Samples and science serializers: Cache hits against plain pickle loads, map on processes
against serial, and zarr / OME-TIFF write and read of a large array against the raw library
calls (issue 12's "Done when" rows, each with its target).

Prints a markdown table (see docs/benchmarks.md). For every row whose target is not met
it then prints how far it is from the target and a short cProfile of one run of ours
(fenced, so ``make bench`` records it with the table). Wall-clock rows take turns with
their reference; the Cache row also has its CPU-time twin (``time.process_time``), which
background load disturbs less.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import pickle
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xxhash

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench_samples_nodes import Burn, Image, Normalize
from _common import Row, markdown_table, run_json, scratch_dir, time_call
from _profile import explain_missed, profile_call

from persistable import Persistable, PersistableParams
from persistable.io import OmeTiffFileIO, ZarrFileIO
from persistable.samples import Cache, Compose


@dataclass
class ArrayParams(PersistableParams):
    """Names one array."""

    name: str


class Held(Persistable[Any, ArrayParams]):
    """Persists the array handed to load_generate()."""

    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        return untracked_payload_params["payload"]


#: Targets of issue 12's "Done when" (largest ratio ours / reference).
CACHE_TARGET = 1.2
ARRAY_TARGET = 1.15
#: map on processes against serial: the issue sets no number; on 2 workers the ideal is
#: 0.5x, and 0.7x leaves room for starting the workers and moving the samples.
MAP_TARGET = 0.7

#: One run of "ours" per row name, for the profile of a row that misses its target.
PROFILES: dict[str, Callable[[], object]] = {}


def _cpu_per_call(func: Callable[[], object], repeat: int) -> float:
    """Median CPU time (this process) of ``repeat`` calls of ``func``."""
    times = []
    for _ in range(repeat):
        started = time.process_time()
        func()
        times.append(time.process_time() - started)
    return statistics.median(times)


def cache_hit(folder: Path, count: int) -> list[Row]:
    """Per-sample time of a pipeline whose one step is a Cache hit, against pickle.load of the same sample."""
    rng = np.random.default_rng(0)
    samples = [
        Image(id=f"s{index}", image=rng.random((512, 512), dtype=np.float32))
        for index in range(count)
    ]
    pipeline = Compose([Cache(Normalize(scale=2.0))])
    store = folder / "cache"
    pipeline.map(samples, store=store, progress=False)
    paths = []
    for sample in samples:
        path = folder / f"{sample.id}.pkl"
        path.write_bytes(pickle.dumps(pipeline(sample, store=store), protocol=5))
        paths.append(path)

    def hits() -> None:
        for sample in samples:
            pipeline(sample, store=store)

    def plain() -> None:
        for path in paths:
            with path.open("rb") as stream:
                pickle.load(stream)

    def floor() -> None:
        # What any verified hit must do: hash the input (its content is in the key),
        # load the payload and hash its bytes (here: the loaded image's, as large).
        for sample, path in zip(samples, paths, strict=True):
            xxhash.xxh3_128_hexdigest(sample.image.data)
            with path.open("rb") as stream:
                xxhash.xxh3_128_hexdigest(pickle.load(stream).image.data)

    walls: dict[str, list[float]] = {"ours": [], "raw": [], "floor": []}
    cpus: dict[str, list[float]] = {"ours": [], "raw": [], "floor": []}
    for round_ in range(7):  # in turns, so all see the same load; who goes first alternates
        turns = (("ours", hits), ("raw", plain), ("floor", floor))
        for name, func in turns if round_ % 2 == 0 else turns[::-1]:
            walls[name].append(time_call(func) / count)
            cpus[name].append(_cpu_per_call(func, 1) / count)
    name = f"Cache hit per sample (1 MiB image, {count} samples)"
    PROFILES[name] = hits
    return [
        Row(
            name,
            statistics.median(walls["ours"]),
            "s",
            "pickle.load",
            statistics.median(walls["raw"]),
            CACHE_TARGET,
        ),
        Row(
            f"Cache hit per sample, CPU time (for reference, {count} samples)",
            statistics.median(cpus["ours"]),
            "s",
            "pickle.load",
            statistics.median(cpus["raw"]),
        ),
        Row(
            "Cache hit floor: pickle.load + xxh3 of the input + xxh3 of the payload (reference)",
            statistics.median(walls["floor"]),
            "s",
            "pickle.load",
            statistics.median(walls["raw"]),
        ),
    ]


def _map_round(count: int, workers: int) -> dict[str, float]:
    """One serial map then one on processes, in this process (the first on processes of a
    fresh process starts the forkserver that every later pool forks its workers from)."""
    samples = [Image(id=f"s{index}", image=np.zeros(4, np.float32)) for index in range(count)]
    pipeline = Compose([Burn()])
    serial = time_call(lambda: pipeline.map(samples, progress=False))
    processes = time_call(
        lambda: pipeline.map(samples, executor="processes", max_workers=workers, progress=False)
    )
    return {"serial": serial, "processes": processes}


def mapping(count: int, workers: int, rounds: int) -> list[Row]:
    """``map`` of CPU-bound samples on processes against serial: in fresh processes, and with
    the forkserver running.

    A program's first pool starts the forkserver: a Python that imports what workers need
    (numpy, pydantic, persistable; about 0.25 s on one core) before the first worker forks.
    Later pools fork from it, as in bench_run.py's rows (whose earlier rows started it).
    The first figure is taken in ``rounds`` fresh interpreters, the second in ``rounds``
    turns here after one map has started the server; each is the median of its rounds.
    """
    fresh: dict[str, list[float]] = {"serial": [], "processes": []}
    for _ in range(rounds):
        times = run_json(
            [sys.executable, __file__, "--map-round", str(count), str(workers)],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        for name in fresh:
            fresh[name].append(times[name])
    samples = [Image(id=f"s{index}", image=np.zeros(4, np.float32)) for index in range(count)]
    pipeline = Compose([Burn()])

    def on_processes() -> None:
        pipeline.map(samples, executor="processes", max_workers=workers, progress=False)

    pipeline.map(samples[:4], executor="processes", max_workers=workers, progress=False)
    running: dict[str, list[float]] = {"serial": [], "processes": []}
    for round_ in range(rounds):  # in turns; who goes first alternates
        turns = (
            ("serial", lambda: pipeline.map(samples, progress=False)),
            ("processes", on_processes),
        )
        for name, func in turns if round_ % 2 == 0 else turns[::-1]:
            running[name].append(time_call(func))
    label = f"map of {count} CPU-bound samples, processes ({workers} workers)"
    name = f"{label}, a fresh program (starts the forkserver), median of {rounds}"
    warm = f"{label}, forkserver running (as bench_run's rows), median of {rounds}"
    PROFILES[name] = on_processes
    PROFILES[warm] = on_processes
    return [
        Row(
            name,
            statistics.median(fresh["processes"]),
            "s",
            "serial",
            statistics.median(fresh["serial"]),
            MAP_TARGET,
        ),
        Row(
            warm,
            statistics.median(running["processes"]),
            "s",
            "serial",
            statistics.median(running["serial"]),
            MAP_TARGET,
        ),
    ]


def _turns(
    ours: Callable[[Path], object], raw: Callable[[Path], object], folder: Path, repeat: int
) -> dict[str, tuple[float, float]]:
    """Median wall and CPU times of ``ours`` and ``raw`` called in turns, each writing into a fresh folder removed after it.

    Dirty pages are flushed (``os.sync``, untimed) before each call.

    CPU time is this process's, all threads (zarr's codec threads included).
    """
    walls: dict[str, list[float]] = {"ours": [], "raw": []}
    cpus: dict[str, list[float]] = {"ours": [], "raw": []}
    for round_ in range(repeat):
        pair = (("ours", ours), ("raw", raw))
        for name, func in pair if round_ % 2 == 0 else pair[::-1]:  # who goes first alternates
            target = folder / f"{name}-{os.urandom(4).hex()}"
            if hasattr(os, "sync"):
                # Nothing dirty left by the previous call (its removal, other writers)
                # is written back during this timed one, whichever side it is.
                os.sync()
            started = time.process_time()
            walls[name].append(time_call(functools.partial(func, target)))
            cpus[name].append(time.process_time() - started)
            shutil.rmtree(target, ignore_errors=True)
            if target.with_suffix(".ome.tiff").exists():
                target.with_suffix(".ome.tiff").unlink()
    return {
        name: (statistics.median(values["ours"]), statistics.median(values["raw"]))
        for name, values in (("wall", walls), ("cpu", cpus))
    }


def arrays(
    folder: Path,
    size_mib: int,
    repeat: int = 6,
    formats: frozenset[str] = frozenset({"zarr", "tiff"}),
) -> list[Row]:
    """zarr and OME-TIFF write and read of one large array, against zarr and tifffile called directly.

    Ours and the raw call take turns (one write each, then the next round), so both see
    the same background load and the same state of the page cache; every written folder
    is removed before the next write.
    """
    import tifffile
    import zarr

    side = int((size_mib * 2**20 / 4 / 16) ** 0.5)
    data = np.random.default_rng(1).random((16, side, side), dtype=np.float32)
    chunks = (1, side, side)
    tiff_options: dict[str, Any] = {
        "ome": True,
        "metadata": {"axes": "ZYX"},
        "photometric": "minisblack",
    }
    tiff_io = OmeTiffFileIO(dims="ZYX")
    rows: list[Row] = []

    def raw_zarr_write(target: Path) -> None:
        array = zarr.create_array(
            zarr.storage.LocalStore(target), shape=data.shape, dtype=data.dtype, chunks=chunks
        )
        array[...] = data

    def ours_zarr_write(target: Path) -> None:
        Held(target, ArrayParams("z"), payload_io=ZarrFileIO(chunks=chunks)).load_generate(
            payload=data
        )

    def raw_tiff_write(target: Path) -> None:
        tifffile.imwrite(target.with_suffix(".ome.tiff"), data, **tiff_options)

    def ours_tiff_write(target: Path) -> None:
        Held(target, ArrayParams("t"), payload_io=tiff_io).load_generate(payload=data)

    label = f"{size_mib} MiB" if size_mib < 1024 else f"{size_mib // 1024} GiB"
    cpu_rows: list[Row] = []

    def add(
        name: str,
        ours_call: Callable[[Path], object],
        raw_call: Callable[[Path], object],
        peer: str,
    ) -> None:
        times = _turns(ours_call, raw_call, folder, repeat)
        wall_ours, wall_raw = times["wall"]
        rows.append(Row(name, wall_ours, "s", peer, wall_raw, ARRAY_TARGET))
        cpu_ours, cpu_raw = times["cpu"]
        cpu_rows.append(Row(f"{name}, CPU time (for reference)", cpu_ours, "s", peer, cpu_raw))
        PROFILES[name] = functools.partial(_once, ours_call, folder)

    if "zarr" in formats:
        add(f"zarr write {label}", ours_zarr_write, raw_zarr_write, "zarr")
    if "tiff" in formats:
        add(f"OME-TIFF write {label}", ours_tiff_write, raw_tiff_write, "tifffile")

    zstore, raw_zarr = folder / "read-zarr-store", folder / "read.zarr"
    if "zarr" in formats:
        ours_zarr_write(zstore)
        raw_zarr_write(raw_zarr)
    tstore, raw_tiff = folder / "read-tiff-store", folder / "read.ome.tiff"
    if "tiff" in formats:
        ours_tiff_write(tstore)
        tifffile.imwrite(raw_tiff, data, **tiff_options)

    def ours_zarr_read(_: Path) -> None:
        Held(zstore, ArrayParams("z"), payload_io=ZarrFileIO()).payload[...]

    def raw_zarr_read(_: Path) -> None:
        zarr.open_array(zarr.storage.LocalStore(raw_zarr, read_only=True), mode="r")[...]

    def ours_tiff_read(_: Path) -> None:
        Held(tstore, ArrayParams("t"), payload_io=tiff_io).load()

    def raw_tiff_read(_: Path) -> None:
        tifffile.imread(raw_tiff)

    if "zarr" in formats:
        add(f"zarr read {label}", ours_zarr_read, raw_zarr_read, "zarr")
    if "tiff" in formats:
        add(f"OME-TIFF read {label}", ours_tiff_read, raw_tiff_read, "tifffile")
    return rows + cpu_rows


def _once(func: Callable[[Path], object], folder: Path) -> None:
    """One call of ``func`` into a fresh folder, removed after it."""
    target = folder / f"profiled-{os.urandom(4).hex()}"
    try:
        func(target)
    finally:
        shutil.rmtree(target, ignore_errors=True)
        target.with_suffix(".ome.tiff").unlink(missing_ok=True)


def main(argv: list[str]) -> None:
    """Run the three groups and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the script")
    parser.add_argument(
        "--only",
        choices=("cache", "map", "arrays", "zarr", "tiff"),
        action="append",
        help="run only these groups (arrays: zarr and tiff)",
    )
    parser.add_argument("--size-mib", type=int, help="array size (default 1024, 16 with --quick)")
    parser.add_argument(
        "--map-round", nargs=2, type=int, metavar=("COUNT", "WORKERS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.map_round:  # one round of mapping() in a fresh interpreter: JSON of its times
        print(json.dumps(_map_round(*args.map_round)), flush=True)
        return
    groups = set(args.only or ("cache", "map", "arrays"))
    size = args.size_mib or (16 if args.quick else 1024)
    rows: list[Row] = []
    with scratch_dir("samples") as folder:
        if "cache" in groups:
            rows += cache_hit(folder, 20 if args.quick else 200)
        if "map" in groups:
            rows += mapping(20 if args.quick else 200, 2, 2 if args.quick else 3)
        formats = frozenset(
            name for name in ("zarr", "tiff") if name in groups or "arrays" in groups
        )
        if formats:
            rows += arrays(folder, size, formats=formats)
        print(markdown_table(rows), flush=True)
        profilers = {
            name: functools.partial(profile_call, func, f"one run of ours: {name}")
            for name, func in PROFILES.items()
        }
        for block in explain_missed(rows, profilers):
            print()
            print(block, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
