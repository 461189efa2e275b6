"""Short profiles for the flow benchmark's rows that miss their target.

``short_profile`` runs a call under ``cProfile`` (CPU time) and names the functions
that took the most of it; ``rank_profile`` does the same for every rank of an
``mpiexec`` run (``python _flow_bench_profile.py <out-prefix> <flow CLI arguments>``
profiles ``persistable flow`` on each rank into ``<out-prefix>-<rank>.pstats``).
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path


def top_lines(stats: pstats.Stats, count: int = 8) -> list[str]:
    """The ``count`` functions with the most own time, as ``"  12.3 ms  module:function"``."""
    entries = []
    for (file, line, name), (_, calls, own, _cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{Path(file).stem}:{name}" if file != "~" else name
        entries.append((own, calls, where, line))
    entries.sort(reverse=True)
    total = sum(e[0] for e in entries) or 1.0
    return [
        f"    {own * 1e3:7.1f} ms {own / total:4.0%}  {where} ({calls} calls)"
        for own, calls, where, _ in entries[:count]
    ]


#: The flow's phases: (module, function) -> what it does (cumulative time is shown).
PHASES = {
    ("_run", "run_flow"): "run_flow, whole",
    ("_config", "load_config"): "configs (YAML, checks)",
    ("_content", "file_digest"): "input digest",
    ("_run", "_stored_output"): "store look-up",
    ("_data_manager", "__init__"): "replica = a copy of the input",
    ("_loop", "run_loop"): "loop (stages, collective writes, journal)",
    ("_journal", "add"): "  of which journal writes (effects, as made)",
    ("_journal", "commit"): "  of which journal step commits",
    ("_journal", "load"): "  of which journal reads (rerun)",
    ("_data_manager", "apply"): "  of which replayed steps (rerun)",
    ("_merge", "finish_output"): "output file (rename or repack)",
    ("_persistable", "generate"): "commit to the store (move, checksum, metadata)",
    ("_checksum", "record_for"): "  of which waiting for the output checksum",
    ("_place", "place_output"): "-o (clone, hard link or copy)",
}


def phase_lines(stats: pstats.Stats) -> list[str]:
    """Cumulative CPU time of each phase of a flow run found in ``stats``."""
    found: dict[tuple[str, str], float] = {}
    for (file, _line, name), (_, _calls, _own, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        key = (Path(file).stem, name)
        if key in PHASES:
            found[key] = found.get(key, 0.0) + cum
    return [f"    {found[k] * 1e3:7.1f} ms  {label}" for k, label in PHASES.items() if k in found]


def short_profile(func: Callable[[], object], count: int = 6) -> list[str]:
    """Run ``func`` once under cProfile (CPU time): the flow's phases, then the top functions."""
    profiler = cProfile.Profile(time.process_time)
    profiler.runcall(func)
    stats = pstats.Stats(profiler, stream=io.StringIO())
    return [*phase_lines(stats), "    top functions by own time:", *top_lines(stats, count)]


def main() -> None:
    prefix, args = sys.argv[1], sys.argv[2:]
    from persistable.cli._flow import command

    profiler = cProfile.Profile(time.process_time)
    rank = os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
    try:
        profiler.runcall(command.main, args, standalone_mode=False)
    finally:
        profiler.dump_stats(f"{prefix}-{rank}.pstats")


if __name__ == "__main__":
    main()
