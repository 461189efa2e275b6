"""Runner benchmarks: scheduling overhead per node, parallel speed-up, a shared upstream.

1. 1,000 independent no-op nodes per executor: wall time per node, against calling
   ``load_generate()`` on each in a plain loop (the raw operation, same store).
2. 200 CPU-bound nodes (pure Python, ~40 ms each) on the process pool and on a Dask
   LocalCluster with two single-threaded worker processes, against the serial executor
   (targets: processes >= 1.8x, Dask >= 1.6x on a 2-core machine). The process pool
   start-up is included; the cluster is started once and timed on its own row.
3. A diamond of 1,000 nodes: one upstream, 998 middle nodes that each hold their own
   (equal) upstream object, and one node joining them all; the upstream must be
   generated exactly once.

Run: ``.venv/bin/python bench/bench_run.py [--quick]``; prints a markdown table.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import Row, markdown_table, scratch_dir

import persistable
from persistable import JsonFileIO, LocalStore, Persistable, PersistableParams, untracked

QUICK = "--quick" in sys.argv


@dataclass
class WorkParams(PersistableParams):
    """A node index, how much pure-Python work it does, and where it notes its generation."""

    index: int
    loops: int = 0
    journal: str = untracked(default="")


class Work(Persistable[int, WorkParams]):
    """Spins ``loops`` iterations (0 for a no-op) and returns a small int (JSON payload)."""

    default_payload_io = JsonFileIO()

    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        if self.params.journal:
            (Path(self.params.journal) / uuid.uuid4().hex).write_text(self.payload_name)
        total = 0
        for i in range(self.params.loops):
            total += i * i % 7
        result: int = total % 1000 + sum(d.payload for d in self.tracked_persistable_dependencies)
        return result


def nodes(store: LocalStore, count: int, loops: int = 0, tag: str = "w") -> list[Work]:
    """``count`` independent nodes."""
    return [Work(store, WorkParams(i, loops), payload_name=tag) for i in range(count)]


def spin(loops: int) -> int:
    """The same pure-Python work as a CPU-bound :class:`Work` node, without persistable."""
    total = 0
    for i in range(loops):
        total += i * i % 7
    return total


def raw_pool_time(count: int, loops: int) -> float:
    """Wall time of ``count`` spins in a plain 2-process pool (the machine's parallel peer)."""
    import concurrent.futures
    import multiprocessing

    started = time.perf_counter()
    context = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        list(pool.map(spin, [loops] * count))
    return time.perf_counter() - started


def loops_for(seconds: float) -> int:
    """How many loop iterations of :class:`Work` take about ``seconds`` here."""
    probe = 200_000
    started = time.perf_counter()
    total = 0
    for i in range(probe):
        total += i * i % 7
    return int(probe * seconds / (time.perf_counter() - started))


def timed_run(targets: list[Work], executor: Any, workers: int = 2) -> float:
    """Wall time of one ``persistable.run`` (which must generate every target)."""
    started = time.perf_counter()
    report = persistable.run(targets, executor=executor, max_workers=workers, progress=False)
    elapsed = time.perf_counter() - started
    if not report.ok or len(report.generated) != len(targets):
        raise RuntimeError(f"the run did not generate every node:\n{report}")
    return elapsed


def bench_overhead(rows: list[Row], executors: dict[str, Any], count: int) -> None:
    """Per-node wall time of independent no-op nodes, against a plain load_generate loop."""
    with scratch_dir("run-raw") as folder:
        store = LocalStore(folder)
        targets = nodes(store, count)
        started = time.perf_counter()
        for target in targets:
            target.load_generate()
        raw = (time.perf_counter() - started) / count
    for executor, value in executors.items():
        with scratch_dir(f"run-{executor}") as folder:
            per_node = timed_run(nodes(LocalStore(folder), count), value) / count
        print(f"  {count} no-op nodes, {executor}: {per_node * 1e3:.2f} ms per node", flush=True)
        rows.append(
            Row(
                f"{count} no-op nodes, {executor}, per node",
                per_node,
                "s",
                "plain load_generate loop",
                raw,
            )
        )


def bench_speedup(rows: list[Row], count: int, seconds: float, client: Any) -> None:
    """Wall time of CPU-bound nodes in parallel, against the serial executor."""
    loops = loops_for(seconds)
    times: dict[str, float] = {}
    for executor, value in (("serial", "serial"), ("processes", "processes"), ("dask", client)):
        with scratch_dir(f"cpu-{executor}") as folder:
            times[executor] = timed_run(nodes(LocalStore(folder), count, loops), value)
        print(f"  {count} CPU-bound nodes, {executor}: {times[executor]:.2f} s", flush=True)
    started = time.perf_counter()
    for _ in range(count):
        spin(loops)
    raw_serial = time.perf_counter() - started
    raw_pool = raw_pool_time(count, loops)
    print(
        f"  {count} raw spins: {raw_serial:.2f} s in a loop, {raw_pool:.2f} s in a 2-process pool"
    )
    rows.append(
        Row(
            f"{count} raw spins, plain 2-process pool (machine's parallel peer)",
            raw_pool,
            "s",
            "plain loop",
            raw_serial,
        )
    )
    rows.append(
        Row(
            f"{count} CPU-bound nodes, processes runner vs plain 2-process pool",
            times["processes"],
            "s",
            "plain pool",
            raw_pool,
        )
    )
    for executor, speedup in (("processes", 1.8), ("dask", 1.6)):
        rows.append(
            Row(
                f"{count} CPU-bound nodes (~{seconds * 1e3:.0f} ms), {executor} (2 workers), "
                f"speed-up >= {speedup}x",
                times[executor],
                "s",
                "serial",
                times["serial"],
                target=1 / speedup,
            )
        )


def bench_diamond(rows: list[Row], middle: int) -> None:
    """One shared upstream, ``middle`` nodes over it, one node over them all."""
    for executor in ("threads", "processes"):
        with scratch_dir(f"diamond-{executor}") as folder:
            journal = folder / "journal"
            journal.mkdir()
            store = LocalStore(folder / "store")
            mids = [
                Work(
                    store,
                    WorkParams(i, journal=str(journal)),
                    [Work(store, WorkParams(-1, journal=str(journal)), payload_name="root")],
                    payload_name=f"mid{i}",
                )
                for i in range(middle)
            ]
            sink = Work(store, WorkParams(-2, journal=str(journal)), mids, payload_name="sink")
            started = time.perf_counter()
            report = persistable.run([sink], executor=executor, max_workers=2, progress=False)
            elapsed = time.perf_counter() - started
            roots = sum(1 for entry in journal.iterdir() if entry.read_text() == "root")
            if not report.ok or len(report.generated) != middle + 2:
                raise RuntimeError(f"the diamond run did not complete:\n{report}")
        print(
            f"  diamond of {middle + 2} nodes, {executor}: {elapsed:.2f} s, "
            f"upstream generated {roots}x",
            flush=True,
        )
        rows.append(
            Row(
                f"diamond of {middle + 2} nodes, {executor}: upstream generations",
                roots,
                "x",
                target=1,
                absolute=True,
            )
        )
        rows.append(Row(f"diamond of {middle + 2} nodes, {executor}: wall time", elapsed, "s"))


def main() -> None:
    """Run the three benchmarks and print the table."""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"bench_run on {os.cpu_count()} CPUs, load average {load}{' (quick)' if QUICK else ''}")
    rows: list[Row] = []
    distributed: Any = importlib.import_module("distributed")

    started = time.perf_counter()
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    client = distributed.Client(cluster)
    rows.append(
        Row(
            "dask LocalCluster start (2 worker processes), once", time.perf_counter() - started, "s"
        )
    )
    try:
        executors = {
            "serial": "serial",
            "threads": "threads",
            "processes": "processes",
            "dask": client,
        }
        bench_overhead(rows, executors, 200 if QUICK else 1000)
        bench_speedup(rows, 40 if QUICK else 200, 0.04, client)
        bench_diamond(rows, 198 if QUICK else 998)
    finally:
        client.close()
        cluster.close()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"\nload average after: {load}\n")
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
