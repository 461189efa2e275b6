"""Helpers shared by the benchmark scripts: timing, scratch folders, peer environments, tables.

Benchmarks report ratios against a raw operation or a peer measured in the same run on
the same machine, never absolute pass/fail timings in the test suite.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "BENCH_DIR",
    "TMPFS",
    "WORK_DIR",
    "Row",
    "best_of_interleaved",
    "best_of_subprocess",
    "markdown_table",
    "median_time",
    "peer_python",
    "run_json",
    "scratch_dir",
    "time_call",
]

#: The folder of the benchmark scripts.
BENCH_DIR = Path(__file__).resolve().parent
#: Scratch space for benchmark data: the system temporary folder unless
#: ``PERSISTABLE_BENCH_SCRATCH`` names another (e.g. a folder on the disk under test).
WORK_DIR = (
    Path(os.environ.get("PERSISTABLE_BENCH_SCRATCH") or tempfile.gettempdir()) / "persistable-bench"
)


@dataclass
class Row:
    """One line of a results table: a measured value against its peer and a target ratio.

    ``target`` is the largest acceptable ``value / peer`` ratio; when ``peer`` is None the
    target is an absolute bound on ``value`` in the same unit.
    """

    name: str
    value: float
    unit: str
    peer_name: str | None = None
    peer: float | None = None
    target: float | None = None
    #: When True, ``target`` bounds ``value`` itself even if a peer is shown for reference.
    absolute: bool = False

    @property
    def ratio(self) -> float | None:
        """``value / peer``, or None without a peer."""
        if self.peer is None or self.peer == 0:
            return None
        return self.value / self.peer

    @property
    def met(self) -> bool | None:
        """Whether the target holds (None when the row has no target)."""
        if self.target is None:
            return None
        measured = self.value if self.absolute or self.peer is None else self.ratio
        return measured is not None and measured <= self.target


def _fmt(value: float, unit: str) -> str:
    if unit == "s" and value < 0.1:
        return f"{value * 1e3:.3g} ms"
    return f"{value:.3g} {unit}"


def markdown_table(rows: Sequence[Row]) -> str:
    """A markdown table of ``rows`` with value, peer, ratio, target and whether it is met."""
    lines = [
        "| measurement | value | peer | ratio | target | met |",
        "|---|---:|---|---:|---:|:---:|",
    ]
    for row in rows:
        peer = f"{row.peer_name} {_fmt(row.peer, row.unit)}" if row.peer is not None else "-"
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        if row.target is None:
            target = "-"
        elif row.peer is not None and not row.absolute:
            target = f"<= {row.target:g}x"
        else:
            target = f"<= {_fmt(row.target, row.unit)}"
        met = {True: "met", False: "not met", None: "-"}[row.met]
        lines.append(
            f"| {row.name} | {_fmt(row.value, row.unit)} | {peer} | {ratio} | {target} | {met} |"
        )
    return "\n".join(lines)


def time_call(func: Callable[[], object]) -> float:
    """Wall time of one call of ``func`` in seconds, with the garbage collector paused."""
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        func()
        return time.perf_counter() - started
    finally:
        gc.enable()


def median_time(
    func: Callable[[], object],
    repeat: int,
    setup: Callable[[], object] | None = None,
) -> float:
    """Median wall time of ``repeat`` calls of ``func``; ``setup`` runs untimed before each."""
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        times.append(time_call(func))
    return statistics.median(times)


#: A RAM-backed folder for the tmpfs rows (None where the machine has none).
TMPFS: Path | None = Path("/dev/shm") if Path("/dev/shm").is_dir() else None


@contextmanager
def scratch_dir(prefix: str, base: Path | None = None) -> Iterator[Path]:
    """A fresh folder under :data:`WORK_DIR` (or ``base``), removed afterwards."""
    path = (WORK_DIR if base is None else base / WORK_DIR.name) / f"{prefix}-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def best_of_subprocess(code: str, repeat: int, python: str | None = None) -> float:
    """Best of ``repeat`` fresh interpreters of the float that ``code`` prints last."""
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    results = []
    for _ in range(repeat):
        output = subprocess.run(
            [python or sys.executable, "-c", code],
            check=True,
            capture_output=True,
            text=True,
            cwd=WORK_DIR,
        ).stdout
        results.append(float(output.strip().splitlines()[-1]))
    return min(results)


def best_of_interleaved(codes: dict[str, str], repeat: int) -> dict[str, float]:
    """Like :func:`best_of_subprocess` for several snippets, taking turns round by round.

    Taking turns lets every snippet see the same background load, which a run of all
    repetitions of one snippet and then all of the next would not.
    """
    results: dict[str, list[float]] = {name: [] for name in codes}
    for _ in range(repeat):
        for name, code in codes.items():
            results[name].append(best_of_subprocess(code, 1))
    return {name: min(values) for name, values in results.items()}


def run_json(args: Sequence[str], *, env: dict[str, str] | None = None) -> Any:
    """Run a command whose last stdout line is JSON, and return that value."""
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(
        list(args), check=False, capture_output=True, text=True, cwd=WORK_DIR, env=env
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{' '.join(args)} exited with {completed.returncode}:\n{completed.stderr[-4000:]}"
        )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def peer_python(name: str, requirements: Sequence[str]) -> str:
    """The interpreter of a private virtual env ``bench/.venv-<name>`` holding ``requirements``.

    Peers that share our import name (``persistable==1.3.1``) cannot live in the project's
    env, so each gets its own, created with ``venv`` and pip on first use.
    """
    venv = BENCH_DIR / f".venv-{name}"
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    marker = venv / ".bench-installed"
    wanted = "\n".join(requirements)
    if not marker.is_file() or marker.read_text() != wanted:
        print(f"Creating {venv.name} with {' '.join(requirements)} (first use only)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, *requirements], check=True)
        marker.write_text(wanted)
    return str(python)
