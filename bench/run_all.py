"""``make bench``: run every ``bench/bench_*.py`` in turn, each in its own interpreter.

Each benchmark prints its own progress and a markdown table of ratios. ``--quick``
is passed on to every one (smaller sizes, to try the scripts); names select some of
them (``python bench/run_all.py core s3`` runs ``bench_core.py`` and ``bench_s3.py``).
Exits non-zero if any benchmark failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    """Run the selected benchmarks one after the other; returns the number that failed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the scripts")
    args = parser.parse_args(argv)
    scripts = sorted(BENCH_DIR.glob("bench_*.py"))
    if args.names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.names]
        if not scripts:
            parser.error(f"no benchmark named {args.names}; see bench/bench_*.py")
    failed: list[str] = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        started = time.perf_counter()
        command = [sys.executable, str(script)] + (["--quick"] if args.quick else [])
        completed = subprocess.run(command, check=False)
        elapsed = time.perf_counter() - started
        status = "ok" if completed.returncode == 0 else f"FAILED (exit {completed.returncode})"
        print(f"=== {script.name}: {status} in {elapsed:.0f} s ===", flush=True)
        if completed.returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"\n{len(failed)} of {len(scripts)} benchmarks failed: {', '.join(failed)}")
    return len(failed)


if __name__ == "__main__":
    sys.exit(1 if main(sys.argv[1:]) else 0)
