"""Runner benchmarks: scheduling overhead per node, parallel speed-up, a shared upstream.

1. 1,000 independent no-op nodes per executor: wall time per node, against calling
   ``load_generate()`` on each in a plain loop (the raw operation, same store), and the
   CPU time this process spends per node (scheduling, pickling; load-proof).
2. 40 CPU-bound nodes (pure Python, ~0.14 s each) and 200 (~20 ms each) on every
   executor against serial, against the same spins in a bare 2-process pool (target:
   the process runner's speed-up >= 0.9x the bare pool's, start-ups included), against
   ``client.map`` of the spins and of ``load_generate`` (the same artifacts) on the same
   cluster (>= 0.9x), and ``executor="dask"`` with the cluster started by the run
   (>= 1.6x serial). Rounds run every contender in turn. The floor of the cluster row:
   ``client.map`` of the spins each followed by its artifact's bare file operations.
3. 10,000 no-op nodes (small artifacts): ``executor="dask"``, cluster started by the
   run, against a serial run (target: not slower); its floor: the same artifacts' bare
   file operations (no persistable) in one process and split over two.
4. A diamond of 1,000 nodes: one upstream, 998 middle nodes that each hold their own
   (equal) upstream object, and one node joining them all; the upstream must be
   generated exactly once.
5. A chain of 300 nodes on processes (each node ships its whole upstream): wall time
   and this process's CPU time per node.

Every line printed while measuring carries the load average. A row that misses its
target is followed by its distance and a cProfile of the same work (bench/_profile.py);
for pools the parent's side, plus the worker's side run in this process.

Run: ``.venv/bin/python bench/bench_run.py [--quick] [--only=PARTS]``; prints a markdown
table. ``PARTS`` is a comma-separated subset of ``overhead,long,short,diamond,chain,small``
(1. to 5. above; ``long`` and ``short`` are the 40 and 200 CPU-bound nodes of 2.).
"""

from __future__ import annotations

import fcntl
import importlib
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import Row, markdown_table, scratch_dir
from _profile import explain_missed, profile_call

import persistable
from persistable import JsonFileIO, LocalStore, Persistable, PersistableParams, untracked
from persistable.run import resolve
from persistable.run._executors import dumps_node, execute_batch
from persistable.run._shipment import pack

QUICK = "--quick" in sys.argv
PARTS = ("overhead", "long", "short", "diamond", "chain", "small")
#: The parts to run (``--only=long,short``), all by default.
ONLY = next(
    (set(arg.split("=", 1)[1].split(",")) for arg in sys.argv if arg.startswith("--only=")),
    set(PARTS),
)


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


def load_generate(node: Work) -> None:
    """What ``client.map`` runs for the same artifacts without the runner."""
    node.load_generate()


