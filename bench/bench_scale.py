"""Scale: 1,000, 10,000 and 100,000 small artifacts under one payload name.

For each count, in a fresh local store (the scratch folder):

- **first run**: ``load_generate()`` of ``count`` new keys; the cost per artifact of the
  whole run and of its last 1,000 (which must not grow with the count);
- **exists()** and **load()** of 1,000 keys picked at random among the committed ones,
  per call;
- **listing**: ``store.list_keys(payload_name)`` against ``os.scandir`` of the payload
  folder (the raw operation), and the runner's skip check, ``persistable.run`` over
  all ``count`` persistables when every one is committed (resolve, existence checks,
  report), per node;
- **disk use**: bytes allocated (``st_blocks`` of files and folders) and files per artifact, against a
  ``joblib.Memory`` cache of the same 10,000 calls (at 10,000 only).

Every count runs on tmpfs (``/dev/shm``) where the machine has one, so that the
100,000 count fits in ``make bench`` (about 1.6 GB of RAM, a couple of minutes) and
every count sees the same file system; ``--disk`` puts them on the scratch disk.
Growth with the count is what this measures; the disk's own cost per small artifact
is in ``bench_core``. Run:
``.venv/bin/python bench/bench_scale.py [--quick] [--disk] [--counts 1000,10000,100000]``.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from _common import TMPFS, Row, markdown_table, scratch_dir
from _profile import explain_missed, profile_call

import persistable
from persistable import JsonFileIO, LocalStore, Persistable, PersistableParams

PAYLOAD_NAME = "small"
#: Calls sampled for exists() and load().
SAMPLE = 1000


@dataclass
class SmallParams(PersistableParams):
    """One index per artifact."""

    index: int


class Small(Persistable[list[float], SmallParams]):
    """A list of 8 floats from its index (a JSON payload of about 150 bytes)."""

    default_payload_io = JsonFileIO()

    def _generate_payload(self, **untracked_payload_params: Any) -> list[float]:
        return [self.params.index * 0.5 + i for i in range(8)]


def small(store: LocalStore, index: int) -> Small:
    """The artifact ``index`` of the store."""
    return Small(store, SmallParams(index), payload_name=PAYLOAD_NAME)


def walk_usage(root: Path) -> tuple[int, int]:
    """Bytes allocated (files and folders) and number of regular files under ``root``."""
    allocated = files = 0
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                    allocated += entry.stat(follow_symlinks=False).st_blocks * 512
                elif entry.is_file(follow_symlinks=False):
                    files += 1
                    allocated += entry.stat(follow_symlinks=False).st_blocks * 512
    return allocated, files


def _timed(func: Any) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def _fill_range(folder: str, start: int, stop: int) -> None:
    store = LocalStore(folder)
    for index in range(start, stop):
        small(store, index).load_generate()


def fill(folder: Path, count: int) -> None:
    """Commit artifacts ``0 .. count - 1`` with one forked worker per CPU (the cheap path)."""
    if count <= 0:
        return
    import concurrent.futures
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        _fill_range(str(folder), 0, count)
        return
    chunk = 2_000
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(os.cpu_count(), mp_context=context) as pool:
        futures = [
            pool.submit(_fill_range, str(folder), start, min(start + chunk, count))
            for start in range(0, count, chunk)
        ]
        for future in futures:
            future.result()


def bench_count(
    rows: list[Row],
    count: int,
    rng: random.Random,
    base: Path | None,
    compare_to: int | None = None,
) -> dict[str, str]:
    """First run, exists, load, listing and the skip check at ``count`` artifacts.

    The first ``count - 1,000`` artifacts are committed by :func:`fill` (forked
    workers, not timed as the per-artifact figure); the last 1,000 run serially in
    this process, with ``count - 1,000`` artifacts already there: that is the
    first-run cost per artifact at this count.

    With ``compare_to`` (a smaller count measured before), each growth row of
    :func:`flat_rows` that misses its target gets a cProfile of the same work at this
    count, taken before the store is removed; returns them by row name. Also returns
    the files of one artifact, under the disk row's name.
    """
    with scratch_dir(f"scale-{count}", base) as folder:
        store = LocalStore(folder)
        tail = min(1000, count)
        started = time.perf_counter()
        fill(folder, count - tail)
        tail_started = time.perf_counter()
        for index in range(count - tail, count):
            small(store, index).load_generate()
        ended = time.perf_counter()
        first_each = (ended - started) / count
        tail_each = (ended - tail_started) / tail
        picks = [rng.randrange(count) for _ in range(SAMPLE)]
        exists_each = _timed(lambda: [small(store, i).exists() for i in picks]) / SAMPLE

        def load_all() -> None:
            for index in picks:
                small(store, index).load()

        load_each = _timed(load_all) / SAMPLE
        payload_dir = folder / PAYLOAD_NAME

        def scandir() -> int:
            with os.scandir(payload_dir) as entries:
                return sum(1 for entry in entries if entry.is_dir())

        raw_list = min(_timed(scandir) for _ in range(3))

        def scandir_committed() -> int:
            # What listing committed artifacts needs: the names, and metadata.json in each.
            with os.scandir(payload_dir) as entries:
                return sum(
                    1
                    for entry in entries
                    if os.path.isfile(os.path.join(entry.path, "metadata.json"))
                )

        raw_committed = min(_timed(scandir_committed) for _ in range(3))
        listed = store.list_keys(PAYLOAD_NAME)
        if len(listed) != count:
            raise RuntimeError(f"list_keys found {len(listed)} of {count} artifacts")
        our_list = min(_timed(lambda: store.list_keys(PAYLOAD_NAME)) for _ in range(3))
        targets = [small(store, index) for index in range(count)]
        skip_started = time.perf_counter()
        report = persistable.run(targets, progress=False)
        skip_each = (time.perf_counter() - skip_started) / count
        if len(report.loaded) != count:
            raise RuntimeError(f"the skip check found {len(report.loaded)} of {count} committed")
        allocated, files = walk_usage(folder)
        profiles = {f"{count:,} artifacts: {DISK_ROW}": describe_entry(payload_dir)}
        label = f"{count:,} artifacts"
        rows += [
            Row(f"{label}: filling the store, per artifact (forked workers)", first_each, "s"),
            Row(f"{label}: first run, per artifact of the last {tail:,} (serial)", tail_each, "s"),
            Row(f"{label}: exists(), per call", exists_each, "s"),
            Row(f"{label}: load(), per call", load_each, "s"),
            Row(f"{label}: list_keys", our_list, "s", "os.scandir", raw_list),
            Row(
                f"{label}: list_keys",
                our_list,
                "s",
                "os.scandir + a stat of each metadata.json",
                raw_committed,
            ),
            Row(f"{label}: list_keys, per artifact", our_list / count, "s"),
            Row(f"{label}: run() skip check (all committed), per node", skip_each, "s"),
            Row(f"{label}: disk allocated per artifact", allocated / count, "B"),
            Row(f"{label}: files per artifact (lock files included)", files / count, "files"),
        ]

        def first_runs() -> None:
            for index in range(count, count + 200):
                small(store, index).load_generate()

        work = {
            FIRST_ROW: (first_runs, "200 more first runs"),
            "exists(), per call": (
                lambda: [small(store, i).exists() for i in picks],
                f"{SAMPLE:,} exists()",
            ),
            "load(), per call": (load_all, f"{SAMPLE:,} load()"),
            "list_keys, per artifact": (lambda: store.list_keys(PAYLOAD_NAME), "one list_keys"),
            SKIP_ROW: (lambda: persistable.run(targets, progress=False), "the skip check"),
        }
        if compare_to is not None:
            for what, row in flat_rows(rows, compare_to, count):
                if row.met is False:
                    func, title = work[what]
                    profiles[row.name] = profile_call(func, f"{title} at {count:,} artifacts")
    print(
        f"  {count:,}: fill {first_each * 1e3:.2f} ms each (last {tail:,} serially: "
        f"{tail_each * 1e3:.2f} ms), exists {exists_each * 1e6:.0f} us, load "
        f"{load_each * 1e6:.0f} us, list_keys {our_list * 1e3:.1f} ms vs scandir "
        f"{raw_list * 1e3:.1f} ms, skip check {skip_each * 1e6:.0f} us per node, "
        f"{allocated / count:.0f} bytes and {files / count:.2f} files per artifact",
        flush=True,
    )
    return profiles


def describe_entry(folder: Path) -> str:
    """The files of the first entry (a folder of files only) under ``folder``: sizes, blocks."""
    stack = [folder]
    while stack:
        current = stack.pop()
        with os.scandir(current) as scanned:
            entries = sorted(scanned, key=lambda entry: entry.name)
        entries = [entry for entry in entries if not entry.name.startswith(".")]
        files = [entry for entry in entries if entry.is_file(follow_symlinks=False)]
        folders = [entry for entry in entries if entry.is_dir(follow_symlinks=False)]
        if files and not folders:
            parts = []
            for entry in files:
                info = entry.stat(follow_symlinks=False)
                parts.append(f"{entry.name} {info.st_size} B ({info.st_blocks * 512} allocated)")
            own = os.stat(current).st_blocks * 512
            return f"one entry: {', '.join(parts)}; its folder {own} allocated"
        stack += [Path(entry.path) for entry in reversed(folders)]
    return "no entry found"


def bench_joblib_disk(rows: list[Row], count: int, base: Path | None) -> str:
    """Disk use of a joblib.Memory cache of ``count`` calls; returns the files of one entry."""
    import joblib

    with scratch_dir("scale-joblib", base) as folder:
        memory = joblib.Memory(folder, verbose=0)
        cached = memory.cache(_joblib_payload)
        for index in range(count):
            cached(index)
        allocated, files = walk_usage(folder)
        entry = describe_entry(folder)
    print(
        f"  joblib {count:,}: {allocated / count:.0f} bytes, {files / count:.2f} files per entry",
        flush=True,
    )
    rows += [
        Row(f"joblib, {count:,} entries: disk allocated per entry", allocated / count, "B"),
        Row(f"joblib, {count:,} entries: files per entry", files / count, "files"),
    ]
    return entry


def _disk_against_joblib(rows: list[Row], count: int, base: Path | None) -> str:
    """joblib's disk use at ``count`` and ours against it; returns joblib's entry's files."""
    entry = bench_joblib_disk(rows, count, base)
    by_name = {row.name: row for row in rows}
    ours = by_name.get(f"{count:,} artifacts: disk allocated per artifact")
    theirs = by_name[f"joblib, {count:,} entries: disk allocated per entry"]
    if ours is not None:
        rows.append(
            Row(
                f"{count:,} artifacts: {DISK_ROW}",
                ours.value,
                "B",
                "joblib",
                theirs.value,
                1.0,
            )
        )
    return entry


