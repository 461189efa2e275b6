"""``make bench``: every ``bench/bench_*.py`` in turn, each in its own interpreter and time budget.

Each benchmark prints its progress and markdown tables of ratios. This script shows
that output as it comes, keeps each script's tables (and fenced profile blocks), and
writes them with the machine, the load average and the commit between the markers
``<!-- make-bench:begin -->`` and ``<!-- make-bench:end -->`` of ``docs/benchmarks.md``
(a full run only; ``--write`` forces it, ``--no-write`` skips it). Each script follows
its table with a fenced ``missed:`` block per row that misses its target: the distance
and a cProfile of our side taken in the same run (``bench/_profile.py``).

The scripts of issue 14 (core, scale, run, s3) and samples run at their measuring sizes; the others
run with ``--quick``, so that the whole run stays within about 12 minutes on a quiet
2-CPU machine. A script that overruns its budget (longer on a loaded machine, by the
load per CPU, up to 4x) is stopped (with its whole process group) and reported as
timed out. ``--quick`` passes ``--quick`` to every script;
names select some of them (``python bench/run_all.py core s3``). Exits non-zero if
any benchmark failed or timed out.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN = "<!-- make-bench:begin -->"
END = "<!-- make-bench:end -->"

#: Arguments and time budget (seconds) of each script in a full run. Scripts not
#: listed run with ``--quick`` and :data:`DEFAULT_BUDGET`.
PLAN: dict[str, tuple[list[str], float]] = {
    "core": ([], 240.0),
    "scale": ([], 240.0),
    "run": ([], 300.0),
    "s3": ([], 240.0),
    "flow": (["--quick"], 240.0),
    "identity": (["--quick"], 120.0),
    # Issue 12's targets are set at 1 GiB and 200 samples: its measuring sizes (~1 min).
    "samples": ([], 300.0),
    "steps": (["--quick"], 120.0),
}
DEFAULT_BUDGET = 120.0


@dataclass
class Outcome:
    """What one script printed and how it ended."""

    name: str
    args: list[str]
    status: str = "not run"
    seconds: float = 0.0
    load_after: str = ""
    lines: list[str] = field(default_factory=list)

    def blocks(self) -> list[list[str]]:
        """The markdown tables and fenced blocks the script printed, in order."""
        found: list[list[str]] = []
        current: list[str] = []
        fenced = False
        for line in self.lines:
            if fenced:
                current.append(line)
                if line.startswith("```"):
                    found.append(current)
                    current, fenced = [], False
            elif line.startswith("```"):
                current, fenced = [line], True
            elif line.startswith("|"):
                current.append(line)
            elif current:
                found.append(current)
                current = []
        if current and not fenced:
            found.append(current)
        return found


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, or "unknown"."""
    if not hasattr(os, "getloadavg"):
        return "unknown"
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def _load_factor() -> float:
    """How much longer than on a quiet machine a script may take now (1 when quiet).

    The run-queue length per CPU: on a shared machine each script gets that much
    longer before it is stopped, so a busy machine gives slow figures, not missing ones.
    """
    if not hasattr(os, "getloadavg"):
        return 1.0
    return max(1.0, min(4.0, os.getloadavg()[0] / (os.cpu_count() or 1)))


def _git(*args: str) -> str:
    try:
        completed = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return completed.stdout.strip()


def commit() -> str:
    """The checked-out commit, with ``+changes`` when the work tree differs from it."""
    head = _git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", "persistable", "bench")
    return f"{head}{' +changes' if dirty else ''}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / (1 << 20):.0f} GiB"
    except (OSError, ValueError):
        pass
    return "unknown memory"


def _filesystem(path: Path) -> str:
    """The type of the file system holding ``path`` (from /proc/mounts), or "unknown"."""
    try:
        mounts = [line.split() for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return "unknown"
    resolved = str(path.resolve())
    best = ("", "unknown")
    for fields in mounts:
        if len(fields) < 3:
            continue
        point = fields[1]
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best[0]):
            best = (point, fields[2])
    return best[1]


def machine() -> str:
    """One line describing the machine, the interpreter and the scratch file system."""
    import tempfile

    scratch = Path(os.environ.get("PERSISTABLE_BENCH_SCRATCH") or tempfile.gettempdir())
    versions = []
    for module in ("numpy", "joblib", "dask", "s3fs"):
        try:
            versions.append(f"{module} {version(module)}")
        except PackageNotFoundError:  # not installed: not listed
            continue
    return (
        f"{os.cpu_count()} CPUs ({_cpu_model()}), {_memory()}, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, {', '.join(versions)}; "
        f"scratch on {_filesystem(scratch)}, tmpfs rows on /dev/shm"
    )


