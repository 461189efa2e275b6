"""Worker of the syscall count: first runs then cached loads of small artifacts, with phase marks.

Runs under ``strace -f -o LOG``; before each phase it stats a path that cannot exist
(``/persistable-bench-phase-<name>``), so the log can be cut into phases and the
system calls of each counted per artifact::

    strace -f -qq -o log python bench/_syscalls.py --impl persistable --n 200
"""

from __future__ import annotations

import argparse
import contextlib
import os

from _common import scratch_dir
from _small_artifacts import _joblib_runs, _persistable_runs

MARK = "/persistable-bench-phase-"


def mark(phase: str) -> None:
    """One failing ``stat`` that names the phase in the strace log."""
    with contextlib.suppress(FileNotFoundError):
        os.stat(MARK + phase)


def main(argv: list[str] | None = None) -> None:
    """First run of ``--n`` artifacts, then their cached loads, each phase marked."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--impl", choices=["persistable", "joblib"], required=True)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args(argv)
    with scratch_dir(f"syscalls-{args.impl}") as root:
        factory = _joblib_runs if args.impl == "joblib" else _persistable_runs
        run_first, run_cached = factory(root, args.n)
        # One artifact before the marks: first-use imports and per-process set-up.
        warm_first, warm_cached = factory(root / "warm", 1)
        warm_first()
        warm_cached()
        mark("first")
        run_first()
        mark("cached")
        run_cached()
        mark("end")


if __name__ == "__main__":
    main()