def bare_commits(root: str, first: int, count: int, loops: int = 0) -> None:
    """The file operations of ``count`` small artifacts' first runs, without persistable.

    What a first run on a local store does to the file system: the look-ups before and
    under the lock, the lock file (created, locked, written, removed), a staging folder
    with three files, the rename into the payload folder. Each node spins ``loops``
    iterations first (0: none). The floor of a parallel run's commits on this disk.
    """
    locks = os.path.join(root, ".persistable", "locks", "w")
    staging = os.path.join(root, ".persistable", "staging")
    for index in range(first, first + count):
        spin(loops)
        name = f"{index:064x}"
        final = os.path.join(root, "w", f"k1-{name}")
        if os.path.exists(os.path.join(final, "metadata.json")):
            raise RuntimeError(f"{final} exists already")
        lock = os.path.join(locks, f"{name}.lock")
        held = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.pwrite(held, b"l" * 111, 0)
        os.path.exists(os.path.join(final, "metadata.json"))
        folder = os.path.join(staging, f"{name}-{os.getpid()}")
        os.mkdir(folder)
        for file, size in (("payload.json", 1), ("params.json", 32), ("metadata.json", 1368)):
            written = os.open(os.path.join(folder, file), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            os.write(written, b"0" * size)
            os.close(written)
        os.rename(folder, final)
        os.unlink(lock)
        os.close(held)


def store_folders(root: Path) -> str:
    """Make the folders :func:`bare_commits` writes into; returns ``root`` as a string."""
    for part in (".persistable/locks/w", ".persistable/staging", "w"):
        (root / part).mkdir(parents=True)
    return str(root)


def bare_commits_time(count: int, processes: int) -> float:
    """Wall time of :func:`bare_commits` of ``count`` artifacts split over ``processes``
    forkserver processes (started before the clock)."""
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    with (
        scratch_dir("bare-commits") as folder,
        concurrent.futures.ProcessPoolExecutor(processes, mp_context=context) as pool,
    ):
        root = store_folders(folder)
        list(pool.map(spin, [0] * processes))
        share = count // processes
        started = time.perf_counter()
        list(
            pool.map(bare_commits, [root] * processes, range(0, count, share), [share] * processes)
        )
        return time.perf_counter() - started


def client_map_commits_time(client: Any, count: int, loops: int) -> float:
    """Wall time of ``client.map`` of the spins, each followed by its artifact's bare file
    operations (:func:`bare_commits`), on an existing cluster."""
    with scratch_dir("map-commits") as folder:
        root = store_folders(folder)
        started = time.perf_counter()
        futures = client.map(
            bare_commits, [root] * count, range(count), [1] * count, [loops] * count, pure=False
        )
        client.gather(futures)
        return time.perf_counter() - started


def load() -> str:
    """The 1-minute load average, for every printed figure."""
    return f"load {os.getloadavg()[0]:.1f}"


def raw_pool_time(count: int, loops: int) -> float:
    """Wall time of ``count`` spins in a plain 2-process pool, its start-up included."""
    import concurrent.futures
    import multiprocessing

    started = time.perf_counter()
    context = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        list(pool.map(spin, [loops] * count))
    return time.perf_counter() - started


def raw_loop_time(count: int, loops: int) -> float:
    """Wall time of ``count`` spins in a plain loop."""
    started = time.perf_counter()
    for _ in range(count):
        spin(loops)
    return time.perf_counter() - started


def client_map_time(client: Any, count: int, loops: int) -> float:
    """Wall time of ``count`` spins through ``client.map`` on an existing cluster."""
    started = time.perf_counter()
    futures = client.map(spin, [loops] * count, pure=False)
    client.gather(futures)
    return time.perf_counter() - started


def client_map_generate_time(client: Any, count: int, loops: int) -> float:
    """Wall time of ``client.map(load_generate)`` over ``count`` new nodes (same artifacts)."""
    with scratch_dir("map-generate") as folder:
        targets = nodes(LocalStore(folder), count, loops)
        started = time.perf_counter()
        client.gather(client.map(load_generate, targets, pure=False))
        elapsed = time.perf_counter() - started
        if not all(target.exists() for target in targets):
            raise RuntimeError("client.map(load_generate) left nodes uncommitted")
    return elapsed


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


def profile_run(count: int, loops: int, executor: Any, title: str) -> str:
    """cProfile of one run of ``count`` new nodes on ``executor`` (this process's side)."""
    with scratch_dir("profile") as folder:
        targets = nodes(LocalStore(folder), count, loops)
        return profile_call(lambda: timed_run(targets, executor), title)


def profile_worker_side(count: int, loops: int) -> str:
    """cProfile of what a pool or Dask worker runs for ``count`` nodes, run in this process."""
    with scratch_dir("profile-worker") as folder:
        targets = nodes(LocalStore(folder), count, loops)
        graph = resolve(targets)
        identities = [(node.payload_name, node.key) for node in graph.to_run]
        task = dumps_node(pack(targets, graph.keys, {}))
        return profile_call(
            lambda: execute_batch(task, identities),
            f"the worker's side of {count} nodes (execute_batch of one shipment, in this process)",
        )


def profiles(*makers: Callable[[], str]) -> Callable[[], str]:
    """One profiler made of several profiles, printed one after the other."""
    return lambda: "\n".join(maker() for maker in makers)


def bench_overhead(rows: list[Row], executors: dict[str, Any], count: int) -> None:
    """Per-node wall and CPU time of independent no-op nodes, against a plain load_generate loop."""
    with scratch_dir("run-raw") as folder:
        store = LocalStore(folder)
        targets = nodes(store, count)
        started = time.perf_counter()
        cpu = time.process_time()
        for target in targets:
            target.load_generate()
        raw = (time.perf_counter() - started) / count
        raw_cpu = (time.process_time() - cpu) / count
    print(f"  {count} no-op nodes, plain loop: {raw * 1e3:.2f} ms per node ({load()})", flush=True)
    for executor, value in executors.items():
        with scratch_dir(f"run-{executor}") as folder:
            cpu = time.process_time()
            per_node = timed_run(nodes(LocalStore(folder), count), value) / count
            cpu_per_node = (time.process_time() - cpu) / count
        print(
            f"  {count} no-op nodes, {executor}: {per_node * 1e3:.2f} ms per node, "
            f"{cpu_per_node * 1e3:.2f} ms CPU of this process ({load()})",
            flush=True,
        )
        rows.append(
            Row(
                f"{count} no-op nodes, {executor}, per node ({load()})",
                per_node,
                "s",
                "plain load_generate loop",
                raw,
            )
        )
        rows.append(
            Row(
                f"{count} no-op nodes, {executor}, CPU time of this process per node"
                + (" (the cluster's scheduler runs here too)" if executor == "dask" else ""),
                cpu_per_node,
                "s",
                "plain loop's CPU",
                raw_cpu,
            )
        )


def _spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}x" if len(values) > 1 else f"{values[0]:.2f}x"