def run_script(script: Path, args: list[str], budget: float) -> Outcome:
    """Run one benchmark in its own process group, echoing and keeping its output."""
    outcome = Outcome(script.stem.removeprefix("bench_"), args)
    command = [sys.executable, "-u", str(script), *args]
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=BENCH_DIR,
        start_new_session=True,
    )
    assert process.stdout is not None
    timed_out = False

    def stop() -> None:
        nonlocal timed_out
        timed_out = True
        # SIGINT first: the scripts print the rows measured so far on KeyboardInterrupt.
        for sig, grace in ((signal.SIGINT, 90.0), (signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(grace)
                return
            except subprocess.TimeoutExpired:
                continue

    timer = threading.Timer(budget, stop)
    timer.start()
    try:
        for line in process.stdout:
            print(line, end="", flush=True)
            outcome.lines.append(line.rstrip("\n"))
        returncode = process.wait()
    finally:
        timer.cancel()
    outcome.seconds = time.perf_counter() - started
    outcome.load_after = load_average()
    if timed_out:
        outcome.status = f"TIMED OUT after {budget:.0f} s (stopped; rows measured until then)"
    elif returncode != 0:
        outcome.status = f"FAILED (exit {returncode})"
        tail = [line for line in outcome.lines[-15:] if line.strip()]
        outcome.lines.append("```text")
        outcome.lines += tail
        outcome.lines.append("```")
    else:
        outcome.status = "ok"
    return outcome


def render(
    outcomes: list[Outcome], began: str, load_start: str, total: float, measured: str
) -> str:
    """The generated section of docs/benchmarks.md."""
    now = commit()
    code = f"`{measured}`" if now == measured else f"`{measured}` at the start, `{now}` at the end"
    not_met = sum(
        line.rstrip().endswith("| not met |") for o in outcomes for b in o.blocks() for line in b
    )
    met = sum(line.rstrip().endswith("| met |") for o in outcomes for b in o.blocks() for line in b)
    lines = [
        BEGIN,
        "",
        "<!-- Written by bench/run_all.py (make bench); do not edit by hand. -->",
        "",
        f"**Latest `make bench`**: started {began}, {total / 60:.1f} minutes, commit {code}.",
        "",
        f"- Machine: {machine()}.",
        f"- Load average (1 / 5 / 15 min): {load_start} at the start, "
        f"{load_average()} at the end; after each script below.",
        f"- Targets: {met} met, {not_met} not met; each row that misses is followed, after "
        "its script's table, by a `missed:` block: its distance and a cProfile of our side "
        "from this run.",
        "",
        "| script | arguments | status | time | load after |",
        "|---|---|---|---:|---|",
    ]
    for o in outcomes:
        lines.append(
            f"| bench_{o.name}.py | {' '.join(o.args) or '(full)'} | {o.status} | "
            f"{o.seconds:.0f} s | {o.load_after} |"
        )
    for o in outcomes:
        lines += ["", f"#### bench_{o.name}.py {' '.join(o.args)}".rstrip(), ""]
        blocks = o.blocks()
        if not blocks:
            lines.append(f"(no table: {o.status})")
        for block in blocks:
            lines += [*block, ""]
    lines.append(END)
    return "\n".join(lines).replace("\n\n\n", "\n\n") + "\n"


def splice(section: str) -> None:
    """Put ``section`` between the markers of docs/benchmarks.md (before its first ``## ``)."""
    text = DOC.read_text(encoding="utf-8")
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        text = head + section + "\n" + tail
    else:
        at = text.find("\n## ")
        at = len(text) if at < 0 else at + 1
        text = text[:at] + section + "\n" + text[at:]
    DOC.write_text(text, encoding="utf-8")


def main(argv: list[str]) -> int:
    """Run the selected benchmarks one after the other; returns the number that failed."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="small sizes, to try the scripts")
    parser.add_argument("--write", action="store_true", help="write docs even for a partial run")
    parser.add_argument("--no-write", action="store_true", help="leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    scripts = sorted(BENCH_DIR.glob("bench_*.py"))
    order = list(PLAN)
    scripts.sort(key=lambda s: (order.index(n) if (n := s.stem[6:]) in order else len(order), n))
    if args.names:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.names]
        if not scripts:
            parser.error(f"no benchmark named {args.names}; see bench/bench_*.py")
    began = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_start = load_average()
    measured = commit()
    print(
        f"make bench: {len(scripts)} scripts on {measured}, load average {load_start}", flush=True
    )
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    for script in scripts:
        name = script.stem.removeprefix("bench_")
        planned, budget = PLAN.get(name, (["--quick"], DEFAULT_BUDGET))
        budget *= _load_factor()
        script_args = ["--quick"] if args.quick else planned
        print(
            f"\n=== {script.name} {' '.join(script_args)} (budget {budget:.0f} s) ===", flush=True
        )
        outcome = run_script(script, script_args, budget)
        print(f"=== {script.name}: {outcome.status} in {outcome.seconds:.0f} s ===", flush=True)
        outcomes.append(outcome)
    total = time.perf_counter() - started
    failed = [o for o in outcomes if o.status != "ok"]
    full = not args.quick and not args.names
    if (full or args.write) and not args.no_write:
        splice(render(outcomes, began, load_start, total, measured))
        print(f"\nWrote the figures into {DOC.relative_to(ROOT)}", flush=True)
    print(f"\nmake bench took {total / 60:.1f} minutes; load average {load_average()}")
    if failed:
        print(
            f"{len(failed)} of {len(scripts)} benchmarks failed: {', '.join(o.name for o in failed)}"
        )
    return len(failed)


if __name__ == "__main__":
    sys.exit(1 if main(sys.argv[1:]) else 0)
