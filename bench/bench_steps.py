"""``@step`` against ``joblib.Memory.cache``: a cached call's overhead and a 1,000-call first run.

Both cache the same small function (two small arguments, a short list result) in a
fresh local folder, in this one process, measured alternately so load changes hit both.
The load average is printed before and after (figures: docs/benchmarks.md, "Steps").
``--profile`` prints where a cached call and a first call spend their time (cProfile).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import Row, markdown_table, scratch_dir

from persistable import step


def small(x: int, scale: float = 1.0) -> list[float]:
    """A small function with small arguments and a small result."""
    return [x * scale, x + scale]


def _per_call(func: Callable[[int], Any], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        func(7)
    return (time.perf_counter() - started) / calls


def bench_cached(calls: int, rounds: int, root: Path) -> list[Row]:
    """Seconds per cached call, median of ``rounds`` alternating rounds of ``calls`` calls."""
    import joblib

    ours = step(data_dir=root / "ours", payload_name="small")(small)
    theirs = joblib.Memory(root / "joblib", verbose=0).cache(small)
    ours(7)
    theirs(7)
    times: dict[str, list[float]] = {"ours": [], "joblib": []}
    for index in range(rounds):
        pair = [("ours", ours), ("joblib", theirs)]
        for name, func in pair if index % 2 == 0 else pair[::-1]:
            times[name].append(_per_call(func, calls))
    mine, peer = statistics.median(times["ours"]), statistics.median(times["joblib"])
    return [Row("cached @step call, small arguments", mine, "s", "joblib", peer, 1.0)]


def bench_first_run(n: int, rounds: int, root: Path) -> list[Row]:
    """Seconds for ``n`` distinct first calls (compute and persist each), median of ``rounds``."""
    import joblib

    times: dict[str, list[float]] = {"ours": [], "joblib": []}
    for index in range(rounds):
        ours = step(data_dir=root / f"ours-{index}", payload_name="small")(small)
        theirs = joblib.Memory(root / f"joblib-{index}", verbose=0).cache(small)
        pair = [("ours", ours), ("joblib", theirs)]
        for name, func in pair if index % 2 == 0 else pair[::-1]:
            started = time.perf_counter()
            for i in range(n):
                func(i)
            times[name].append(time.perf_counter() - started)
    mine, peer = statistics.median(times["ours"]), statistics.median(times["joblib"])
    # The issue sets no target for the first run: it is measured against joblib only.
    return [Row(f"{n:,} first @step calls", mine, "s", "joblib", peer)]


def profile(calls: int, root: Path, top: int = 25) -> None:
    """cProfile of ``calls`` cached calls and of ``calls`` first calls, by own time."""
    import cProfile
    import pstats

    ours = step(data_dir=root / "profiled", payload_name="small")(small)
    ours(7)
    for label, arguments in (("cached calls", [7] * calls), ("first calls", range(calls))):
        profiler = cProfile.Profile()
        profiler.enable()
        for x in arguments:
            ours(x)
        profiler.disable()
        print(f"## {calls} {label}")
        pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the script")
    parser.add_argument("--profile", action="store_true", help="print cProfile tables instead")
    args = parser.parse_args(argv)
    calls, rounds, n = (200, 3, 100) if args.quick else (2000, 7, 1000)
    before = _load()
    with scratch_dir("steps") as root:
        if args.profile:
            profile(min(calls, 1000), root)
            return 0
        rows = bench_cached(calls, rounds, root) + bench_first_run(n, max(3, rounds // 2), root)
    print(markdown_table(rows))
    print(f"\nload average before: {before}; after: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
