"""Core benchmark: persist/load of a big array, 1,000 small artifacts, and import time.

Every figure is a ratio against a raw operation or a peer measured in the same run on
this machine: ``np.save``/``np.load`` for a 256 MiB float64 array, ``joblib.Memory``
and ``persistable==1.3.1`` (from PyPI, in its own virtual env since it shares our
import name) for 1,000 small artifacts, and ``import joblib`` for the import time.
Contenders alternate within each repetition so that background load hits both sides
alike, and medians are reported. Run it with ``make bench`` or::

    python bench/bench_core.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    BENCH_DIR,
    TMPFS,
    WORK_DIR,
    Row,
    best_of_interleaved,
    markdown_table,
    peer_python,
    run_json,
    scratch_dir,
    time_call,
)
from _profile import explain_missed, profile_call, profile_script
from numpy.typing import NDArray

from persistable import NpyFileIO, Persistable, PersistableParams

#: The peer that shares our import name, installed into its own env on first use.
PEER = "persistable 1.3.1"
PEER_REQUIREMENTS = ["persistable==1.3.1", "numpy"]

#: What a library like ours cannot avoid importing (dataclass params, logging, JSON
#: metadata, pickle payloads, paths, the bulk digest): the floor of ``import persistable``.
#: ``hashlib`` (SHA-256 of keys, OpenSSL) loads with the first key, not with the import.
FLOOR_MODULES = "dataclasses, logging, json, pickle, pathlib, xxhash"

#: Modules that ``import persistable`` must not pull in (optional extras).
HEAVY_MODULES = ["s3fs", "fsspec", "boto3", "dask", "distributed", "pandas", "pyarrow", "tqdm"]


@dataclass
class BigParams(PersistableParams):
    """Params of the big-array artifact (the array itself is passed untracked)."""

    mib: int


class BigArray(Persistable[NDArray[np.float64], BigParams]):
    """Returns the array handed to ``generate(array=...)``, so only persisting is timed."""

    default_payload_io = NpyFileIO()

    def _generate_payload(self, **untracked_payload_params: Any) -> NDArray[np.float64]:
        array: NDArray[np.float64] = untracked_payload_params["array"]
        return array


def _load() -> str:
    if not hasattr(os, "getloadavg"):
        return "unknown"
    return " / ".join(f"{value:.1f}" for value in os.getloadavg())


def _sync() -> None:
    # Flush dirty pages of the previous step so that no write-back runs during the next.
    if hasattr(os, "sync"):
        os.sync()


def _alternate(
    reps: int, first: Callable[[], float], second: Callable[[], float]
) -> tuple[float, float]:
    """Medians of ``reps`` paired measurements, alternating which side goes first.

    One untimed round runs first: the very first write or load of a process pays for
    fresh memory and cold files (about a second here), whichever side it is.
    """
    first()
    second()
    a: list[float] = []
    b: list[float] = []
    for rep in range(reps):
        if rep % 2 == 0:
            a.append(first())
            b.append(second())
        else:
            b.append(second())
            a.append(first())
    return statistics.median(a), statistics.median(b)


def bench_big_array(
    mib: int, reps: int, base: Path | None = None, where: str = ""
) -> tuple[list[Row], dict[str, str]]:
    """Persist (with checksum), load and memory-mapped load of one big float64 array.

    Also returns, for each row that misses its target, a cProfile of one more call of
    ours (taken while the scratch folder exists), keyed by the row's name.
    """
    array = np.random.default_rng(0).standard_normal(mib * (1 << 20) // 8)
    print(
        f"big array{where}: {array.nbytes / (1 << 20):.0f} MiB float64, {reps} repetitions",
        flush=True,
    )
    with scratch_dir("big", base) as root:
        raw_path = root / "raw.npy"
        ours = BigArray(root / "store", BigParams(mib=mib))
        ours.generate(persist=False, array=array)

        def raw_save() -> float:
            raw_path.unlink(missing_ok=True)
            _sync()
            return time_call(lambda: np.save(raw_path, array))

        def our_persist() -> float:
            ours.store.remove_dir(ours.artifact_dir)
            _sync()
            return time_call(ours.persist)

        persist, save = _alternate(reps, our_persist, raw_save)
        _sync()
        if not ours.exists():
            raise RuntimeError("the big artifact was not committed")

        def raw_load() -> float:
            return time_call(lambda: np.load(raw_path))

        loader = BigArray(root / "store", BigParams(mib=mib))

        def our_load() -> float:
            loader.reset_payload()
            return time_call(loader.load)

        load, np_load = _alternate(reps, our_load, raw_load)
        if not np.array_equal(loader.payload, array):
            raise RuntimeError("the loaded big array differs from the persisted one")
        loader.reset_payload()

        mapped = BigArray(root / "store", BigParams(mib=mib), payload_io=NpyFileIO(mmap_mode="r"))

        def our_mmap() -> float:
            mapped.reset_payload()
            return time_call(mapped.load)

        def raw_mmap() -> float:
            return time_call(lambda: np.load(raw_path, mmap_mode="r"))

        mmap_reps = max(reps, 21)
        mmap, np_mmap = _alternate(mmap_reps, our_mmap, raw_mmap)
        if mapped.payload[-1] != array[-1]:
            raise RuntimeError("the memory-mapped array differs from the persisted one")
        mapped.reset_payload()
        size = f"{mib} MiB{where}"
        rows = [
            Row(f"persist {size} (with checksum)", persist, "s", "np.save", save, 1.1),
            Row(f"load {size}", load, "s", "np.load", np_load, 1.05),
            Row(f"mmap load {size}", mmap, "s", "np.load mmap", np_mmap, 0.002, absolute=True),
        ]

        def persist_once() -> None:
            ours.store.remove_dir(ours.artifact_dir)
            _sync()
            ours.persist()

        calls = {rows[0].name: persist_once, rows[1].name: our_load, rows[2].name: our_mmap}
        profiles = {
            row.name: profile_call(calls[row.name], f"one {row.name.split(' (')[0]}")
            for row in rows
            if row.met is False
        }
    return rows, profiles


def bench_small_artifacts(
    n: int, reps: int, base: Path | None = None, where: str = ""
) -> list[Row]:
    """``n`` small artifacts: first runs and cached loads against joblib and persistable 1.3.1.

    ``base`` puts the scratch folders of every contender there (``/dev/shm`` for tmpfs).
    """
    worker = str(BENCH_DIR / "_small_artifacts.py")
    contenders = {
        "persistable": [sys.executable, worker, "--impl", "persistable"],
        "joblib": [sys.executable, worker, "--impl", "joblib"],
        # The system calls of each layout alone, in the same rounds: what no code can beat.
        "floor": [sys.executable, worker, "--impl", "floor"],
        "floor-joblib": [sys.executable, worker, "--impl", "floor-joblib"],
    }
    try:
        peer = peer_python("persistable131", PEER_REQUIREMENTS)
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"WARNING: no env for persistable 1.3.1 ({error}); its rows are left out", flush=True)
    else:
        contenders[PEER] = [peer, worker, "--impl", "persistable"]
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the peer env must not see this checkout
    if base is not None:
        env["PERSISTABLE_BENCH_SCRATCH"] = str(base)
    print(
        f"small artifacts{where}: {n} per run, {reps} repetitions of {', '.join(contenders)}",
        flush=True,
    )
    first: dict[str, list[float]] = {name: [] for name in contenders}
    cached: dict[str, list[float]] = {name: [] for name in contenders}
    names = list(contenders)
    for rep in range(reps):
        order = names[rep % len(names) :] + names[: rep % len(names)]
        for name in order:
            result = run_json([*contenders[name], "--n", str(n), "--repeat", "1"], env=env)
            first[name].append(result["first"])
            cached[name].append(result["cached"])
    f = {name: statistics.median(values) for name, values in first.items()}
    c = {name: statistics.median(values) for name, values in cached.items()}
    label = f"{n:,} small artifacts{where}"
    rows = [Row(f"{label}, first run", f["persistable"], "s", "joblib", f["joblib"], 1.0)]
    if PEER in c:
        rows.append(Row(f"{label}, cached", c["persistable"], "s", "1.3.1", c[PEER], 1.0))
    rows.append(Row(f"{label}, cached", c["persistable"], "s", "joblib", c["joblib"], 0.4))
    if PEER in f:
        rows.append(Row(f"{label}, first run", f["persistable"], "s", "1.3.1", f[PEER]))
    floor = f"{label}, our layout's system calls alone (floor)"
    rows.append(Row(f"{floor}, first run", f["floor"], "s", "joblib", f["joblib"]))
    rows.append(
        Row(f"{floor}, first run", f["floor"], "s", "joblib's layout alone", f["floor-joblib"])
    )
    rows.append(Row(f"{floor}, cached", c["floor"], "s", "joblib", c["joblib"]))
    return rows


def _import_code(module: str, preload: str) -> str:
    return (
        f"{preload}import time\n"
        "started = time.perf_counter()\n"
        f"import {module}\n"
        "print(time.perf_counter() - started)\n"
    )


def bench_import(repeat: int) -> list[Row]:
    """``import persistable`` against ``import joblib`` in fresh interpreters, best of ``repeat``."""
    print(f"import time: best of {repeat} fresh interpreters", flush=True)
    leaked = run_json(
        [
            sys.executable,
            "-c",
            "import json, sys, persistable; "
            f"print(json.dumps(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)))",
        ]
    )
    if leaked:
        print(f"WARNING: import persistable imported optional modules: {leaked}", flush=True)
    numpy_loaded = run_json(
        [
            sys.executable,
            "-c",
            "import json, sys, persistable; print(json.dumps('numpy' in sys.modules))",
        ]
    )
    print(f"import persistable imports numpy: {numpy_loaded}", flush=True)
    best = best_of_interleaved(
        {
            "ours": _import_code("persistable", ""),
            "joblib": _import_code("joblib", ""),
            "ours_np": _import_code("persistable", "import numpy\n"),
            "joblib_np": _import_code("joblib", "import numpy\n"),
            "numpy": _import_code("numpy", ""),
            "floor": _import_code(FLOOR_MODULES, ""),
        },
        repeat,
    )
    ours, joblib, ours_np = best["ours"], best["joblib"], best["ours_np"]
    joblib_np, numpy, floor = best["joblib_np"], best["numpy"], best["floor"]
    return [
        Row("import persistable", ours, "s", "import joblib", joblib, 0.25),
        Row("import persistable, numpy already imported", ours_np, "s", "joblib", joblib_np, 0.25),
        Row("import numpy (for reference)", numpy, "s"),
        Row("import of the stdlib modules any such library needs", floor, "s", "joblib", joblib),
    ]


def bench_cli_help(repeat: int) -> list[Row]:
    """Wall time of ``persistable --help`` (the console script), best of ``repeat``."""
    script = Path(sys.executable).with_name("persistable")
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "persistable"]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([*command, "--help"], check=True, capture_output=True, cwd=WORK_DIR)
        times.append(time.perf_counter() - started)
    bare = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, capture_output=True)
        bare.append(time.perf_counter() - started)
    return [
        Row("persistable --help, wall time", min(times), "s", target=0.3),
        Row("python -c pass (for reference)", min(bare), "s"),
    ]


def small_profiles(n: int, base: Path | None, where: str) -> Callable[[str], str]:
    """cProfiles of ``n`` first runs and ``n`` cached loads in one fresh folder, taken once.

    Returns a function of ``"first"`` or ``"cached"`` (the first call measures both).
    """
    sys.path.insert(0, str(BENCH_DIR))
    from _small_artifacts import _persistable_runs

    taken: dict[str, str] = {}

    def get(which: str) -> str:
        if not taken:
            with scratch_dir("profile", base) as root:
                run_first, run_cached = _persistable_runs(root, n)
                warm_first, _ = _persistable_runs(root / "warm", 1)
                warm_first()
                taken["first"] = profile_call(run_first, f"{n:,} first runs{where}")
                taken["cached"] = profile_call(run_cached, f"{n:,} cached loads{where}")
        return taken[which]

    return get


def import_profile(preload: str = "") -> str:
    """cProfile of ``import persistable`` in a fresh interpreter (after ``preload``)."""
    title = "import persistable" + (f" after {preload.strip()}" if preload else "")
    return profile_script("import persistable\n", title, setup=preload)


def compile_bytecode() -> None:
    """Bring the package's ``.pyc`` files up to date, as an installed package has them.

    With ``PYTHONDONTWRITEBYTECODE`` set (or after an edit) every fresh interpreter
    would compile the changed modules again: that is not what an import costs.
    """
    import compileall

    import persistable

    compileall.compile_dir(str(Path(persistable.__file__).parent), quiet=1)


def cli_help_profile() -> str:
    """cProfile of ``persistable --help`` (the console script's main) in a fresh interpreter."""
    code = (
        "import sys\n"
        "sys.argv = ['persistable', '--help']\n"
        "from persistable.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
    )
    return profile_script(code, "persistable --help")


_SYSCALL = re.compile(r"^\d+\s+(?:<\.\.\. )?([a-z_0-9]+)[( ]")


def _count_phases(log: Path) -> dict[str, Counter[str]]:
    phases: dict[str, Counter[str]] = {}
    current: Counter[str] | None = None
    with log.open(errors="replace") as lines:
        for line in lines:
            if "persistable-bench-phase-" in line:
                name = line.split("persistable-bench-phase-", 1)[1].split('"', 1)[0]
                current = phases.setdefault(name, Counter())
                continue
            match = _SYSCALL.match(line)
            if current is not None and match and "resumed>" not in line:
                current[match.group(1)] += 1
    return phases


def bench_syscalls(n: int, base: Path | None) -> tuple[list[Row], str]:
    """System calls per first run and per cached load (``strace -f``), ours against joblib."""
    strace = shutil.which("strace")
    if strace is None:
        print("WARNING: no strace on this machine; the syscall counts are left out", flush=True)
        return [], ""
    counts: dict[str, dict[str, Counter[str]]] = {}
    env = dict(os.environ)
    if base is not None:
        env["PERSISTABLE_BENCH_SCRATCH"] = str(base)
    with tempfile.TemporaryDirectory() as folder:
        for impl in ("persistable", "joblib"):
            log = Path(folder) / f"{impl}.strace"
            command = [strace, "-f", "-qq", "-o", str(log), sys.executable]
            command += [str(BENCH_DIR / "_syscalls.py"), "--impl", impl, "--n", str(n)]
            subprocess.run(command, check=True, capture_output=True, env=env, cwd=BENCH_DIR)
            counts[impl] = _count_phases(log)
    rows = []
    lines = [f"```text syscalls per artifact ({n} artifacts, strace -f)"]
    for phase in ("first", "cached"):
        ours = sum(counts["persistable"][phase].values()) / n
        theirs = sum(counts["joblib"][phase].values()) / n
        rows.append(Row(f"system calls per artifact, {phase}", ours, "", "joblib", theirs))
        for impl in ("persistable", "joblib"):
            top = counts[impl][phase].most_common()
            listed = ", ".join(f"{name} {count / n:g}" for name, count in top)
            lines.append(f"{impl}, {phase}: {listed}")
    lines.append("```")
    return rows, "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the core benchmarks and print their table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the script")
    parser.add_argument("--mib", type=int, default=None, help="big array size in MiB (256)")
    parser.add_argument("--n", type=int, default=None, help="number of small artifacts (1000)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions (9 big, 5 small)")
    parser.add_argument(
        "--only",
        default="big,small,import,cli,profile",
        help="comma-separated parts to run: big, small, import, cli, profile (default all)",
    )
    args = parser.parse_args(argv)
    mib = args.mib or (16 if args.quick else 256)
    n = args.n or (100 if args.quick else 1000)
    reps = args.reps or 3
    big_reps = args.reps or (3 if args.quick else 9)  # cheap, and disk writes spread widely
    print(f"## bench_core (scratch folder {WORK_DIR}, Python {sys.version.split()[0]})", flush=True)
    print(f"{os.cpu_count()} CPUs, load average {_load()} at the start", flush=True)
    parts = set(args.only.split(","))
    rows: list[Row] = []
    extra: list[str] = []
    tmpfs = ", tmpfs"
    profilers: dict[str, Callable[[], str]] = {}
    if "big" in parts:
        for base, where in [(None, ""), *([(TMPFS, tmpfs)] if TMPFS is not None else [])]:
            big_rows, big_profiles = bench_big_array(mib, big_reps, base, where)
            rows += big_rows
            profilers.update({name: partial(str, text) for name, text in big_profiles.items()})
    if "small" in parts:
        for base, where in [(None, ""), *([(TMPFS, tmpfs)] if TMPFS is not None else [])]:
            rows += bench_small_artifacts(n, reps, base, where)
            get = small_profiles(n, base, where)
            label = f"{n:,} small artifacts{where}"
            profilers[f"{label}, first run"] = partial(get, "first")
            profilers[f"{label}, cached"] = partial(get, "cached")
    if "import" in parts or "cli" in parts:
        compile_bytecode()
    if "import" in parts:
        rows += bench_import(5 if args.quick else 15)
        profilers["import persistable"] = import_profile
        profilers["import persistable, numpy already imported"] = partial(
            import_profile, "import numpy\n"
        )
    if "cli" in parts:
        rows += bench_cli_help(3 if args.quick else 7)
        profilers["persistable --help, wall time"] = cli_help_profile
    if "profile" in parts:
        print("syscall counts of small artifacts (tmpfs) ...", flush=True)
        syscall_rows, syscalls = bench_syscalls(50 if args.quick else 200, TMPFS)
        rows += syscall_rows
        extra.append(syscalls)
    print()
    print(markdown_table(rows))
    for block in extra:
        if block:
            print()
            print(block)
    print("\nprofiles of the rows that miss their target ...", flush=True)
    for block in explain_missed(rows, profilers):
        print()
        print(block)
    print(f"\nload average {_load()} at the end (other work on the machine widens the spread)")
    missed = [row.name for row in rows if row.met is False]
    print(f"\n{len(missed)} target(s) not met" + (f": {', '.join(missed)}" if missed else ""))


if __name__ == "__main__":
    main()