def _joblib_payload(index: int) -> list[float]:
    return [index * 0.5 + i for i in range(8)]


FIRST_ROW = "first run, per artifact of the last 1,000 (serial)"
SKIP_ROW = "run() skip check (all committed), per node"
DISK_ROW = "disk per artifact vs joblib per entry"
#: The per-artifact figures that must stay flat, and how much they may grow.
FLAT = {
    FIRST_ROW: 1.5,
    "exists(), per call": 1.5,
    "load(), per call": 1.5,
    "list_keys, per artifact": 1.5,
    SKIP_ROW: 1.5,
}


def flat_rows(rows: list[Row], low_count: int, high_count: int) -> Iterator[tuple[str, Row]]:
    """Growth rows: each per-artifact figure at ``high_count`` against ``low_count``."""
    low, high = f"{low_count:,} artifacts", f"{high_count:,} artifacts"
    by_name = {row.name: row for row in rows}
    for what, target in FLAT.items():
        small_row = by_name.get(f"{low}: {what}")
        big_row = by_name.get(f"{high}: {what}")
        if small_row is not None and big_row is not None:
            yield (
                what,
                Row(
                    f"{what}: {high} vs {low} (flat: <= {target}x)",
                    big_row.value,
                    "s",
                    low,
                    small_row.value,
                    target,
                ),
            )


