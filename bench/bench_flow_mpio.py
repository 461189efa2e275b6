"""The two write paths of a flow under MPI, on 2 and 3 ranks: one shared file (``mpio``) or replicas.

Both run in the same env (an h5py built with parallel HDF5, under the system MPICH's
``mpiexec``; the env is the tests' ``_mpio_venv``, built once per machine), the
replicas forced with ``PERSISTABLE_FLOW_NOMPIO=1``, so the HDF5 and MPI libraries are
the same on both sides. Two stages: I/O-bound (``work=1``: the rows cross between ranks
and are written; the write path is most of the cost) and CPU-bound (``work=400``). Runs
take turns (3 each, the fastest kept); ``-n 1`` of the same flow is shown beside them.
Each figure is a whole ``mpiexec`` run (start-up included: ~0.5 s).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import Row, markdown_table, scratch_dir

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT / "tests"))

from _mpio_venv import MpioEnv, MpioUnavailable, mpio_env  # noqa: E402
from bench_flow import make_input, print_load, write_config  # noqa: E402


def run(env: MpioEnv, n: int, folder: Path, config: Path, source: Path, mpio: bool) -> float:
    environ = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(BENCH)])}
    environ.pop("H5FLOW_NOMPI", None)
    environ.pop("PERSISTABLE_FLOW_NOMPIO", None)
    if not mpio:
        environ["PERSISTABLE_FLOW_NOMPIO"] = "1"
    output = f"out-{time.monotonic_ns()}.h5"
    command = [str(env.mpiexec), "-n", str(n), str(env.python), "-m", "persistable.flow"]
    command += ["--no-progress", "-c", str(config), "-i", str(source), "-o", output]
    command += ["--data-dir", f"store-{output}"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=environ, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    shared = "(one shared file, mpio)" in done.stdout
    if shared != (mpio and n > 1):
        raise RuntimeError(f"expected mpio={mpio and n > 1}, the run said: {done.stdout}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rows (10x)")
    args = parser.parse_args()
    try:
        env = mpio_env()
    except MpioUnavailable as why:
        print(f"not run: {why}")
        return
    print_load("start")
    results: list[Row] = []
    scale = 10 if args.quick else 1
    with scratch_dir("flow-mpio") as folder:
        cases = [
            ("I/O-bound stage (work=1)", 2_000_000 // scale, 100_000 // scale, 1),
            ("CPU-bound stage (work=400)", 200_000 // scale, 20_000 // scale, 400),
        ]
        for label, rows, chunk, work in cases:
            source = folder / f"events-{rows}.h5"
            make_input(source, rows)
            time.sleep(2.1)  # an input older than 2 s has its content digest cached
            config = write_config(folder, f"work{work}.yaml", chunk, work=work)
            one = min(run(env, 1, folder, config, source, mpio=True) for _ in range(2))
            for n in (2, 3):
                shared, replicas = [], []
                for _ in range(3):
                    shared.append(run(env, n, folder, config, source, mpio=True))
                    replicas.append(run(env, n, folder, config, source, mpio=False))
                mpio_s, replicas_s = min(shared), min(replicas)
                results.append(
                    Row(
                        f"{n} ranks, {label}, {rows:,} rows: mpio",
                        mpio_s,
                        "s",
                        "replicas",
                        replicas_s,
                    )
                )
                results.append(Row("the same: replicas against -n 1", replicas_s, "s", "-n 1", one))
                results.append(Row("the same: mpio against -n 1", mpio_s, "s", "-n 1", one))
            print_load(f"end of {label}")
    print(markdown_table(results), flush=True)


if __name__ == "__main__":
    main()