def bench_speedup(
    rows: list[Row],
    profilers: dict[str, Callable[[], str]],
    count: int,
    seconds: float,
    client: Any,
    rounds: int,
    *,
    threads: bool = True,
) -> None:
    """CPU-bound nodes on every executor against serial and against the bare pool / client.map.

    Every round runs all contenders once, in turn, so each sees the same load; rows give
    the median over the rounds and the range of the per-round ratios. ``threads=False``
    leaves out the thread pool (which cannot run pure Python in parallel).
    """
    loops = loops_for(seconds)
    names = ["serial", "threads", "processes", "dask (started by run)", "dask (existing client)"]
    if not threads:
        names.remove("threads")
    values: dict[str, Any] = {
        "serial": "serial",
        "threads": "threads",
        "processes": "processes",
        "dask (started by run)": "dask",
        "dask (existing client)": client,
    }
    times: dict[str, list[float]] = {
        name: [] for name in [*names, "loop", "pool", "map", "map + files", "map load_generate"]
    }
    loads: list[float] = []
    for round_ in range(rounds):
        for name in names:
            with scratch_dir("cpu") as folder:
                times[name].append(timed_run(nodes(LocalStore(folder), count, loops), values[name]))
        times["loop"].append(raw_loop_time(count, loops))
        times["pool"].append(raw_pool_time(count, loops))
        times["map"].append(client_map_time(client, count, loops))
        times["map + files"].append(client_map_commits_time(client, count, loops))
        times["map load_generate"].append(client_map_generate_time(client, count, loops))
        loads.append(os.getloadavg()[0])
        line = ", ".join(f"{name} {values_[-1]:.2f} s" for name, values_ in times.items())
        print(f"  {count} CPU-bound nodes, round {round_ + 1}: {line} ({load()})", flush=True)
    median = {name: statistics.median(values_) for name, values_ in times.items()}
    label = f"{count} CPU-bound nodes (~{seconds * 1e3:.0f} ms)"
    at = f"load {min(loads):.1f}-{max(loads):.1f}"
    # value/peer <= target  <=>  the runner's speed-up >= 0.9 x the bare pool's.
    relative = [
        (processes / serial) / (pool / loop)
        for processes, serial, pool, loop in zip(
            times["processes"], times["serial"], times["pool"], times["loop"], strict=True
        )
    ]
    rows.append(
        Row(
            f"{label}, bare ProcessPoolExecutor(2) vs plain loop (the machine's speed-up), {at}",
            median["pool"],
            "s",
            "plain loop",
            median["loop"],
        )
    )
    for name in names[1:]:
        rows.append(
            Row(
                f"{label}, {name} vs serial run, median of {rounds}, {at}",
                median[name],
                "s",
                "serial",
                median["serial"],
                target=1 / 1.6 if name == "dask (started by run)" else None,
            )
        )
    rows.append(
        Row(
            f"{label}, processes: bare pool's speed-up / the runner's, per round "
            f"{_spread(relative)} (target: the runner's >= 0.9x the pool's), {at}",
            statistics.median(relative),
            "x",
            target=1 / 0.9,
            absolute=True,
        )
    )
    for peer, what in (("map", "client.map of the spins"), ("map load_generate", None)):
        ratios = [
            run_ / map_
            for run_, map_ in zip(times["dask (existing client)"], times[peer], strict=True)
        ]
        rows.append(
            Row(
                f"{label}, dask run on a cluster vs {what or 'client.map of load_generate'} on "
                f"it, per round {_spread(ratios)} (target: >= 0.9x its speed), {at}",
                median["dask (existing client)"],
                "s",
                "client.map" if what else "client.map(load_generate)",
                median[peer],
                target=1 / 0.9,
            )
        )
    floor = [files / map_ for files, map_ in zip(times["map + files"], times["map"], strict=True)]
    rows.append(
        Row(
            f"{label}, the floor of the row above: client.map of the spins plus each one's "
            f"artifact's bare file operations (no persistable) vs the bare spins, per round "
            f"{_spread(floor)}, {at}",
            median["map + files"],
            "s",
            "client.map",
            median["map"],
        )
    )
    # The profiles rerun a quarter of the nodes (the budget of make bench), the worker's
    # side a tenth.
    few, part = max(4, count // 10), max(4, count // 4)
    what = f"{part} of the {label}"
    profilers[f"{label}, processes"] = profiles(
        lambda: profile_run(part, loops, "processes", f"run(executor='processes') of {what}"),
        lambda: profile_worker_side(few, loops),
    )
    profilers[f"{label}, dask (started by run)"] = lambda: profile_run(
        part, loops, "dask", f"run(executor='dask') of {what}, cluster start and close included"
    )
    profilers[f"{label}, dask run on a cluster"] = profiles(
        lambda: profile_run(part, loops, client, f"run on an existing cluster of {what}"),
        lambda: profile_worker_side(few, loops),
    )


def bench_many_small(
    rows: list[Row], profilers: dict[str, Callable[[], str]], count: int, rounds: int
) -> None:
    """``count`` no-op nodes: ``executor="dask"`` (cluster started by the run) against serial."""
    serial: list[float] = []
    dask: list[float] = []
    for round_ in range(rounds):
        with scratch_dir("small-serial") as folder:
            serial.append(timed_run(nodes(LocalStore(folder), count), "serial"))
        with scratch_dir("small-dask") as folder:
            dask.append(timed_run(nodes(LocalStore(folder), count), "dask"))
        print(
            f"  {count} small artifacts, round {round_ + 1}: serial {serial[-1]:.2f} s, "
            f"dask {dask[-1]:.2f} s ({load()})",
            flush=True,
        )
    one = bare_commits_time(count, 1)
    two = bare_commits_time(count, 2)
    print(
        f"  {count} small artifacts' bare file operations: 1 process {one:.2f} s, "
        f"2 processes {two:.2f} s ({load()})",
        flush=True,
    )
    ratios = [d / s for d, s in zip(dask, serial, strict=True)]
    label = f"{count} small artifacts"
    rows.append(
        Row(
            f"{label}, the floor of a parallel first run: their bare file operations (no "
            f"persistable) split over 2 processes vs in 1, {load()}",
            two,
            "s",
            "1 process",
            one,
        )
    )
    rows.append(
        Row(
            f"{label}, first run, executor='dask' (LocalCluster started by "
            f"run) vs serial, per round {_spread(ratios)}, {load()}",
            statistics.median(dask),
            "s",
            "serial run",
            statistics.median(serial),
            target=1.0,
        )
    )
    part = count // 10
    profilers[label] = profiles(
        lambda: profile_run(part, 0, "dask", f"run(executor='dask') of {part} small artifacts"),
        lambda: profile_worker_side(part // 10, 0),
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
            f"upstream generated {roots}x ({load()})",
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
        rows.append(
            Row(f"diamond of {middle + 2} nodes, {executor}: wall time ({load()})", elapsed, "s")
        )


def bench_chain(rows: list[Row], depth: int) -> None:
    """A chain of ``depth`` nodes on processes and serially: per node, wall and CPU here."""
    for executor in ("serial", "processes"):
        with scratch_dir(f"chain-{executor}") as folder:
            store = LocalStore(folder)
            node = Work(store, WorkParams(0), payload_name="chain")
            for i in range(1, depth):
                node = Work(store, WorkParams(i), [node], payload_name="chain")
            started = time.perf_counter()
            cpu = time.process_time()
            report = persistable.run([node], executor=executor, max_workers=2, progress=False)
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
            if not report.ok or len(report.generated) != depth:
                raise RuntimeError(f"the chain run did not complete:\n{report}")
        print(
            f"  chain of {depth} nodes, {executor}: {elapsed:.2f} s, {cpu:.2f} s CPU here "
            f"({load()})",
            flush=True,
        )
        rows.append(
            Row(
                f"chain of {depth} nodes, {executor}: wall per node ({load()})",
                elapsed / depth,
                "s",
            )
        )
        rows.append(
            Row(
                f"chain of {depth} nodes, {executor}: CPU time of this process per node",
                cpu / depth,
                "s",
            )
        )


def main() -> None:
    """Run the benchmarks, print the table and a profile of every row that misses its target."""
    unknown = ONLY - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown parts {sorted(unknown)}; choose among {', '.join(PARTS)}")
    print(f"bench_run on {os.cpu_count()} CPUs, {load()}{' (quick)' if QUICK else ''}")
    rows: list[Row] = []
    profilers: dict[str, Callable[[], str]] = {}
    distributed: Any = importlib.import_module("distributed")

    started = time.perf_counter()
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    client = distributed.Client(cluster)
    rows.append(
        Row(
            f"dask LocalCluster start by the user (2 spawned worker processes), once ({load()})",
            time.perf_counter() - started,
            "s",
        )
    )
    try:
        executors = {
            "serial": "serial",
            "threads": "threads",
            "processes": "processes",
            "dask": client,
        }
        if "overhead" in ONLY:
            bench_overhead(rows, executors, 200 if QUICK else 1000)
        if "long" in ONLY:
            bench_speedup(
                rows, profilers, 10 if QUICK else 40, 0.14, client, 1 if QUICK else 2, threads=False
            )
        if "short" in ONLY:
            bench_speedup(rows, profilers, 40 if QUICK else 200, 0.02, client, 1 if QUICK else 2)
        if "diamond" in ONLY:
            bench_diamond(rows, 198 if QUICK else 998)
        if "chain" in ONLY:
            bench_chain(rows, 100 if QUICK else 300)
        if "small" in ONLY:
            bench_many_small(rows, profilers, 1000 if QUICK else 10_000, 1)
    except KeyboardInterrupt:  # make bench's time budget: keep what was measured
        print("\n(stopped before the end: the rows below are those measured)", flush=True)
        profilers = {}
    finally:
        print(f"\n{load()} after the measurements\n")
        print(markdown_table(rows))
    try:
        for block in explain_missed(rows, profilers):
            print()
            print(block, flush=True)
    except KeyboardInterrupt:
        print("\n(stopped while profiling the rows that missed their targets)", flush=True)
    finally:
        client.close()
        cluster.close()


if __name__ == "__main__":
    main()