def main() -> None:
    """Run every count and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 and 3,000 only")
    parser.add_argument("--counts", default=None, help="comma-separated counts")
    parser.add_argument(
        "--disk", action="store_true", help="scratch on the disk instead of tmpfs (/dev/shm)"
    )
    args = parser.parse_args()
    base = None if args.disk or TMPFS is None else TMPFS
    counts = (
        [int(c) for c in args.counts.split(",")]
        if args.counts
        else ([1000, 3000] if args.quick else [1000, 10_000, 100_000])
    )
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    where = "the disk" if base is None else f"tmpfs ({base})"
    print(f"bench_scale on {os.cpu_count()} CPUs, load average {load}, counts {counts}, {where}")
    rows: list[Row] = []
    rng = random.Random(0)
    joblib_count = 10_000 if 10_000 in counts else counts[0]
    done: list[int] = []
    profiles: dict[str, str] = {}
    try:
        for count in counts:
            last = count == counts[-1] and len(counts) > 1
            profiles.update(bench_count(rows, count, rng, base, counts[0] if last else None))
            done.append(count)
            if count == joblib_count:
                entry = _disk_against_joblib(rows, count, base)
                name = f"{count:,} artifacts: {DISK_ROW}"
                profiles[name] = f"ours, {profiles.get(name, '')}\njoblib, {entry}"
    except KeyboardInterrupt:  # make bench's time budget: keep what was measured
        print("\n(stopped before the end: the rows below are those measured)", flush=True)
    if len(done) > 1:
        rows += [row for _what, row in flat_rows(rows, done[0], done[-1])]
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"\nload average after: {load}\n")
    print(markdown_table(rows))
    for block in explain_missed(
        rows, {name: partial(str, text) for name, text in profiles.items()}
    ):
        print()
        print(block)


if __name__ == "__main__":
    main()
