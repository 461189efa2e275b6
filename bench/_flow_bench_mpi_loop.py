"""A bare mpi4py loop doing the flow benchmark's work (the ceiling of the 2-rank speed-up).

Chunks go round-robin to the ranks; each rank computes its chunks, rank 0 gathers the
results in chunk order and writes the input's copy plus the computed dataset. Run as
``mpiexec -n N python _flow_bench_mpi_loop.py <input.h5> <output.h5> <chunk> <work>``.
"""

from __future__ import annotations

import shutil
import sys

import h5py
import numpy as np
from _flow_bench_stages import calibrate
from mpi4py import MPI


def main() -> None:
    source, target, chunk, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    with h5py.File(source, "r") as f:
        events = f["raw/events/data"]
        starts = list(range(0, len(events), chunk))
        mine = {s: calibrate(events[s : s + chunk]["energy"], work) for s in starts[rank::size]}
    parts = comm.gather(mine, root=0)
    if rank == 0 and parts is not None:
        results = {s: v for part in parts for s, v in part.items()}
        shutil.copyfile(source, target)
        with h5py.File(target, "a") as f:
            values = np.concatenate([results[s] for s in starts])
            f.create_dataset("reco/calibrated/data", data=values, maxshape=(None,), chunks=True)


if __name__ == "__main__":
    main()
