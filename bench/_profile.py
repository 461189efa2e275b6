"""Where the time goes, for the rows that miss their target: a short cProfile in the same run.

A benchmark script measures its rows, prints its table, then hands the rows to
:func:`explain_missed` with one profiler per kind of row. For every row that misses its
target it prints a fenced block that ``make bench`` copies into docs/benchmarks.md:
the distance to the target and the top entries of a cProfile of our side's work::

    print(markdown_table(rows))
    for block in explain_missed(rows, {"first run": lambda: profile_call(run, "1,000 first runs")}):
        print()
        print(block)

:func:`profile_call` profiles a callable in this process; :func:`profile_script`
profiles Python code in a fresh interpreter (imports, the command line). Both list the
functions of the ``persistable`` package by cumulative time (what our side spends,
callees included) and then every function by own time (where it ends up: system calls,
JSON, pickle), a few lines each.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from _common import Row

__all__ = ["distance", "explain_missed", "format_stats", "profile_call", "profile_script"]

#: Entries of our side listed by cumulative time, and of everything by own time.
TOP_OURS = 12
TOP_OWN = 6
_PACKAGE = f"{os.sep}persistable{os.sep}"


def _where(filename: str, line: int, name: str) -> str:
    """``persistable/_keys.py:149(dependency_order)``; other files by their base name."""
    if _PACKAGE in filename:
        filename = "persistable" + os.sep + filename.rsplit(_PACKAGE, 1)[1]
    elif filename != "~":
        filename = os.path.basename(filename)
    return f"{filename}:{line}({name})" if filename != "~" else name


def _ours(filename: str) -> bool:
    return _PACKAGE in filename and "site-packages" not in filename.split(_PACKAGE)[-1]


def format_stats(
    stats: pstats.Stats,
    title: str,
    seconds: float,
    top_ours: int = TOP_OURS,
    top_own: int = TOP_OWN,
) -> list[str]:
    """The lines of a profile: our side's functions by cumulative time, then all by own time."""
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, object]]
    raw = stats.stats  # type: ignore[attr-defined]
    total = max(seconds, 1e-9)
    entries = [(ct, tt, nc, func) for func, (_cc, nc, tt, ct, _callers) in raw.items()]
    ours = sorted((e for e in entries if _ours(e[3][0])), key=lambda e: e[0], reverse=True)
    own = sorted(entries, key=lambda e: e[1], reverse=True)
    lines = [f"cProfile of {title}: {seconds:.3g} s under the profiler"]
    lines.append(f"  our side, by cumulative time (top {top_ours}):")
    for cumtime, _tottime, ncalls, func in ours[:top_ours]:
        lines.append(
            f"    {cumtime:8.3f} s {100 * cumtime / total:5.1f}% {ncalls:>8}  {_where(*func)}"
        )
    lines.append(f"  everything, by own time (top {top_own}):")
    for _cumtime, tottime, ncalls, func in own[:top_own]:
        lines.append(
            f"    {tottime:8.3f} s {100 * tottime / total:5.1f}% {ncalls:>8}  {_where(*func)}"
        )
    return lines


def profile_call(func: Callable[[], object], title: str) -> str:
    """Profile one call of ``func`` in this process; the lines of :func:`format_stats`."""
    profile = cProfile.Profile()
    started = time.perf_counter()
    profile.enable()
    try:
        func()
    finally:
        profile.disable()
    seconds = time.perf_counter() - started
    return "\n".join(format_stats(pstats.Stats(profile), title, seconds))


_RUNNER = """\
import cProfile, sys, time
{setup}
code = compile(open(sys.argv[1], encoding="utf-8").read(), "profiled", "exec")
profile = cProfile.Profile()
started = time.perf_counter()
profile.enable()
try:
    exec(code, {{"__name__": "__main__"}})
except SystemExit:
    pass
finally:
    profile.disable()
    seconds = time.perf_counter() - started
    profile.dump_stats(sys.argv[2])
    print(seconds)
"""


def profile_script(code: str, title: str, setup: str = "", python: str | None = None) -> str:
    """Profile ``code`` in a fresh interpreter, after ``setup`` (not profiled)."""
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "profiled.py"
        script.write_text(code, encoding="utf-8")
        runner = Path(folder) / "runner.py"
        runner.write_text(_RUNNER.format(setup=setup), encoding="utf-8")
        out = Path(folder) / "profile.stats"
        completed = subprocess.run(
            [python or sys.executable, str(runner), str(script), str(out)],
            capture_output=True,
            text=True,
            check=False,
            cwd=folder,
        )
        if completed.returncode != 0 or not out.is_file():
            return (
                f"(no profile of {title}: exit {completed.returncode}, {completed.stderr[-300:]})"
            )
        seconds = float(completed.stdout.strip().splitlines()[-1])
        return "\n".join(format_stats(pstats.Stats(str(out)), title, seconds))


def distance(row: Row) -> str:
    """How far a row is from its target, in one line."""
    if row.target is None:
        return f"{row.name}: no target"
    if row.peer is not None and not row.absolute and row.ratio is not None:
        measured, unit, against = row.ratio, "x", f" ({row.peer_name} = 1x)"
    else:
        measured, unit, against = row.value, f" {row.unit}", ""
    over = measured / row.target if row.target else float("inf")
    cut = 100 * (1 - row.target / measured) if measured else 0.0
    return (
        f"{row.name}: {measured:.3g}{unit}{against}, target <= {row.target:g}{unit}: "
        f"{over:.2f}x the target ({cut:.0f}% of ours must go)"
    )


def explain_missed(rows: Sequence[Row], profilers: Mapping[str, Callable[[], str]]) -> list[str]:
    """One fenced block per profiler with the missed rows it explains: distances, profile.

    A row goes to the profiler keyed by its exact name, else to the first whose key is
    part of its name; each profiler runs once, only when one of its rows missed. Missed rows without a profiler get their
    distances in a last block.
    """
    groups: dict[str, list[Row]] = {}
    for row in rows:
        if row.met is not False:
            continue
        key = (
            row.name if row.name in profilers else next((k for k in profilers if k in row.name), "")
        )
        groups.setdefault(key, []).append(row)
    blocks = []
    for key, missed in groups.items():
        lines = [f"```text missed: {key or 'other rows'}"]
        lines += [f"distance: {distance(row)}" for row in missed]
        if key:
            try:
                lines.append(profilers[key]())
            except Exception as error:  # a profile must never cost the table
                lines.append(f"(profile failed: {type(error).__name__}: {error})")
        else:
            lines.append("(no profile for these rows)")
        lines.append("```")
        blocks.append("\n".join(lines))
    return blocks
