"""``make bench``: run every ``bench/bench_*.py`` in turn, each in its own interpreter.

Each benchmark prints its own progress and a markdown table of ratios; arguments given
here (e.g. ``--quick``) are passed on to every one. Exits non-zero if any benchmark failed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    """Run the benchmarks one after the other; returns the number that failed."""
    scripts = sorted(BENCH_DIR.glob("bench_*.py"))
    failed: list[str] = []
    for script in scripts:
        print(f"\n=== {script.name} ===", flush=True)
        started = time.perf_counter()
        completed = subprocess.run([sys.executable, str(script), *argv], check=False)
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
